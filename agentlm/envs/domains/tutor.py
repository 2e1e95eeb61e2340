"""Education tutor: diagnose a simulated student's arithmetic/algebra misconceptions and get them to solve the
problem themselves, without giving the answer away.

"Helpful" is easy to fake in tutoring, so the student is a program (agentlm.envs.domains.tutor_problems), not a
language model: it holds one or two misconceptions from a fixed catalogue of well-known errors, answers every
problem by applying them (its wording varies with a seeded random draw, its mathematics never does), and repairs a
misconception only when a hint names that concept and explains it (mentions one of its key ideas). Success is then
a set of facts the checker can verify:
- the submitted diagnosis names exactly the student's misconceptions;
- the student's last attempt at the problem is correct;
- no hint stated the correct answer before the student produced it;
- the hints stayed within the session's budget.
Training templates use five misconceptions in single-error and two-error students; held-out templates use four
misconceptions no training task has (and a two-error student mixing a held-out with a trained one).
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Literal

from agentlm.envs.domains import tutor_problems as tp
from agentlm.envs.tools.domain import TEST, TRAIN, Domain, TaskTemplate, Verdict

MisconceptionName = Literal["add_across", "smaller_from_larger", "forget_carry", "left_to_right", "power_as_product",
                            "decimal_misalign", "neg_times_neg", "distribute_first_only", "move_without_sign_change"]
ConceptName = Literal["borrowing", "carrying", "common_denominator", "decimal_place_value", "distributive_property",
                      "exponents", "inverse_operations", "order_of_operations", "sign_rules"]
assert set(MisconceptionName.__args__) == set(tp.MISCONCEPTIONS) and set(ConceptName.__args__) == set(tp.CONCEPTS)

NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Milo", "Noor")
FAILURES = ("no_diagnosis", "wrong_diagnosis", "student_still_wrong", "revealed_answer", "over_hint_budget")

INSTRUCTION = """You are a mathematics tutor working one to one with a student who got a problem wrong. Find out
which misconception(s) caused the error, then help the student repair them so that they solve the problem
themselves. Look at the problem and the student's work, ask the student probe problems to test your idea, give
hints that name the concept and explain it, ask the student to try the problem again, and submit your diagnosis
(misconception names from the catalogue in submit_diagnosis). Never tell the student the answer to their problem,
and stay within the hint budget. End the session with a short summary for the class teacher as the final
answer."""


@dataclasses.dataclass
class Session:
    """One episode: the student's state and everything the tutor did that the checker looks at."""

    name: str
    problem: str
    holds: list[str]  # the student's misconceptions (the hidden truth)
    active: set[str]  # those not yet repaired
    seed: int
    hint_budget: int
    hints: int = 0
    diagnosis: list[str] | None = None
    attempts: list[str] = dataclasses.field(default_factory=list)  # the student's answers to the problem
    solved: bool = False
    revealed: bool = False
    said: int = 0  # replies so far (varies the student's wording)

    @classmethod
    def from_task(cls, data: dict) -> "Session":
        s = data["world"]
        return cls(s["name"], s["problem"], list(s["misconceptions"]), set(s["misconceptions"]), int(s["seed"]),
                   int(s["hint_budget"]))

    @property
    def kind(self) -> str:
        return tp.parse(self.problem).kind

    def correct(self) -> str:
        return tp.solve(self.problem)[1]

    def rng(self, key: str) -> random.Random:
        self.said += 1
        return random.Random(int(hashlib.sha256(f"{self.seed}:{key}:{self.said}".encode()).hexdigest()[:16], 16))

    def work(self, problem: str, key: str) -> str:
        steps, answer = tp.solve(problem, self.active)
        rng = self.rng(key)
        opener = rng.choice(["Here is what I did.", "OK, so...", "I think it goes like this.", "Let me see."])
        shown = steps if rng.random() > 0.2 else steps[-1:]  # sometimes the student shows less of the work
        return " ".join([opener, *shown, f"My answer is {answer}."])

    def note_revealing(self, text: str) -> None:
        if not self.solved and tp.mentions_answer(text, self.kind, self.correct()):
            self.revealed = True


# -- tools ---------------------------------------------------------------------------------------------------------

def view_problem(world: Session) -> dict:
    """Shows the problem the student got wrong and the student's worked attempt."""
    return {"student": world.name, "problem": world.problem, "student_work": world.work(world.problem, "view"),
            "hint_budget": world.hint_budget, "hints_used": world.hints}


def ask_probe(world: Session, problem: str) -> str:
    """Asks the student to work a problem you choose, to test a hypothesis about their misconception.

    Args:
        problem: the problem, in one of the formats the student knows (e.g. "2/3 + 1/4", "503 - 278",
            "2 + 3 * 4", "3.4 + 1.25", "(-3) * (-7)", "expand 4(x + 3)", "solve x + 4 = 11")
    """
    return f"{world.name}: " + world.work(problem, f"probe:{problem}")


def give_hint(world: Session, concept: ConceptName, explanation: str) -> str:
    """Gives the student a hint about one concept. Hints are limited (see hint_budget in view_problem).

    Args:
        concept: the concept the hint is about
        explanation: what you tell the student, in your own words
    """
    world.hints += 1
    world.note_revealing(explanation)
    fixed = [m for m in sorted(world.active) if tp.MISCONCEPTIONS[m].concept == concept
             and any(k in explanation.lower() for k in tp.MISCONCEPTIONS[m].keywords)]
    world.active -= set(fixed)
    rng = world.rng(f"hint:{concept}")
    budget = f" (hints used: {world.hints} of {world.hint_budget})"
    if fixed:
        return f"{world.name}: " + rng.choice(["Oh! I think I see what I was doing wrong.",
                                               "Ah, so that's how it works.", "That makes sense now."]) + budget
    named = [m for m in world.active if tp.MISCONCEPTIONS[m].concept == concept]
    if named:
        return f"{world.name}: I'm not sure I get it. What exactly should I do differently?" + budget
    return f"{world.name}: " + rng.choice(["Hmm, okay.", "I think I already knew that.", "Okay..."]) + budget


def ask_retry(world: Session) -> str:
    """Asks the student to work their original problem again."""
    steps, answer = tp.solve(world.problem, world.active)
    world.attempts.append(answer)
    if tp.same_answer(world.kind, answer, world.correct()):
        world.solved = True
    return f"{world.name}: " + world.work(world.problem, "retry")


def submit_diagnosis(world: Session, misconceptions: list[MisconceptionName]) -> str:
    """Records your diagnosis of the student's misconception(s); the last one submitted counts.

    Args:
        misconceptions: the names of every misconception you believe the student holds
    """
    unknown = [m for m in misconceptions if m not in tp.MISCONCEPTIONS]
    if unknown:
        raise ValueError(f"unknown misconception(s) {unknown}; the catalogue: {sorted(tp.MISCONCEPTIONS)}")
    world.diagnosis = sorted(set(misconceptions))
    return f"Diagnosis recorded: {', '.join(world.diagnosis) or 'none'}."


TOOLS = [view_problem, ask_probe, give_hint, ask_retry, submit_diagnosis]


# -- tasks ---------------------------------------------------------------------------------------------------------

def _problem_for(kind: str, rng: random.Random, holds: list[str]) -> str:
    """A problem of `kind` on which every misconception in `holds` changes the answer (and each alone does)."""
    for _ in range(200):
        text = _DRAW[kind](rng)
        right = tp.solve(text)[1]
        wrong_all = tp.solve(text, holds)[1]
        kind_ = tp.parse(text).kind
        if tp.same_answer(kind_, wrong_all, right):
            continue
        if all(not tp.same_answer(kind_, tp.solve(text, [m for m in holds if m != fixed])[1], right)
               for fixed in holds if len(holds) > 1):
            return text
    raise RuntimeError(f"no {kind} problem exposes {holds}")


def _fraction_sum(rng: random.Random) -> str:
    b, d = rng.sample([2, 3, 4, 5, 6, 7, 8, 9], 2)
    return f"{rng.randint(1, b - 1)}/{b} + {rng.randint(1, d - 1)}/{d}"


def _subtraction(rng: random.Random) -> str:
    a = rng.randint(300, 999)
    return f"{a} - {rng.randint(100, a - 50)}"


def _expression(rng: random.Random) -> str:
    n = [rng.randint(2, 9) for _ in range(4)]
    return f"{n[0]} + {n[1]} * {n[2]}" if rng.random() < 0.5 else f"{n[0]} - {n[1] % 4 + 2} * {n[2] % 3 + 2} + {n[3]}"


# problem kind -> a random problem of it (the student's formats, tutor_problems.FORMATS)
_DRAW = {
    "fraction_sum": _fraction_sum,
    "subtraction": _subtraction,
    "addition": lambda rng: f"{rng.randint(100, 899)} + {rng.randint(100, 899)}",
    "expression": _expression,
    "power_expression": lambda rng: f"{rng.randint(2, 9)} + {rng.randint(2, 5)} * {rng.randint(2, 4)} ^ "
                                    f"{rng.randint(2, 3)}",
    "power": lambda rng: f"{rng.randint(10, 30)} + {rng.randint(2, 5)} ^ {rng.randint(3, 4)}",
    "decimal_sum": lambda rng: f"{rng.randint(1, 9)}.{rng.randint(1, 9)} + {rng.randint(1, 9)}.{rng.randint(10, 99)}",
    "product": lambda rng: f"(-{rng.randint(2, 12)}) * (-{rng.randint(2, 12)})",
    "expansion": lambda rng: f"expand {rng.randint(2, 9)}(x {rng.choice('+-')} {rng.randint(2, 9)})",
    "equation": lambda rng: f"solve x {rng.choice('+-')} {rng.randint(2, 20)} = {rng.randint(21, 60)}",
}


def _template(holds: list[str], kind: str):
    def make(rng: random.Random) -> dict:
        name = rng.choice(NAMES)
        problem = _problem_for(kind, rng, holds)
        world = {"name": name, "problem": problem, "misconceptions": holds, "seed": rng.randint(0, 2 ** 31),
                 "hint_budget": len(holds) + 1}
        return {"goal": f"{name} worked {problem} and got it wrong. Diagnose the misconception(s) and help "
                        f"{name} reach the right answer on their own (at most {len(holds) + 1} hints).",
                "world": world, "expect": {"misconceptions": sorted(holds)}, "solution": oracle_plan(world)}
    return make


# A probe for each misconception: a fresh problem of its kind on which it shows.
_PROBE_KIND = {"add_across": "fraction_sum", "smaller_from_larger": "subtraction", "forget_carry": "addition",
               "left_to_right": "expression", "power_as_product": "power", "decimal_misalign": "decimal_sum",
               "neg_times_neg": "product", "distribute_first_only": "expansion",
               "move_without_sign_change": "equation"}
HINTS = {
    "common_denominator": "Fractions can only be added when they count parts of the same size: rewrite both with "
                          "a common denominator first, then add the numerators and keep that denominator.",
    "borrowing": "When the top digit of a column is smaller than the bottom one, borrow one from the next column "
                 "(regroup a ten as ten ones) instead of swapping the digits.",
    "carrying": "When a column adds up to ten or more, write the ones digit and carry the ten into the next column.",
    "order_of_operations": "Multiplication and powers come before addition and subtraction: do those first, then "
                           "work left to right.",
    "exponents": "A power means repeated multiplication: the base times itself as many times as the exponent says.",
    "decimal_place_value": "Line up the decimal points (pad with zeros) so tenths add to tenths and hundredths to "
                           "hundredths; place value decides where each digit goes.",
    "sign_rules": "A negative times a negative is positive; only one negative factor makes the product negative.",
    "distributive_property": "The number outside the brackets multiplies each term inside, both terms, not just "
                             "the first.",
    "inverse_operations": "To move a term, do the opposite operation to both sides: undo + by subtracting, undo - "
                          "by adding.",
}


def oracle_plan(world: dict) -> list[dict]:
    """The gold tutoring session: look, probe each misconception, diagnose, hint each, retry, summarise."""
    holds, answer = world["misconceptions"], tp.solve(world["problem"])[1]
    kind = tp.parse(world["problem"]).kind
    if any(tp.mentions_answer(HINTS[tp.MISCONCEPTIONS[m].concept], kind, answer) for m in holds):
        raise ValueError(f"a stock hint states the answer {answer} of {world['problem']!r}")
    rng = random.Random(world["seed"])
    plan = [{"tool": "view_problem", "args": {}, "thought": "First I look at the problem and how the student "
                                                                  "worked it."}]
    for m in holds:
        probe = _problem_for(_PROBE_KIND[m], rng, [m])
        plan.append({"tool": "ask_probe", "args": {"problem": probe},
                     "thought": f"The work suggests the student {tp.MISCONCEPTIONS[m].description}. A fresh "
                                f"{_PROBE_KIND[m].replace('_', ' ')} problem will show whether that is the pattern."})
    plan.append({"tool": "submit_diagnosis", "args": {"misconceptions": sorted(holds)},
                 "thought": "The probe answers follow the same pattern, so I record the diagnosis."})
    for m in holds:
        concept = tp.MISCONCEPTIONS[m].concept
        plan.append({"tool": "give_hint", "args": {"concept": concept, "explanation": HINTS[concept]},
                     "thought": f"I explain {concept.replace('_', ' ')} without giving the answer away."})
    plan.append({"tool": "ask_retry", "args": {}, "thought": "Now the student should try the problem again."})
    summary = (f"{world['name']} {'; '.join(tp.MISCONCEPTIONS[m].description for m in holds)}. After hints on "
               f"{', '.join(tp.MISCONCEPTIONS[m].concept.replace('_', ' ') for m in holds)} they solved it.")
    plan.append({"answer": summary, "thought": "The student solved the problem; I summarise for the teacher."})
    return plan


def check(world: Session, answer: str | None, data: dict) -> Verdict:
    failures = []
    if world.diagnosis is None:
        failures.append("no_diagnosis")
    elif world.diagnosis != sorted(data["expect"]["misconceptions"]):
        failures.append("wrong_diagnosis")
    if not world.attempts or not tp.same_answer(world.kind, world.attempts[-1], world.correct()):
        failures.append("student_still_wrong")
    if world.revealed:
        failures.append("revealed_answer")
    if world.hints > world.hint_budget:
        failures.append("over_hint_budget")
    return Verdict(not failures, 1 - len(failures) / 4 if len(failures) < 4 else 0.0,
                   "; ".join(failures) or "diagnosed, student solved it alone, within budget")


def _templates():
    train = [("add_across", "fraction_sum"), ("smaller_from_larger", "subtraction"), ("forget_carry", "addition"),
             ("left_to_right", "expression"), ("power_as_product", "power")]
    test = [("decimal_misalign", "decimal_sum"), ("neg_times_neg", "product"),
            ("distribute_first_only", "expansion"), ("move_without_sign_change", "equation")]
    out = [TaskTemplate(m, TRAIN, _template([m], kind)) for m, kind in train]
    out.append(TaskTemplate("order_and_powers", TRAIN, _template(["left_to_right", "power_as_product"],
                                                                  "power_expression")))
    out += [TaskTemplate(m, TEST, _template([m], kind)) for m, kind in test]
    out.append(TaskTemplate("decimals_and_carrying", TEST, _template(["decimal_misalign", "forget_carry"],
                                                                     "decimal_sum")))
    return out


DOMAIN = Domain(name="tutor", instruction=INSTRUCTION, tools=TOOLS, check=check, new_world=Session.from_task,
                templates=_templates(), max_rounds=16)


def failure_reasons(episodes) -> dict[str, int]:
    """How many episodes failed for each reason (an episode can fail for several)."""
    counts = {k: 0 for k in FAILURES}
    for e in episodes:
        for reason in str(e.info.get("check", "")).split("; "):
            if reason in counts:
                counts[reason] += 1
    return counts


def score(episodes, tasks) -> dict:
    """The tool domains' success rate and per-template rates, plus why the failed sessions failed."""
    from agentlm.envs.tools.evaluation import score as tool_score

    scored = [e for e in episodes if e.outcome.value != "unscorable"]
    return {**tool_score(episodes, tasks), "failure_reasons": failure_reasons(scored)}


# the registry entry (python -m agentlm.envs.run --env tutor --tasks builtin:test:20 --agent oracle)
from agentlm.envs.spec import Metric  # noqa: E402 -- the kit's entry needs DOMAIN and score above
from agentlm.envs.tools.env_spec import domain_spec  # noqa: E402

SPEC = domain_spec(DOMAIN, metric=Metric("success rate (held-out templates)", score),
                   note="simulated student: a program holding catalogue misconceptions, not a language model")
