"""The embedded knowledge graph: an rdflib graph built from what AgentBench's KG items themselves say.

Freebase is not available offline. Each item, though, states facts: its gold action sequence walks named
relations from the question's entities, and its answer says where the walk ends. The graph holds exactly those
facts, in Freebase's namespace:
- an edge `e r a` for every step whose ends the item names (question entity -> answer entity);
- for a step whose ends are not named (an intermediate set such as "the cameras with a Bayer filter"), a
  *witness* node stands for the unknown Freebase entities (an IRI under `WITNESS_NS`, one per item and variable),
  the existential reading of the program; a count of N needs N witnesses;
- the reverse of each edge where the schema names one (Freebase stores both directions);
- `type.object.type` from the relation ranges, `type.object.name` for named entities;
- for argmax/argmin, the winner's attribute edge; its value is not in the data, so the literal says so
  (`UNKNOWN_VALUE`): only the winner of the set carries it, which keeps the superlative right.

What follows: replaying an item's gold program returns its gold answer unless the program breaks AgentBench's
own rules (a relation the schema does not list, intersecting variables of different types) or another item's
facts about the same entity and relation add members (true Freebase facts that make a set larger than this
item's gold set; the report counts these). A model sees far fewer relations per entity than on Freebase (only
those some item's program walks), so scores here are not comparable with scores on full Freebase: see
docs/envs/kg.md.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from agentlm.envs.kg.ontology import Ontology
from agentlm.envs.kg.sparql import FREEBASE_NS

WITNESS_NS = "urn:agentlm:kg:witness:"
UNKNOWN_VALUE = "value unknown (not in the AgentBench data)"
ACTION = re.compile(r"^\s*(\w+)\((.*)\)\s*$")
MID = re.compile(r"^[mg]\.[\w]+$")
VARIABLE_TOOLS = ("get_neighbors", "intersection", "count", "argmax", "argmin")


def parse_action(text: str, where: str) -> tuple[str, list[str]]:
    m = ACTION.match(text)
    if not m:
        raise ValueError(f"{where}: gold action {text!r} is not name(arguments)")
    return m.group(1), [a.strip() for a in m.group(2).split(",")]


def gold_answer(item: dict[str, Any]) -> list[str]:
    return [str(a["answer_argument"]) for a in item["answer"]]


def _answer_node(a: dict[str, Any]):
    from rdflib import Literal, URIRef

    arg = str(a["answer_argument"])
    kind = a.get("answer_type") or ("Entity" if MID.match(arg) else "Value")
    return URIRef(FREEBASE_NS + arg) if kind == "Entity" else Literal(arg)


def add_item(graph, item: dict[str, Any], ontology: Ontology, where: str) -> None:
    """Adds the facts one item states (see the module docstring)."""
    from rdflib import Literal, URIRef

    ns = lambda name: URIRef(FREEBASE_NS + name)  # noqa: E731
    type_of, name_of = ns("type.object.type"), ns("type.object.name")
    qid = str(item.get("qid", where))
    steps = []  # (tool, args) of the variable-producing actions, in variable order
    for n, action in enumerate(item["actions"]):
        tool, args = parse_action(action, f"{where} action {n}")
        if tool in VARIABLE_TOOLS:
            steps.append((tool, args))
    for surface, mid in item.get("entities", {}).items():
        graph.add((ns(mid), name_of, Literal(surface)))
    for a in item["answer"]:
        if a.get("entity_name"):
            graph.add((_answer_node(a), name_of, Literal(a["entity_name"])))
    if not steps:
        return

    def witnesses(k: int, n: int) -> list:
        return [URIRef(f"{WITNESS_NS}{qid}/{k}/{i}") for i in range(n)]

    ext: dict[int, list] = {}
    final = len(steps) - 1
    if steps[final][0] == "count":
        ext[final] = []
        counted = _var(steps[final][1][0], f"{where} count")
        try:
            n = int(float(item["answer"][0]["answer_argument"]))
        except (ValueError, IndexError, KeyError):
            raise ValueError(f"{where}: a count program needs a numeric answer, got {item['answer']!r}") from None
        ext[counted] = witnesses(counted, n)
    else:
        ext[final] = [_answer_node(a) for a in item["answer"]]

    def members(arg: str, relation: str, targets: list) -> list:
        if not arg.startswith("#"):
            return [ns(arg)]
        j = _var(arg, where)
        if j not in ext:
            # an unnamed source may be one of this item's witnesses already (a reverse edge put it there: "a
            # disease of this agent type" is one of the agent type's diseases), else it is a new witness
            mine = f"{WITNESS_NS}{qid}/"
            known = [s for s in graph.subjects(ns(relation), targets[0]) if str(s).startswith(mine)] \
                if targets else []
            ext[j] = [sorted(known, key=str)[0]] if known else witnesses(j, 1)
        return ext[j]

    def edge(s, relation: str, o) -> None:
        graph.add((s, ns(relation), o))
        rng = ontology.range_of.get(relation)
        if rng and isinstance(o, URIRef):
            graph.add((o, type_of, ns(rng)))
        if relation in ontology.reverse and isinstance(o, URIRef):
            graph.add((o, ns(ontology.reverse[relation]), s))

    for k in range(final, -1, -1):
        tool, args = steps[k]
        targets = ext.setdefault(k, witnesses(k, 1))
        if tool == "get_neighbors":
            for s in members(args[0], args[1], targets):
                for o in targets:
                    edge(s, args[1], o)
        elif tool == "intersection":
            for arg in args[:2]:
                j = _var(arg, where)
                ext[j] = ext.get(j, []) + [t for t in targets if t not in ext.get(j, [])]
        elif tool in ("argmax", "argmin"):
            j = _var(args[0], where)
            ext.setdefault(j, list(targets))
            for t in targets:
                graph.add((t, ns(args[1]), Literal(UNKNOWN_VALUE)))
        elif tool == "count" and k != final:
            ext.setdefault(_var(args[0], where), witnesses(_var(args[0], where), 1))


def _var(arg: str, where: str) -> int:
    if not re.fullmatch(r"#\d+", arg.strip()):
        raise ValueError(f"{where}: expected a variable like #0, got {arg!r}")
    return int(arg.strip()[1:])


def build_graph(items: Iterable[dict[str, Any]], ontology: Ontology, source: str = "items"):
    """One rdflib graph holding the facts of every item (see the module docstring)."""
    from rdflib import Graph

    graph = Graph()
    for n, item in enumerate(items):
        add_item(graph, item, ontology, f"{source} item {n} ({item.get('qid', '?')})")
    return graph
