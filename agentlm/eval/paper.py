"""The AgentTuning paper's results table and its overall-score arithmetic, as data.

Reports put our numbers next to the paper's rows, and the overall scores must be computed exactly the way the paper's
were, so the table and the per-task normalisers live here once. Scores are on the paper's scales: percentages for
every task except MT-Bench (1-10) and WebArena (a small percentage); overall = mean over a category's tasks of
score / normaliser (the normalisers are fitted to the paper's table and reproduce every overall to two decimals).
"""
from __future__ import annotations

import math
from typing import Mapping

from agentlm.envs import registry

MODELS = ("GPT-3.5", "GPT-4", "Llama-2-7B-chat", "Llama-2-13B-chat", "Llama-2-70B-chat",
          "AgentLM-7B", "AgentLM-13B", "AgentLM-70B")

CATEGORIES = {
    "held_in": ("ALFWorld", "WebShop", "Mind2Web", "KG", "OS", "DB"),
    "held_out": ("SciWorld", "MiniWoB++", "WebArena", "HotpotQA", "ReWOO", "Digital Card Game"),
    "general": ("MMLU", "HumanEval", "GSM8K", "MT-Bench"),
}

NORMALISERS = {
    "ALFWorld": 19.9, "WebShop": 27.9, "Mind2Web": 9.3, "KG": 15.7, "OS": 18.1, "DB": 12.5,
    "SciWorld": 14.9, "MiniWoB++": 31.7, "WebArena": 2.83, "HotpotQA": 37.7, "ReWOO": 57.0, "Digital Card Game": 15.9,
    "MMLU": 58.1, "HumanEval": 35.3, "GSM8K": 53.7, "MT-Bench": 8.13,
}

# Per-task scores, one value per entry of MODELS.
_TABLE = {
    "ALFWorld": (14.0, 78.0, 2.0, 2.0, 6.0, 84.0, 76.0, 86.0),
    "WebShop": (67.2, 58.6, 4.4, 7.2, 1.5, 63.6, 70.8, 64.9),
    "Mind2Web": (15.7, 22.6, 3.7, 2.3, 0.2, 6.4, 8.4, 13.5),
    "KG": (27.2, 52.1, 0.0, 0.0, 0.0, 18.1, 26.8, 47.0),
    "OS": (32.6, 36.8, 8.3, 9.0, 9.0, 17.4, 18.1, 21.5),
    "DB": (15.0, 33.7, 0.3, 1.3, 9.3, 30.6, 33.7, 37.7),
    "SciWorld": (21.2, 36.4, 5.9, 6.4, 7.9, 13.7, 18.0, 20.8),
    "MiniWoB++": (66.7, 69.4, 0.0, 19.6, 0.7, 28.9, 31.1, 60.7),
    "WebArena": (4.56, 6.28, 1.23, 1.11, 0.62, 0.74, 1.60, 3.81),
    "HotpotQA": (37.4, 52.1, 22.6, 25.2, 37.5, 22.3, 29.6, 41.6),
    "ReWOO": (71.0, 79.7, 48.3, 48.7, 55.1, 50.9, 55.7, 66.0),
    "Digital Card Game": (24.5, 50.0, 0.0, 0.0, 5.0, 7.0, 2.5, 23.5),
    "MMLU": (70.0, 86.4, 48.0, 54.3, 62.1, 48.7, 53.6, 59.5),
    "HumanEval": (48.1, 67.0, 13.9, 18.4, 30.8, 15.4, 14.8, 28.7),
    "GSM8K": (57.1, 87.1, 27.7, 37.5, 54.7, 24.6, 32.4, 59.7),
    "MT-Bench": (7.94, 8.99, 6.26, 6.65, 6.85, 6.11, 6.57, 7.26),
}

# The overall rows as printed in the paper (what our arithmetic must reproduce).
PUBLISHED_OVERALLS = {
    "held_in": (1.59, 2.75, 0.19, 0.20, 0.27, 1.96, 2.11, 2.55),
    "held_out": (1.49, 2.13, 0.38, 0.49, 0.51, 0.67, 0.78, 1.40),
    "general": (1.15, 1.53, 0.63, 0.74, 0.95, 0.62, 0.69, 0.96),
}

# The general benchmarks' keys -> the paper's names. Agent tasks come from the environment registry: each EnvSpec
# names its paper row (`paper_task`) and what stands in for the paper's setting (`note`); an environment that is
# not in the paper (the tool-use domains) maps to its own name, is reported without a paper reference and counts in
# no overall.
GENERAL_TASKS = {"mmlu": "MMLU", "humaneval": "HumanEval", "gsm8k": "GSM8K", "mt_bench": "MT-Bench"}


def task_to_paper() -> dict[str, str]:
    """Our task keys (registered environments and general benchmarks) -> the paper's task names."""
    return {**{name: spec.paper_task or name for name, spec in registry.specs().items()}, **GENERAL_TASKS}


def stand_ins() -> dict[str, str]:
    """Task key -> why its score is not the paper's setting (e.g. TextWorld games standing in for ALFWorld)."""
    return {name: spec.note for name, spec in registry.specs().items() if spec.note}


def __getattr__(name: str):
    # TASK_TO_PAPER and STAND_INS read the registry when asked, so environments registered later are included.
    if name == "TASK_TO_PAPER":
        return task_to_paper()
    if name == "STAND_INS":
        return stand_ins()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def paper_row(model: str) -> dict[str, float]:
    """The paper's per-task scores of one model, keyed by the paper's task names."""
    if model not in MODELS:
        raise KeyError(f"unknown paper model {model!r}; known: {', '.join(MODELS)}")
    j = MODELS.index(model)
    return {task: values[j] for task, values in _TABLE.items()}


def category_of(paper_task: str) -> str:
    for category, tasks in CATEGORIES.items():
        if paper_task in tasks:
            return category
    raise KeyError(f"{paper_task!r} is in no category of the paper's table")


def overall(scores: Mapping[str, float], category: str) -> dict:
    """Overall score of one category from per-task scores keyed by the paper's task names.

    Only tasks of `category` that are present (and not NaN) count: the result is the mean of score / normaliser over
    those, with `tasks` naming them and `complete` telling whether the category's full task set was run. Returns
    {"overall": None, ...} when none of the category's tasks was scored.
    """
    if category not in CATEGORIES:
        raise KeyError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    used = [t for t in CATEGORIES[category]
            if t in scores and scores[t] is not None and not math.isnan(float(scores[t]))]
    value = sum(float(scores[t]) / NORMALISERS[t] for t in used) / len(used) if used else None
    return {"overall": value, "tasks": used, "complete": len(used) == len(CATEGORIES[category]),
            "missing": [t for t in CATEGORIES[category] if t not in used]}


def overalls(scores: Mapping[str, float]) -> dict[str, dict]:
    """All three category overalls from per-task scores keyed by the paper's task names."""
    return {category: overall(scores, category) for category in CATEGORIES}


def to_paper_names(scores: Mapping[str, float]) -> dict[str, float]:
    """Maps our task keys (db, os, alfworld, mmlu, ...) to the paper's names; unknown keys raise. When a stand-in
    (an environment with a `note`) and the real task both ran, the real one's score is the paper row's."""
    names, notes = task_to_paper(), stand_ins()
    out: dict[str, float] = {}
    for key in sorted(scores, key=lambda k: k not in notes):  # stand-ins first, so a real task overwrites them
        if key not in names:
            raise KeyError(f"task {key!r} has no counterpart in the paper's table; known: {', '.join(names)}")
        out[names[key]] = scores[key]
    return out
