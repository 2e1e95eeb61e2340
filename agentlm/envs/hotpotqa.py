"""HotpotQA (held out): ReAct question answering with Search/Lookup/Finish over a closed local Wikipedia.

AgentTuning's set is 300 questions (easy/medium/hard, 100 each), each with its ten context paragraphs. The
environment's pages are the paragraphs of every question in the loaded item files (`agentlm.envs.wiki_corpus`), so
the gold pages are always there: a closed corpus, easier than the paper's live Wikipedia. The agent replies
"Thought k: ...\nAction k: Search[entity]" (or Lookup[keyword], Finish[answer]); an unparsable action gets the
BOLAA evaluation's "Invalid Action" observation and the episode goes on. At most 10 steps. Reward: HotpotQA's
answer F1 (`agentlm.envs.qa_metrics`); the paper's score averages the three levels' mean F1.

    tasks: a directory of {easy,medium,hard}.jsonl (AgentTuning's set), or HotpotQA files: .json (the official
    list form, `_id`) or .jsonl, with context/supporting_facts as lists ([[title, [sentences]]]) or in the
    Hugging Face column form ({"title": [...], "sentences": [...]}); several comma-separated.

With `scratchpad`, each turn shows the model one prompt holding the whole trajectory so far (BOLAA's form) instead
of a chat. The instruction is our own wording unless `prompt_dir` names a directory with `react_instruction.txt` (placeholders
{examples}, {question}, {scratchpad}) and `react_examples.txt`, e.g. AgentTuning's files, for the paper's prompt.
"""
from __future__ import annotations

import functools
import json
import pathlib
from typing import Any, Sequence

from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.qa_metrics import exact_match, f1_score
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, episode_counts, scored_episodes
from agentlm.envs.wiki_corpus import WikiBrowser, WikiCorpus, parse_wiki_action
from agentlm.jsonl import parse_lines

LEVELS = ("easy", "medium", "hard")
INVALID = "Invalid Action. Valid Actions are Lookup[<topic>] Search[<topic>] and Finish[<answer>]."

INSTRUCTION = """Answer the question by alternating Thought, Action and Observation steps. Write one thought and one
action per reply. An action is one of:
(1) Search[entity]: open the encyclopedia page whose title is the entity and show its first sentences; when there
is no such page you get a list of similar titles to try instead.
(2) Lookup[keyword]: show the next sentence of the page you last opened that contains the keyword.
(3) Finish[answer]: give the final answer (a short phrase, or yes / no) and end the task.
Example:
{examples}
(END OF EXAMPLE)
Question: {question}{scratchpad}"""

EXAMPLES = """Question: Which river runs through the city where the Eiffel Tower stands?
Thought 1: I should find where the Eiffel Tower is, then which river runs through that city.
Action 1: Search[Eiffel Tower]
Observation 1: The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.
Thought 2: The tower is in Paris. Now I need the river of Paris.
Action 2: Search[Paris]
Observation 2: Paris is the capital and most populous city of France. The city stands on the Seine.
Thought 3: The Seine runs through Paris.
Action 3: Finish[Seine]"""


# -- items ---------------------------------------------------------------------------------------------------------

def _pairs(value: Any, where: str, first: str, second: str) -> list[list]:
    """[[a, b], ...] from the list form or the Hugging Face column form {first: [...], second: [...]}."""
    if isinstance(value, dict):
        if first not in value or second not in value:
            raise ValueError(f"{where}: expected keys {first!r} and {second!r}, got {sorted(value)}")
        return [[a, list(b) if isinstance(b, (list, tuple)) else b] for a, b in zip(value[first], value[second])]
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return [list(p) for p in value]
    raise ValueError(f"{where}: expected [[{first}, {second}], ...] or {{{first!r}: [...], {second!r}: [...]}}")


def _read_rows(path: pathlib.Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of HotpotQA items")
        return rows
    return parse_lines(text, path)


def _item(row: Any, where: str) -> dict:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    for field in ("question", "answer", "context", "supporting_facts"):
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}")
    qid = row.get("id", row.get("_id"))
    if not qid:
        raise ValueError(f"{where}: missing field 'id' (or '_id')")
    context = _pairs(row["context"], f"{where} field 'context'", "title", "sentences")
    facts = _pairs(row["supporting_facts"], f"{where} field 'supporting_facts'", "title", "sent_id")
    return {"id": str(qid), "question": str(row["question"]), "answer": str(row["answer"]),
            "type": row.get("type", ""), "level": row.get("level", ""), "supporting_facts": facts,
            "context": context}


def _files(source: str) -> list[pathlib.Path]:
    out = []
    for part in filter(None, (p.strip() for p in str(source).split(","))):
        path = pathlib.Path(part)
        if path.is_dir():
            found = [path / f"{lvl}.jsonl" for lvl in LEVELS if (path / f"{lvl}.jsonl").exists()]
            found = found or sorted(path.glob("*.json*"))
            if not found:
                raise ValueError(f"{path}: no HotpotQA item files (.jsonl/.json) in this directory")
            out += found
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"HotpotQA item file {path} does not exist")
    return out


@functools.lru_cache(maxsize=8)
def _load(files: tuple[str, ...]) -> tuple[list[dict], WikiCorpus]:
    items = []
    for f in files:
        items += [_item(r, f"{f} item {i}") for i, r in enumerate(_read_rows(pathlib.Path(f)))]
    corpus = WikiCorpus((title, sents) for it in items for title, sents in it["context"])
    return items, corpus


def corpus_for(source: str) -> WikiCorpus:
    """The closed corpus of every question's paragraphs in the item files of `source`."""
    return _load(tuple(str(p) for p in _files(source)))[1]


def load_tasks(source: str, split: str = "test") -> list[Task]:
    files = tuple(str(p) for p in _files(source))
    items, _ = _load(files)
    return [Task(id=f"hotpotqa_{it['id']}", env="hotpotqa", data={**it, "corpus": ",".join(files)}, split=split)
            for it in items]


# -- environment ---------------------------------------------------------------------------------------------------

def load_prompt(prompt_dir: str | None) -> tuple[str, str]:
    """(instruction template, examples): ours, or react_instruction.txt / react_examples.txt from `prompt_dir`."""
    if not prompt_dir:
        return INSTRUCTION, EXAMPLES
    d = pathlib.Path(prompt_dir)
    files = [d / "react_instruction.txt", d / "react_examples.txt"]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"prompt_dir {d}: {f.name} is missing")
    instruction, examples = (f.read_text(encoding="utf-8") for f in files)
    for key in ("{examples}", "{question}", "{scratchpad}"):
        if key not in instruction:
            raise ValueError(f"{files[0]}: the template has no {key} placeholder")
    return instruction, examples


class HotpotQAEnv(Environment):
    name = "hotpotqa"

    def __init__(self, max_rounds: int = 10, prompt_dir: str | None = None, scratchpad: bool = False):
        self.max_rounds, self.scratchpad = max_rounds, scratchpad
        self.instruction, self.examples = load_prompt(prompt_dir)
        self.browser: WikiBrowser | None = None
        self.task: Task | None = None
        self.step_no = 0

    def reset(self, task: Task) -> list[Message]:
        self.task, self.step_no = task, 0
        self.browser = WikiBrowser(corpus_for(task.data["corpus"]))
        return [{"from": "human", "value": self._prompt(""), "loss": None}]

    def _prompt(self, scratchpad: str) -> str:
        return (self.instruction.replace("{examples}", self.examples)
                .replace("{question}", self.task.data["question"]).replace("{scratchpad}", scratchpad))

    def agent_view(self, conversation: list[Message]) -> list[Message]:
        """With `scratchpad`, the model sees one prompt as BOLAA's agent builds it: the instruction with every
        earlier Thought/Action/Observation line appended; otherwise the chat as recorded."""
        if not self.scratchpad:
            return conversation
        lines = "".join(f"\n{m['value'].strip()}" for m in conversation[1:])
        return [{"from": "human", "value": self._prompt(lines), "loss": None}]

    def step(self, action: str) -> StepResult:
        self.step_no += 1
        parsed = parse_wiki_action(action)
        if parsed is None:
            return StepResult(f"Observation {self.step_no}: {INVALID}", info={"last_invalid": True})
        verb, arg = parsed
        if verb == "finish":
            gold = self.task.data["answer"]
            f1, em = f1_score(arg, gold), exact_match(arg, gold)
            return StepResult("", f1, True, {"answer": arg, "gold": gold, "f1": f1, "em": em, "success": em,
                                             "level": self.task.data.get("level", "")})
        text = self.browser.search(arg) if verb == "search" else self.browser.lookup(arg)
        return StepResult(f"Observation {self.step_no}: {text}")

    def parse_ok(self, action: str) -> bool:
        return parse_wiki_action(action) is not None


class SupportingFactsOracle:
    """Searches each supporting-fact title once, then finishes with the gold answer."""

    def act(self, conversation: list[Message], task: Task) -> str:
        titles = list(dict.fromkeys(t for t, _ in task.data["supporting_facts"]))
        k = sum(m["from"] == "gpt" for m in conversation) + 1
        if k <= len(titles):
            return f"Thought {k}: I need the page of {titles[k - 1]}.\nAction {k}: Search[{titles[k - 1]}]"
        return f"Thought {k}: I can answer now.\nAction {k}: Finish[{task.data['answer']}]"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """The paper's score: the mean over levels of each level's mean F1, x100; also EM and per-level figures."""
    scored = scored_episodes(episodes)
    level_of = {t.id: t.data.get("level") or "all" for t in tasks}
    by_level: dict[str, list[Episode]] = {}
    for e in scored:
        by_level.setdefault(level_of.get(e.task_id, "all"), []).append(e)
    levels = {lvl: {"f1": 100.0 * sum(e.reward for e in eps) / len(eps),
                    "em": 100.0 * sum(bool(e.info.get("em")) for e in eps) / len(eps), "n": len(eps)}
              for lvl, eps in sorted(by_level.items())}
    n = len(scored) or 1
    score = sum(v["f1"] for v in levels.values()) / len(levels) if levels else 0.0
    return {"score": score, "f1": sum(e.reward for e in scored) / n * 100.0,
            "em": 100.0 * sum(bool(e.info.get("em")) for e in scored) / n, "levels": levels,
            **episode_counts(episodes)}


SPEC = EnvSpec(
    name="hotpotqa", env=HotpotQAEnv, load_tasks=load_tasks, group="held_out", paper_task="HotpotQA",
    metric=Metric("answer F1 (mean over levels)", aggregate), oracle=SupportingFactsOracle,
    action_format=ActionFormat(r"^\s*Action\s*\d*\s*:", thought_prefix=""), split="test",
    options={"prompt_dir": None, "scratchpad": False}, requires=("bm25s",),
    task_formats="a directory of {easy,medium,hard}.jsonl, or HotpotQA .json/.jsonl files (comma-separated)",
    note="HotpotQA searches a closed corpus of the questions' own context paragraphs (gold pages always present), "
         "easier than the paper's live Wikipedia",
    description="HotpotQA (held out): ReAct Search/Lookup/Finish over a closed local Wikipedia, answer F1")
