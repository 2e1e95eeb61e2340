"""KG variables as programs, compiled to SPARQL and run on any SPARQL backend.

As in AgentBench, a variable is not a stored set but the program that derives it (entity, neighbours by a
relation, intersection, count, argmax/argmin); each tool call extends a program, and a query runs only when the
agent asks for relations or attributes, or gives its final answer. The same SPARQL text runs on the embedded
rdflib graph (agentlm.envs.kg.local_graph) and on a Freebase endpoint (Virtuoso, as AgentBench uses), because
both name entities and relations in Freebase's namespace `http://rdf.freebase.com/ns/`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from typing import Any

FREEBASE_NS = "http://rdf.freebase.com/ns/"
PREFIX = f"PREFIX ns: <{FREEBASE_NS}>\n"


@dataclasses.dataclass(frozen=True)
class Program:
    """One node of a variable's derivation: op is entity | join | and | count | argmax | argmin."""

    op: str
    args: tuple[Any, ...]

    def __str__(self) -> str:  # the S-expression AgentBench writes for the same program
        if self.op == "entity":
            return self.args[0]
        if self.op == "join":
            return f"(JOIN (R {self.args[0]}) {self.args[1]})"
        if self.op in ("argmax", "argmin"):
            return f"({self.op.upper()} {self.args[0]} {self.args[1]})"
        return f"({self.op.upper()} {' '.join(map(str, self.args))})"


def entity(mid: str) -> Program:
    return Program("entity", (mid,))


def join(relation: str, source: Program) -> Program:
    """The entities that members of `source` reach by `relation` (AgentBench's get_neighbors)."""
    return Program("join", (relation, source))


def _iri(name: str) -> str:
    return f"ns:{name}"


def _pattern(p: Program, var: str, fresh) -> list[str]:
    """Triple patterns binding `var` to the members of `p`."""
    if p.op == "entity":
        return [f"VALUES {var} {{ {_iri(p.args[0])} }}"]
    if p.op == "join":
        relation, source = p.args
        if source.op == "entity":
            return [f"{_iri(source.args[0])} {_iri(relation)} {var} ."]
        inner = next(fresh)
        return _pattern(source, inner, fresh) + [f"{inner} {_iri(relation)} {var} ."]
    if p.op == "and":
        return _pattern(p.args[0], var, fresh) + _pattern(p.args[1], var, fresh)
    if p.op in ("argmax", "argmin"):
        source, attribute = p.args
        value = next(fresh)
        order = "DESC" if p.op == "argmax" else "ASC"
        body = " ".join(_pattern(source, var, fresh) + [f"{var} {_iri(attribute)} {value} ."])
        return [f"{{ SELECT {var} WHERE {{ {body} }} ORDER BY {order}({value}) LIMIT 1 }}"]
    raise ValueError(f"a {p.op} result is a number, not a set of entities")


def _fresh():
    return (f"?v{i}" for i in itertools.count())


def members_query(p: Program) -> str:
    fresh = _fresh()
    if p.op == "count":
        body = "\n".join(_pattern(p.args[0], "?x", fresh))
        return PREFIX + "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {\n" + body + "\n}"
    return PREFIX + "SELECT DISTINCT ?x WHERE {\n" + "\n".join(_pattern(p, "?x", fresh)) + "\n}"


def out_relations_query(p: Program) -> str:
    """Every predicate leaving a member of `p` (the caller keeps the schema's relations or attributes)."""
    fresh = _fresh()
    return PREFIX + "SELECT DISTINCT ?r WHERE {\n" + "\n".join(_pattern(p, "?x", fresh)) + "\n?x ?r ?o .\n}"


def term_text(term: Any) -> str:
    """A result term as AgentBench reports it: Freebase IRIs lose the namespace, literals give their text."""
    text = str(term)
    return text[len(FREEBASE_NS):] if text.startswith(FREEBASE_NS) else text


class Backend:
    """Runs SELECT queries on an rdflib graph: the embedded one, or a remote endpoint through rdflib's
    SPARQLStore (so a user with a Freebase Virtuoso points `sparql_url` at it and nothing else changes)."""

    def __init__(self, graph, lock: threading.Lock | None = None):
        self.graph = graph
        # rdflib's in-memory store gives wrong results when two threads query it at once: the embedded graph is
        # shared by the loop's workers, so they pass one lock (a remote endpoint needs none)
        self.lock = lock or contextlib.nullcontext()

    @classmethod
    def endpoint(cls, url: str, timeout: float = 60.0) -> "Backend":
        from rdflib import Graph
        from rdflib.plugins.stores.sparqlstore import SPARQLStore

        return cls(Graph(store=SPARQLStore(url, returnFormat="json", timeout=timeout)))

    def select(self, query: str) -> list[str]:
        """The first column of every result row, as text."""
        with self.lock:
            rows = list(self.graph.query(query))
        return [term_text(row[0]) for row in rows if row[0] is not None]

    def members(self, p: Program) -> list[str]:
        return sorted(set(self.select(members_query(p))))

    def out_relations(self, p: Program) -> set[str]:
        return set(self.select(out_relations_query(p)))
