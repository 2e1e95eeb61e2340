"""The Freebase schema AgentBench's KG task ships (`ontology/` beside its question files): which names are
relations and which are numerical attributes (the tools list only those), the range type of every relation (a
variable's type, which `intersection` compares), and each relation's reverse (Freebase stores both directions of
an edge, so the local graph does too).

    fb_roles            "domain_type relation range_type" per line
    reverse_properties  "relation<TAB>reverse relation" per line
    vocab.json          {"attributes": [...], "relations": [...], "classes": [...]}
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib

FILES = ("fb_roles", "reverse_properties", "vocab.json")


@dataclasses.dataclass(frozen=True)
class Ontology:
    relations: frozenset[str]
    attributes: frozenset[str]
    range_of: dict[str, str]
    domain_of: dict[str, str]
    reverse: dict[str, str]

    def variable_type(self, relation: str) -> str:
        """The type of the entities `get_neighbors(_, relation)` returns (its range in fb_roles)."""
        if relation not in self.range_of:
            raise ValueError(f"relation {relation!r} has no range in the schema (fb_roles)")
        return self.range_of[relation]


@functools.lru_cache(maxsize=4)
def load_ontology(directory: str | pathlib.Path) -> Ontology:
    """Reads the three schema files of `directory`; a missing file or a malformed line is named."""
    d = pathlib.Path(directory)
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"KG ontology directory {d}: missing {', '.join(missing)} (AgentBench's "
                                "src/server/tasks/knowledgegraph/ontology/ files)")
    range_of, domain_of = {}, {}
    for n, line in enumerate((d / "fb_roles").read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise ValueError(f"{d / 'fb_roles'} line {n}: expected 'domain relation range', got {line!r}")
        domain_of[parts[1]], range_of[parts[1]] = parts[0], parts[2]
        if len(parts) == 5:  # the published file has two records glued on one line (a lost line break)
            domain_of[parts[3]], range_of[parts[3]] = parts[2], parts[4]
    reverse = {}
    for n, line in enumerate((d / "reverse_properties").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{d / 'reverse_properties'} line {n}: expected 'relation<TAB>reverse', got {line!r}")
        a, b = parts[0].strip(), parts[1].strip()
        reverse[a], reverse[b] = b, a
    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    for key in ("relations", "attributes"):
        if not isinstance(vocab.get(key), list):
            raise ValueError(f"{d / 'vocab.json'}: field {key!r} must be a list of names")
    return Ontology(frozenset(vocab["relations"]), frozenset(vocab["attributes"]), range_of, domain_of, reverse)
