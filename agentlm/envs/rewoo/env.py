"""ReWOO's plan-work-solve episodes (held out): the model plans every tool call up front, the workers run them,
the model solves from the evidence.

One episode is a short exchange, each part shown to the model on its own, as ReWOO makes separate LLM calls:
1. plan: the planner prompt (the set's tools, an example, the question); the reply is a plan of lines
   "Plan: ... #E1 = Tool[input]", later inputs naming earlier evidence as #E1, #E2, ...;
2. work: each step runs in order with earlier evidence substituted. Calculator, SearchSOTU and Wikipedia run
   here (`tools`); an LLM step is a turn of the model itself: it sees only "answer briefly" plus the step's input,
   and its reply is the evidence. A tool the set does not have gives "No evidence found." as ReWOO's worker does;
3. solve: the solver prompt (the plan with its evidence, the question); the reply is the answer, scored by the
   set's rule (`data.rule_score`), or for free text by the configured judge.
The whole episode is recorded in order; `agent_view` shows the model only the current part.
"""
from __future__ import annotations

import pathlib
import re
from typing import Any, Sequence

from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.rewoo import data, tools
from agentlm.envs.spec import episode_counts, scored_episodes

PLANNER = """For the question below, make a plan that solves it step by step with the tools listed. For each step
write one "Plan:" line saying what the step does, then store the tool's output as evidence #E1, #E2, ... on the
next line, written "#E<n> = Tool[input]". A later input may name earlier evidence (#E1). Plan every step now:
you will not see any evidence before the plan is complete.

Tools:
{tools}

Example:
Question: A train covers 120 km in 1.5 hours, then 80 km in 1 hour. What is its average speed in km/h?
Plan: Add the two distances.
#E1 = Calculator[120 + 80]
Plan: Add the two durations.
#E2 = Calculator[1.5 + 1]
Plan: Divide the total distance by the total time.
#E3 = Calculator[#E1 / #E2]

Question: {question}"""

TOOL_HELP = {
    "Wikipedia": "Wikipedia[entity]: the opening sentences of the encyclopedia page titled entity, or similar titles.",
    "LLM": "LLM[request]: a language model answers the request briefly; give it all the context it needs, e.g. "
           "earlier evidence.",
    "Calculator": "Calculator[expression]: the value of an arithmetic expression, such as (3 + 4) * 2 / 7.",
    "SearchSOTU": "SearchSOTU[query]: passages of the 2023 State of the Union address that match the query.",
}

WORKER_LLM = "Respond briefly, with no extra words.\n\n{request}"

SOLVER = """Answer the question using the plan and the evidence its steps gathered. The evidence may be
incomplete or wrong; use it with care. Reply with the answer only.

{steps}
Question: {question}
Answer:"""

_STEP = re.compile(r"#E(\d+)\s*=\s*([A-Za-z_]\w*)\s*\[(.*)\]\s*$")
_REF = re.compile(r"#E(\d+)")
_NUMBER_TOKEN = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?|\.\d+)(?![\w.])")
MAX_EVIDENCE_CHARS = 1500


def parse_plan(plan: str) -> list[dict]:
    """[{"n", "tool", "input", "plan"}] from a planner reply; the "Plan:" line before a step is its description."""
    steps, description = [], ""
    for line in plan.splitlines():
        line = line.strip()
        if line.lower().startswith("plan:"):
            description = line[5:].strip()
            continue
        m = _STEP.search(line)
        if m:
            steps.append({"n": int(m.group(1)), "tool": m.group(2), "input": m.group(3).strip(),
                          "plan": description})
            description = ""
    return steps


class RewooEnv(Environment):
    name = "rewoo"
    max_rounds = 20  # plan + LLM steps + solve

    def __init__(self, sotu_file: str = "", wiki_source: str = "", judge_url: str = "", judge_model: str = ""):
        self.sotu_file, self.wiki_source = sotu_file, wiki_source
        self.judge = None
        if judge_url:
            from agentlm.envs.rewoo.judge import OpenAIJudge

            if not judge_model:
                raise ValueError("rewoo: judge_url is set but judge_model is not")
            self.judge = OpenAIJudge(judge_url, judge_model)
        self.view: list[Message] = []

    # -- the tools -----------------------------------------------------------------------------------------------

    def _root(self) -> pathlib.Path | None:
        root = self.task.data.get("root")
        return pathlib.Path(root) if root else None

    def _run_tool(self, tool: str, arg: str) -> str:
        if tool not in data.SETS[self.task.data["set"]].tools:
            return "No evidence found."
        if tool == "Calculator":
            return tools.calculator(arg)
        if tool == "SearchSOTU":
            path = self.sotu_file or (self._root() / "docs" / "state_of_the_union.txt" if self._root() else "")
            return tools.sotu_search(str(path))(arg)
        if tool == "Wikipedia":
            if self.browser is None:
                from agentlm.envs.hotpotqa import corpus_for
                from agentlm.envs.wiki_corpus import WikiBrowser

                source = self.wiki_source or (str(self._root().parent / "hotpotqa") if self._root() else "")
                if not source or not pathlib.Path(source.split(",")[0]).exists():
                    return "No evidence found."
                self.browser = WikiBrowser(corpus_for(source))
            return tools.wikipedia(self.browser, arg)
        raise ValueError(f"tool {tool!r} is listed for {self.task.data['set']} but has no worker")

    # -- the episode ---------------------------------------------------------------------------------------------

    def reset(self, task: Task) -> list[Message]:
        self.task, self.phase, self.steps, self.evidence, self.pending = task, "plan", [], {}, 0
        self.browser = None
        toolset = data.SETS[task.data["set"]].tools
        prompt = PLANNER.format(tools="\n".join(f"({i}) {TOOL_HELP[t]}" for i, t in enumerate(toolset, 1)),
                                question=task.data["question"])
        self.view = [{"from": "human", "value": prompt, "loss": None}]
        return list(self.view)

    def agent_view(self, conversation: list[Message]) -> list[Message]:
        return list(self.view)

    def _fill(self, text: str) -> str:
        return _REF.sub(lambda m: self.evidence.get(int(m.group(1)), m.group(0)), text)

    def _advance(self) -> StepResult:
        """Runs steps until one needs the model (an LLM step) or all are done (then the solver prompt)."""
        while self.pending < len(self.steps):
            step = self.steps[self.pending]
            arg = self._fill(step["input"])
            if step["tool"] == "LLM" and "LLM" in data.SETS[self.task.data["set"]].tools:
                self.phase = "llm"
                return self._ask(WORKER_LLM.format(request=arg))
            self.evidence[step["n"]] = self._run_tool(step["tool"], arg)[:MAX_EVIDENCE_CHARS]
            self.pending += 1
        self.phase = "solve"
        lines = []
        for s in self.steps:
            lines += [f"Plan: {s['plan']}", f"Evidence: {self.evidence.get(s['n'], 'No evidence found.')}"]
        return self._ask(SOLVER.format(steps="\n".join(lines) + ("\n" if lines else ""),
                                       question=self.task.data["question"]))

    def _ask(self, prompt: str) -> StepResult:
        self.view = [{"from": "human", "value": prompt, "loss": None}]
        return StepResult(prompt)

    def step(self, action: str) -> StepResult:
        if self.phase == "plan":
            self.steps = parse_plan(action)
            return self._advance()
        if self.phase == "llm":
            self.evidence[self.steps[self.pending]["n"]] = action.strip()[:MAX_EVIDENCE_CHARS]
            self.pending += 1
            return self._advance()
        return self._score(action.strip())

    def _score(self, answer: str) -> StepResult:
        task_set, gold = data.SETS[self.task.data["set"]], self.task.data["answer"]
        scores = data.rule_score(task_set, answer, gold)
        judged = None
        if task_set.kind == "free" and self.judge is not None:
            judged = self.judge(self.task.data["question"], gold, answer)
            scores["reward"] = float(judged)
        info = {"set": task_set.name, "answer": answer, "gold": gold, "plan_steps": len(self.steps),
                "tools_used": [s["tool"] for s in self.steps], "evidence": dict(self.evidence), **scores,
                "scored_by": "judge" if judged is not None else ("f1" if task_set.kind == "free" else "rule"),
                "success": scores["reward"] >= 1.0 - 1e-9}
        return StepResult("", scores["reward"], True, info)


class ScriptedPlanner:
    """Writes a correct plan where the item shows one, and answers the model's own turns from the gold: GSM8K plans
    are the solution's calculator annotations (<<48/2=24>>), each an evidence step, with earlier results named as
    evidence; SOTU plans search the transcript, then ask the LLM step with that evidence. A harness check of the
    tool executor, not a model."""

    def act(self, conversation: list[Message], task: Task) -> str:
        prompt = conversation[-1]["value"]
        if prompt.startswith(PLANNER.split("{tools}")[0][:60]):
            return self.plan(task)
        if prompt.startswith(WORKER_LLM.split("{request}")[0]):
            return task.data["answer"]
        evidence = re.findall(r"^Evidence: (.*)$", prompt, re.MULTILINE)
        if task.data["set"] == "gsm8k" and evidence and data.numbers(evidence[-1])[:1] == data.numbers(
                task.data["answer"])[:1]:
            return evidence[-1]  # the plan's last result is the answer
        return evidence[-1] if task.data["set"] == "sotu_qa" and evidence else task.data["answer"]

    def plan(self, task: Task) -> str:
        if task.data["set"] == "sotu_qa":
            q = task.data["question"].split(":", 1)[-1].strip()
            return (f"Plan: Search the address for the facts the question asks about.\n#E1 = SearchSOTU[{q}]\n"
                    f"Plan: Answer the question from those passages.\n#E2 = LLM[Answer \"{q}\" using: #E1]")
        if task.data["set"] == "gsm8k":
            lines, results = [], {}
            for n, (expr, value) in enumerate(re.findall(r"<<([^=<>]*)=([^<>]*)>>", task.data["solution"]), 1):
                # a number that an earlier step produced is named as that step's evidence (the latest one)
                expr = _NUMBER_TOKEN.sub(lambda m: f"#E{results[m.group(0)]}" if m.group(0) in results
                                         else m.group(0), expr)
                results[value.strip()] = n
                lines += [f"Plan: Compute step {n} of the solution.", f"#E{n} = Calculator[{expr}]"]
            return "\n".join(lines) or "Plan: Nothing to compute."
        return f"Plan: Ask the language model.\n#E1 = LLM[{task.data['question']}]"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """The paper's ReWOO score: correct answers / all answers, pooled over the sets (x100); per-set figures, and
    which of the paper's seven sets are missing or substituted."""
    scored = scored_episodes(episodes)
    set_of = {t.id: t.data["set"] for t in tasks}
    per: dict[str, list[Episode]] = {}
    for e in scored:
        per.setdefault(set_of.get(e.task_id, "?"), []).append(e)
    n = len(scored) or 1
    sets = {name: {"score": 100.0 * sum(e.reward for e in eps) / len(eps), "n": len(eps),
                   "em": 100.0 * sum(bool(e.info.get("em")) for e in eps) / len(eps),
                   "scored_by": sorted({e.info.get("scored_by", "?") for e in eps}),
                   "status": data.SETS[name].status if name in data.SETS else "unknown"}
            for name, eps in sorted(per.items())}
    return {"score": 100.0 * sum(e.reward for e in scored) / n, "sets": sets,
            "not_run": {k: s.status for k, s in data.SETS.items() if k not in per}, **episode_counts(episodes)}
