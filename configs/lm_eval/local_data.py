"""Datasets for the lm-evaluation-harness task YAMLs in this folder, read from the local files users provide.

lm-eval calls these through `custom_dataset` with the `--metadata` JSON as keyword arguments, so no dataset is
fetched from a hub: `data_dir` names the folder (the original Hendrycks MMLU CSVs: dev/ and test/
<subject>_{dev,test}.csv; GSM8K: test.jsonl of {question, answer "... #### N"}). Optional: `subjects` (MMLU subject
names), `limit_per_subject` (MMLU), `limit` (GSM8K). A malformed row is an error naming file and row.

Kept free of agentlm imports on purpose: lm-eval's numbers are a cross-check of agentlm.eval's own readers.
"""
from __future__ import annotations

import csv
import json
import pathlib

LETTERS = ("A", "B", "C", "D")


def _mmlu_rows(path: pathlib.Path, subject: str, limit: int | None) -> list[dict]:
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if len(row) != 6 or row[5].strip() not in LETTERS:
                raise ValueError(f"{path}:{n}: expected question, A, B, C, D, answer letter; got {row!r:.200}")
            rows.append({"subject": subject.replace("_", " "), "question": row[0].strip(), "choices": row[1:5],
                         "answer": LETTERS.index(row[5].strip())})
    return rows[:limit] if limit else rows


def load_mmlu(data_dir: str = "", subjects=None, limit_per_subject: int | None = None, **_):
    """{"test", "dev"} splits over the chosen subjects (all found under data_dir/test by default)."""
    import datasets

    if not data_dir:
        raise ValueError("mmlu_local: pass --metadata '{\"data_dir\": \"/path/to/mmlu\"}' (dev/ and test/ CSVs)")
    root = pathlib.Path(data_dir)
    found = sorted(p.name[:-len("_test.csv")] for p in (root / "test").glob("*_test.csv"))
    if not found:
        raise FileNotFoundError(f"mmlu_local: no <subject>_test.csv under {root / 'test'}")
    chosen = list(subjects) if subjects else found
    missing = sorted(set(chosen) - set(found))
    if missing:
        raise ValueError(f"mmlu_local: subjects not under {root / 'test'}: {missing}")
    splits = {"test": [], "dev": []}
    for s in chosen:
        splits["test"] += _mmlu_rows(root / "test" / f"{s}_test.csv", s, limit_per_subject)
        dev = root / "dev" / f"{s}_dev.csv"
        if dev.is_file():
            splits["dev"] += _mmlu_rows(dev, s, None)
    return {k: datasets.Dataset.from_list(v) for k, v in splits.items() if v}


def load_gsm8k(data_dir: str = "", limit: int | None = None, **_):
    """{"test"} from data_dir/test.jsonl (or data_dir itself when it names the file)."""
    import datasets

    if not data_dir:
        raise ValueError("gsm8k_local: pass --metadata '{\"data_dir\": \"/path/to/gsm8k\"}' (test.jsonl)")
    path = pathlib.Path(data_dir)
    path = path / "test.jsonl" if path.is_dir() else path
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("question"), str) or "####" not in str(row.get("answer", "")):
                raise ValueError(f"{path}:{n}: expected {{question, answer ending '#### N'}}")
            rows.append({"question": row["question"], "answer": row["answer"]})
    return {"test": datasets.Dataset.from_list(rows[:limit] if limit else rows)}
