"""Toy agent task families for the CPU demo and ratio sweep: tasks a model of about two million parameters can
learn in minutes, played through the real DB and OS environments in their real action formats.

Why these: the paper's claim is that agent trajectories teach a chat model to act in environments. At toy
scale the tasks must be short (one operation, one answer), with small observations, yet still go through
everything a paper-scale run goes through: the environment's prompt and action parsing, the SQL engine or the
bash sandbox, the environment's own checker. Each family is one template over a fixed table or path whose
contents change with every instance: the command is learnable, the answer is not, so a model succeeds only by
acting and reading the answer off the observation. (A first version put random table and directory names in the
questions; 200 steps of the toy model learned the action format but not to copy those names into its SQL.)
`derive_items(family, seed, n)` gives new instances for every seed, so held-in evaluation uses the training
families' templates on unseen instances.

Families (`FAMILIES`):
  db_count   "How many rows does the table have?"            SELECT COUNT(*), then the count it returned
  db_first   "What is the name in the first row?"            SELECT name ... LIMIT 1, then the name it returned
  os_count   "How many files are in the directory /root/data?"  ls | wc -l, then answer(n)
  os_read    "What word is written in the file /root/note.txt?" cat, then answer(word)
  db_tally   (held out) "Count the records stored in the table."   the db_count skill, wording never trained on
  os_tally   (held out) "Count the entries of the folder /root/data."  the os_count skill, likewise
Held-out families share a skill with a held-in family but none of its wording: whether agent tuning on one
template transfers to another phrasing of the same job is the toy analogue of the paper's held-out tasks.
"""
from __future__ import annotations

import random
import shlex
from typing import Any, Callable

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_COLORS = ("red", "blue", "green", "black", "white", "yellow", "purple", "orange")
_CITIES = ("Oslo", "Lima", "Pune", "Lyon", "Osaka", "Quito", "Perth", "Cairo")
MAX_COUNT = 99  # counts are drawn from 1..MAX_COUNT: a constant answer is right 1 time in 99

TABLE = "items"
DATA_DIR = "/root/data"
NOTE = "/root/note.txt"


def made_up_word(rng: random.Random) -> str:
    """A pronounceable nonsense word of 2 or 3 syllables (14 x 5 = 70 syllables, ~350,000 words): drawn afresh
    for every instance, so a name or a note's word can only be known by reading it off the observation, never
    by memorising the training answers (a fixed list of 16-30 words let the model answer a constant)."""
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))


def _table(rng: random.Random) -> dict[str, Any]:
    """A dbbench table `items`: a name column (made-up names) and two attributes, 1 to MAX_COUNT rows. Only the
    query's result is shown to the model, so the table's size costs no tokens."""
    n = rng.randint(1, MAX_COUNT)
    keys: list[str] = []
    while len(keys) < n:
        name = made_up_word(rng)
        if name not in keys:
            keys.append(name)
    rows = [[k, rng.choice(_COLORS), rng.choice(_CITIES)] for k in keys]
    return {"table_name": TABLE, "table_info": {"columns": [{"name": "name", "type": "TEXT"},
                                                            {"name": "color", "type": "TEXT"},
                                                            {"name": "city", "type": "TEXT"}], "rows": rows}}


def _db_item(table: dict[str, Any], description: str, sql: str, label: list[str], kind: str, family: str) -> dict:
    heads = [c["name"] for c in table["table_info"]["columns"]]
    return {"description": description, "add_description": f"Table: {TABLE}. Columns: {', '.join(heads)}.",
            "table": table, "type": [kind], "label": label, "sql": {"query": sql}, "heads": heads, "source": "toy",
            "family": family}


def _db_count(rng: random.Random, family: str, wording: str) -> dict:
    t = _table(rng)
    return _db_item(t, wording, f"SELECT COUNT(*) FROM `{TABLE}`", [str(len(t["table_info"]["rows"]))], "counting",
                    family)


def _db_first(rng: random.Random, family: str) -> dict:
    t = _table(rng)
    return _db_item(t, "What is the name in the first row of the table?", f"SELECT `name` FROM `{TABLE}` LIMIT 1",
                    [t["table_info"]["rows"][0][0]], "other", family)


def _os_item(description: str, init: list[str], example: str, answer: str, family: str) -> dict:
    return {"description": description, "create": {"local": "default", "init": {"code": " && ".join(init)}},
            "evaluation": {"match": answer, "example": {"code": example}}, "labels": [family], "source": "toy",
            "family": family}


def _os_count(rng: random.Random, family: str, wording: str) -> dict:
    n = rng.randint(1, MAX_COUNT)
    init = [f"mkdir -p {DATA_DIR}", f"touch {' '.join(f'{DATA_DIR}/f{i}.txt' for i in range(n))}"]
    return _os_item(wording, init, f"ls {DATA_DIR} | wc -l", str(n), family)


def _os_read(rng: random.Random, family: str) -> dict:
    word = made_up_word(rng)
    return _os_item(f"What word is written in the file {NOTE}?", [f"printf %s {shlex.quote(word)} > {NOTE}"],
                    f"cat {NOTE}", word, family)


# family -> (environment, held-in?, item maker)
FAMILIES: dict[str, tuple[str, bool, Callable[[random.Random, str], dict]]] = {
    "db_count": ("db", True, lambda r, f: _db_count(r, f, "How many rows does the table have?")),
    "db_first": ("db", True, _db_first),
    "os_count": ("os", True, lambda r, f: _os_count(r, f, f"How many files are in the directory {DATA_DIR}?")),
    "os_read": ("os", True, _os_read),
    "db_tally": ("db", False, lambda r, f: _db_count(r, f, "Count the records stored in the table.")),
    "os_tally": ("os", False, lambda r, f: _os_count(r, f, f"Count the entries of the folder {DATA_DIR}.")),
}
HELD_IN = tuple(f for f, (_, held_in, _) in FAMILIES.items() if held_in)
HELD_OUT = tuple(f for f, (_, held_in, _) in FAMILIES.items() if not held_in)


def family_env(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"toy task family {family!r} is unknown; known: {sorted(FAMILIES)}")
    return FAMILIES[family][0]


def derive_items(family: str, seed: int, n: int) -> list[dict[str, Any]]:
    """`n` items of one family (dbbench or os_interaction layout), reproducible from (family, seed)."""
    family_env(family)
    rng = random.Random(f"{family}:{seed}")
    return [FAMILIES[family][2](rng, family) for _ in range(n)]


def write_eval_items(out_dir: str, seed: int, n: int, families=tuple(FAMILIES)) -> dict[str, str]:
    """One item file per family (<out_dir>/<family>.jsonl), in the format agentlm.eval.agent reads for its env."""
    import json
    import pathlib

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for family in families:
        path = out / f"{family}.jsonl"
        path.write_text("".join(json.dumps(it) + "\n" for it in derive_items(family, seed, n)))
        paths[family] = str(path)
    return paths


def main(argv=None) -> int:
    """`python -m data_pipeline.sources.toy_tasks --out D --seed 1001 --n 20`: evaluation items of every family
    (use a seed the training sources do not use, so the instances are new)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m data_pipeline.sources.toy_tasks", description=main.__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1001)
    p.add_argument("--n", type=int, default=20, help="items per family")
    p.add_argument("--families", default=",".join(FAMILIES))
    a = p.parse_args(argv)
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    for f in families:
        family_env(f)
    print(json.dumps(write_eval_items(a.out, a.seed, a.n, families), indent=1))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
