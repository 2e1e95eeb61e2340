"""MT-Bench single-answer grading: the model answers 80 two-turn questions, a judge model rates each turn 1-10.

Follows FastChat's llm_judge protocol with the judge prompts from the data file (judge_prompts.jsonl): turn 1 uses
"single-v1", turn 2 "single-v1-multi-turn"; math, reasoning and coding questions use the reference-guided
"single-math-v1(-multi-turn)" prompts with the reference answers from reference_answer_<model>.jsonl. The judge is
any OpenAI-compatible chat endpoint reached through the openai client (temperature 0). Its verdict is parsed from
"[[rating]]" (falling back to "[rating]"); verdicts without one count as unparsed and are left out of the mean, as
FastChat does. The score is the mean over all parsed turn ratings; per-turn and per-category means go alongside.
The model under test answers greedily (the paper's decoding), not with FastChat's per-category temperatures.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import pathlib
import re
from typing import Iterable

from tqdm.auto import tqdm

from agentlm.api_retry import RetryPolicy, chat_completion
from agentlm.jsonl import iter_jsonl
from agentlm.eval.lm import EvalModel
from agentlm.eval.records import RecordFile

REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")


def _read_jsonl(path: pathlib.Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


def load_questions(path: str | pathlib.Path) -> list[dict]:
    path = pathlib.Path(path)
    questions = _read_jsonl(path)
    for n, q in enumerate(questions, 1):
        if not isinstance(q.get("turns"), list) or len(q["turns"]) != 2 or "question_id" not in q:
            raise ValueError(f"{path}:{n}: a question needs question_id and exactly two turns")
    return questions


def load_judge_prompts(path: str | pathlib.Path) -> dict[str, dict]:
    path = pathlib.Path(path)
    prompts = {p["name"]: p for p in _read_jsonl(path)}
    needed = ("single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn")
    missing = [n for n in needed if n not in prompts]
    if missing:
        raise ValueError(f"{path}: judge prompts {missing} are missing")
    return prompts


def load_references(path: str | pathlib.Path) -> dict[int, list[str]]:
    path = pathlib.Path(path)
    return {r["question_id"]: r["choices"][0]["turns"] for r in _read_jsonl(path)}


def parse_rating(judgment: str) -> float | None:
    """The judge's "[[N]]" rating (or "[N]"); None when it gave none."""
    m = _RATING.search(judgment) or _RATING_FALLBACK.search(judgment)
    return float(m.group(1)) if m else None


def judge_messages(question: dict, answers: list[str], turn: int, prompts: dict[str, dict],
                   references: dict[int, list[str]]) -> list[dict]:
    """The judge's chat messages for one turn (0 or 1) of one question."""
    with_ref = question["category"] in REFERENCE_CATEGORIES
    name = ("single-math-v1" if with_ref else "single-v1") + ("-multi-turn" if turn == 1 else "")
    prompt = prompts[name]
    fields = {}
    if turn == 0:
        fields.update(question=question["turns"][0], answer=answers[0])
    else:
        fields.update(question_1=question["turns"][0], answer_1=answers[0], question_2=question["turns"][1],
                      answer_2=answers[1])
    if with_ref:
        ref = references.get(question["question_id"])
        if ref is None:
            raise ValueError(f"question {question['question_id']} ({question['category']}) needs a reference "
                             "answer and the reference file has none")
        fields.update(ref_answer_1=ref[0], ref_answer_2=ref[1] if len(ref) > 1 else "")
    return [{"role": "system", "content": prompt["system_prompt"]},
            {"role": "user", "content": prompt["prompt_template"].format(**fields)}]


class Judge:
    """A judge model behind an OpenAI-compatible chat endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_tokens: int = 2048,
                 concurrency: int = 8, timeout: float = 600.0):
        import openai

        # The judge is often a hosted API: its key may come from OPENAI_API_KEY rather than the config.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.retry = RetryPolicy(max_retries=2)  # the project's one policy (agentlm.api_retry)
        self.model, self.max_tokens, self.concurrency = model, max_tokens, concurrency

    def __call__(self, messages: list[dict]) -> str:
        r = chat_completion(self.client, self.retry, model=self.model, messages=messages, temperature=0.0,
                            max_tokens=self.max_tokens)
        return r.choices[0].message.content or ""


def score(judgments: Iterable[dict]) -> dict:
    judgments = list(judgments)
    rated = [j for j in judgments if j["rating"] is not None]
    if not rated:
        raise ValueError(f"none of {len(judgments)} MT-Bench judgments carried a [[rating]]")

    def mean(rows):
        return sum(r["rating"] for r in rows) / len(rows) if rows else None

    categories = sorted({j["category"] for j in rated})
    return {"score": mean(rated), "n": len(rated), "unparsed": len(judgments) - len(rated),
            "turn_1": mean([j for j in rated if j["turn"] == 1]), "turn_2": mean([j for j in rated if j["turn"] == 2]),
            "per_category": {c: mean([j for j in rated if j["category"] == c]) for c in categories}}


def evaluate(model: EvalModel, judge: Judge, data_dir: str | pathlib.Path, out_dir: str | pathlib.Path,
             max_tokens: int = 1024, limit: int | None = None, reference_model: str = "gpt-4") -> dict:
    """Answers (resumably), judges (resumably) and scores. Files: answers.jsonl, judgments.jsonl in out_dir."""
    data_dir, out_dir = pathlib.Path(data_dir), pathlib.Path(out_dir)
    questions = load_questions(data_dir / "question.jsonl")[:limit] if limit else \
        load_questions(data_dir / "question.jsonl")
    prompts = load_judge_prompts(data_dir / "judge_prompts.jsonl")
    references = load_references(data_dir / f"reference_answer_{reference_model}.jsonl")

    answers = RecordFile(out_dir / "answers.jsonl")
    todo = [q for q in questions if q["question_id"] not in answers]
    with tqdm(total=len(questions), initial=len(questions) - len(todo), desc="mt_bench answers") as bar:
        if todo:  # turn 1 for all, then turn 2 with each model's own first answer in the context
            first = model.chat([[{"role": "user", "content": q["turns"][0]}] for q in todo], max_tokens)
            second = model.chat([[{"role": "user", "content": q["turns"][0]}, {"role": "assistant", "content": a},
                                  {"role": "user", "content": q["turns"][1]}] for q, a in zip(todo, first)],
                                max_tokens)
            for q, a1, a2 in zip(todo, first, second):
                answers.add({"id": q["question_id"], "category": q["category"], "turns": [a1, a2]})
                bar.update(1)

    judgments = RecordFile(out_dir / "judgments.jsonl")
    jobs = [(q, t) for q in questions for t in (0, 1) if f"{q['question_id']}/{t + 1}" not in judgments]

    def run(job):
        q, t = job
        messages = judge_messages(q, answers.get(q["question_id"])["turns"], t, prompts, references)
        text = judge(messages)
        judgments.add({"id": f"{q['question_id']}/{t + 1}", "question_id": q["question_id"], "turn": t + 1,
                       "category": q["category"], "judge_prompt": messages[1]["content"][:200], "judgment": text,
                       "rating": parse_rating(text)})

    with cf.ThreadPoolExecutor(judge.concurrency) as pool:
        for _ in tqdm(pool.map(run, jobs), total=len(jobs), desc="mt_bench judge"):
            pass
    wanted = {f"{q['question_id']}/{t}" for q in questions for t in (1, 2)}
    return {**score(j for j in judgments if j["id"] in wanted), "judge": judge.model}
