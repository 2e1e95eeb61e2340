"""ReWOO's evaluation sets as AgentTuning ran them (50 rows each, pandas sample with seed 2024), and their answer
rules.

AgentTuning's ReWOO column pools seven sets. Here: strategy_qa, sports_understanding, physics_question and
sotu_qa from ReWOO's own CSVs, rows from `agenttuning/samples_seed2024_n50.json` (the rows
`DataFrame.sample(50, random_state=2024)` draws); gsm8k from the GSM8K test file, rows
`RandomState(2024).permutation(n)[:50]` (the same draw), a substitute for the Hugging Face train split the paper
sampled; hotpot_qa and trivia_qa (Hugging Face train splits) are missing. `SETS` says which is which, and
reports show it.

Scoring: yes/no-type sets by rule (the label the answer states), numeric sets by rule (the answer's first number
equals a gold number: exactly for GSM8K, within 1% for physics, whose golds carry units), free text (SOTU) by
HotpotQA's answer F1, or by an LLM judge when one is configured (the paper judged every answer with a GPT model,
LangChain's QAEvalChain).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
import re

from agentlm.envs.base import Task
from agentlm.envs.qa_metrics import exact_match, f1_score, normalize_answer

SAMPLES_FILE = "agenttuning/samples_seed2024_n50.json"
SAMPLE_SEED, SAMPLE_SIZE = 2024, 50


@dataclasses.dataclass(frozen=True)
class RewooSet:
    name: str
    kind: str  # "label", "numeric" or "free"
    tools: tuple[str, ...]  # the offline toolset
    paper_tools: tuple[str, ...]  # what eval-tgi.sh gave it
    status: str  # "as in the paper", "substituted: ...", "missing: ..."
    labels: tuple[str, ...] = ()
    rel_tol: float = 0.0


SETS = {s.name: s for s in (
    RewooSet("hotpot_qa", "free", (), ("Wikipedia", "LLM"), "missing: the paper sampled the Hugging Face train "
             "split, not available here"),
    RewooSet("trivia_qa", "free", (), ("Wikipedia", "LLM"), "missing: the paper sampled the Hugging Face train "
             "split, not available here"),
    RewooSet("gsm8k", "numeric", ("LLM", "Calculator"), ("LLM", "WolframAlpha", "Calculator"),
             "substituted: 50 rows of the GSM8K test file (the paper sampled the train split); no WolframAlpha"),
    RewooSet("strategy_qa", "label", ("Wikipedia", "LLM", "Calculator"),
             ("Wikipedia", "LLM", "WolframAlpha", "Calculator", "Google"),
             "tools substituted: Wikipedia is the local HotpotQA corpus; no WolframAlpha or Google",
             labels=("yes", "no")),
    RewooSet("physics_question", "numeric", ("Wikipedia", "LLM", "Calculator"),
             ("Wikipedia", "LLM", "WolframAlpha", "Calculator", "Google"),
             "tools substituted: Wikipedia is the local HotpotQA corpus; no WolframAlpha or Google", rel_tol=0.01),
    RewooSet("sports_understanding", "label", ("Wikipedia", "LLM", "Calculator"),
             ("Wikipedia", "LLM", "WolframAlpha", "Calculator", "Google"),
             "tools substituted: Wikipedia is the local HotpotQA corpus; no WolframAlpha or Google",
             labels=("implausible", "plausible")),
    RewooSet("sotu_qa", "free", ("LLM", "Calculator", "SearchSOTU"), ("LLM", "Calculator", "Google", "SearchSOTU"),
             "tools substituted: SearchSOTU is BM25 passage search (the paper: embeddings + an LLM); no Google"),
)}
AVAILABLE = ("strategy_qa", "sports_understanding", "physics_question", "sotu_qa", "gsm8k")
_CSV = {"strategy_qa": ("bigbench/strategy_qa.csv", "input", "target"),
        "sports_understanding": ("bigbench/sports_understanding.csv", "input", "target"),
        "physics_question": ("bigbench/physics_question.csv", "input", "target"),
        "sotu_qa": ("SOTU/SOTU_QA.csv", "question", "answer")}


def _read_csv(path: pathlib.Path, qcol: str, acol: str) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or qcol not in reader.fieldnames or acol not in reader.fieldnames:
            raise ValueError(f"{path}: expected columns {qcol!r} and {acol!r}, got {reader.fieldnames}")
        return [(r[qcol], r[acol]) for r in reader]


def _sample_rows(root: pathlib.Path, name: str, n_rows: int) -> list[int]:
    samples = root / SAMPLES_FILE
    if samples.is_file():
        entry = json.loads(samples.read_text()).get("datasets", {}).get(name)
        if entry is not None:
            if entry.get("rows_in_csv") not in (None, n_rows):
                raise ValueError(f"{samples}: {name} lists {entry['rows_in_csv']} rows, the CSV has {n_rows}")
            return [int(i) for i in entry["row_indices"]]
    import numpy as np  # the draw pandas' DataFrame.sample(n, random_state=seed) makes

    return [int(i) for i in np.random.RandomState(SAMPLE_SEED).permutation(n_rows)[:SAMPLE_SIZE]]


def _gsm8k(path: pathlib.Path) -> list[tuple[str, str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            r = json.loads(line)
            if "question" not in r or "####" not in r.get("answer", ""):
                raise ValueError(f"{path}:{n}: expected {{question, answer ending '#### N'}}")
            rows.append((r["question"], r["answer"].split("####")[-1].strip().replace(",", ""), r["answer"]))
    return rows


def load_tasks(source: str, split: str = "test", gsm8k_file: str = "") -> list[Task]:
    """`DIR` (ReWOO's data folder: bigbench/, SOTU/, agenttuning/) or `DIR::set1,set2`. GSM8K comes from
    `gsm8k=PATH` in that list (e.g. `DIR::sotu_qa,gsm8k=/data/gsm8k/test.jsonl`), else `gsm8k_file`, else
    DIR/../general_eval/gsm8k/test.jsonl."""
    root_text, _, wanted = str(source).partition("::")
    root = pathlib.Path(root_text)
    if not root.is_dir():
        raise FileNotFoundError(f"ReWOO data folder {root} does not exist")
    names = []
    for entry in (n.strip() for n in wanted.split(",") if n.strip()):
        name, eq, path = entry.partition("=")
        if eq and name.strip() == "gsm8k":
            gsm8k_file = path.strip()
        names.append(name.strip())
    names = names or list(AVAILABLE)
    for n in names:
        if n not in AVAILABLE:
            raise ValueError(f"ReWOO set {n!r}: available here are {', '.join(AVAILABLE)} "
                             f"({'; '.join(f'{k}: {s.status}' for k, s in SETS.items() if k not in AVAILABLE)})")
    tasks = []
    for name in names:
        if name == "gsm8k":
            path = pathlib.Path(gsm8k_file) if gsm8k_file else root.parent / "general_eval" / "gsm8k" / "test.jsonl"
            if not path.is_file():
                raise FileNotFoundError(f"ReWOO gsm8k: {path} does not exist (give the GSM8K test file)")
            rows = _gsm8k(path)
            picked = [(i, rows[i][0], rows[i][1], rows[i][2]) for i in _sample_rows(root, name, len(rows))]
        else:
            rel, qcol, acol = _CSV[name]
            rows = _read_csv(root / rel, qcol, acol)
            picked = [(i, rows[i][0], rows[i][1], "") for i in _sample_rows(root, name, len(rows))]
        for i, question, answer, solution in picked:
            data = {"set": name, "row": i, "question": question.strip(), "answer": answer.strip()}
            if solution:
                data["solution"] = solution
            tasks.append(Task(id=f"rewoo_{name}_{i}", env="rewoo", data=data, split=split))
    return tasks


# -- answer rules --------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def gold_candidates(answer: str) -> list[str]:
    """Physics golds read "Can be one of ['7187 m', '7 km']"; other golds are one answer."""
    m = re.match(r"\s*Can be one of\s*(\[.*\])\s*$", answer)
    if m:
        import ast

        return [str(x) for x in ast.literal_eval(m.group(1))]
    return [answer]


def stated_label(prediction: str, labels: tuple[str, ...]) -> str | None:
    """The first of `labels` the prediction states (labels are tried longest first, so "implausible" is not read
    as "plausible")."""
    words = normalize_answer(prediction).split()
    text = " ".join(words)
    if set(labels) == {"plausible", "implausible"} and re.search(r"\bnot plausible\b", text):
        return "implausible"
    hits = [(words.index(lbl), -len(lbl), lbl) for lbl in labels if lbl in words]
    return min(hits)[2] if hits else None


def rule_score(task_set: RewooSet, prediction: str, gold: str) -> dict:
    """{"reward": 0..1, "em", "f1"} by the set's rule (free text: F1)."""
    em, f1 = exact_match(prediction, gold), f1_score(prediction, gold)
    if task_set.kind == "label":
        correct = stated_label(prediction, task_set.labels) == normalize_answer(gold)
        return {"reward": float(correct), "em": em, "f1": f1}
    if task_set.kind == "numeric":
        said = numbers(prediction)
        golds = [g for c in gold_candidates(gold) for g in numbers(c)[:1]]
        correct = bool(said) and any(math.isclose(said[0], g, rel_tol=task_set.rel_tol, abs_tol=1e-6)
                                     for g in golds)
        return {"reward": float(correct), "em": em, "f1": f1}
    return {"reward": f1, "em": em, "f1": f1}
