"""The arithmetic and algebra the simulated student works, and the catalogue of misconceptions it can hold.

Each misconception is a well-documented error pattern from the mathematics-education literature, written as a
program: the student's answer to a problem is the correct procedure with the misconception's step swapped in.
So a misconception reproduces its known wrong answer (1/2 + 1/3 -> 2/5 when adding across, 52 - 38 -> 26 when
subtracting the smaller digit from the larger) and success is checkable: the student is right exactly when every
misconception the problem touches has been repaired.

Problems are plain text in a few formats (`FORMATS`), so a tutor can write its own probe problems.
"""
from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

__all__ = ["MISCONCEPTIONS", "CONCEPTS", "FORMATS", "Problem", "ProblemError", "parse", "solve", "same_answer"]


@dataclasses.dataclass(frozen=True)
class Misconception:
    name: str
    concept: str  # the concept a hint must name to repair it
    keywords: tuple[str, ...]  # a hint addresses the misconception when its explanation mentions one of these
    kind: str  # the problem format it shows up in
    description: str
    split: str  # "train": used by training templates; "test": held out for evaluation


MISCONCEPTIONS = {m.name: m for m in (
    Misconception("add_across", "common_denominator", ("denominator", "same size", "equal parts"), "fraction_sum",
                  "adds numerators together and denominators together", "train"),
    Misconception("smaller_from_larger", "borrowing", ("borrow", "regroup", "trade"), "subtraction",
                  "in each column subtracts the smaller digit from the larger, never borrowing", "train"),
    Misconception("forget_carry", "carrying", ("carry", "regroup", "ten"), "addition",
                  "writes only the ones digit of each column sum and drops the carry", "train"),
    Misconception("left_to_right", "order_of_operations", ("order", "before", "precedence", "first"),
                  "expression", "works an expression strictly left to right, ignoring operator precedence", "train"),
    Misconception("power_as_product", "exponents", ("repeated", "times itself", "multiply"), "expression",
                  "reads a^b as a times b", "train"),
    Misconception("decimal_misalign", "decimal_place_value", ("decimal point", "line up", "place value"),
                  "decimal_sum", "lines numbers up by their last digit instead of the decimal point", "test"),
    Misconception("neg_times_neg", "sign_rules", ("negative times a negative", "positive", "sign"), "product",
                  "thinks a negative times a negative is negative", "test"),
    Misconception("distribute_first_only", "distributive_property", ("every term", "each term", "both terms"),
                  "expansion", "multiplies only the first term inside the brackets", "test"),
    Misconception("move_without_sign_change", "inverse_operations", ("opposite", "inverse", "both sides", "undo"),
                  "equation", "moves a term across the equals sign without changing its sign", "test"),
)}
CONCEPTS = tuple(sorted({m.concept for m in MISCONCEPTIONS.values()}))

FORMATS = {
    "fraction_sum": "a/b + c/d (e.g. 2/3 + 1/4)",
    "subtraction": "a - b with whole numbers, a >= b (e.g. 503 - 278)",
    "addition": "a + b with whole numbers (e.g. 476 + 358)",
    "decimal_sum": "a + b with at least one decimal (e.g. 3.4 + 1.25)",
    "expression": "whole numbers joined by +, -, * and ^, two or more operators (e.g. 2 + 3 * 4)",
    "product": "a * b with signed whole numbers (e.g. (-3) * (-7))",
    "expansion": "expand a(x + b) or a(x - b) (e.g. expand 4(x + 3))",
    "equation": "solve x + a = b or x - a = b (e.g. solve x + 4 = 11)",
}


class ProblemError(ValueError):
    """A problem the student cannot read; the message lists the formats it can."""


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    text: str
    args: tuple


_NUM = r"(\d+)"
_PATTERNS = [
    ("fraction_sum", re.compile(rf"^{_NUM}\s*/\s*{_NUM}\s*\+\s*{_NUM}\s*/\s*{_NUM}$")),
    ("decimal_sum", re.compile(r"^(\d+(?:\.\d+)?)\s*\+\s*(\d+(?:\.\d+)?)$")),
    ("addition", re.compile(rf"^{_NUM}\s*\+\s*{_NUM}$")),
    ("subtraction", re.compile(rf"^{_NUM}\s*-\s*{_NUM}$")),
    ("product", re.compile(r"^\(?\s*(-?\d+)\s*\)?\s*[*x×]\s*\(?\s*(-?\d+)\s*\)?$")),
    ("expansion", re.compile(r"^(?:expand\s+)?(\d+)\s*\(\s*x\s*([+-])\s*(\d+)\s*\)$", re.I)),
    ("equation", re.compile(r"^(?:solve\s+)?x\s*([+-])\s*(\d+)\s*=\s*(-?\d+)$", re.I)),
    ("expression", re.compile(r"^\d+(\s*[-+*^]\s*\d+){2,}$")),
]


def parse(text: str) -> Problem:
    t = " ".join(str(text).strip().rstrip("=?").split())
    for kind, pattern in _PATTERNS:
        m = pattern.match(t)
        if not m:
            continue
        if kind == "decimal_sum" and "." not in t:
            continue
        if kind == "fraction_sum" and (int(m.group(2)) == 0 or int(m.group(4)) == 0):
            raise ProblemError(f"{t!r}: a denominator is zero")
        if kind == "subtraction" and int(m.group(1)) < int(m.group(2)):
            raise ProblemError(f"{t!r}: I only do subtractions where the first number is the larger")
        return Problem(kind, t, m.groups() if kind != "expression" else tuple(re.findall(r"\d+|[-+*^]", t)))
    raise ProblemError(f"I can't read {t!r}. I can do: " + "; ".join(FORMATS.values()))


# -- the procedures, each with its misconception's step ----------------------------------------------------------

def _frac(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    a, b, c, d = map(int, p.args)
    if "add_across" in wrong:
        return [f"I add the tops: {a} + {c} = {a + c}.", f"I add the bottoms: {b} + {d} = {b + d}."], f"{a + c}/{b + d}"
    den = b * d // _gcd(b, d)
    s = Fraction(a, b) + Fraction(c, d)
    return [f"Same denominator {den}: {a}/{b} = {a * den // b}/{den} and {c}/{d} = {c * den // d}/{den}.",
            f"{a * den // b}/{den} + {c * den // d}/{den} = {a * den // b + c * den // d}/{den}."], _fmt_frac(s)


def _gcd(x: int, y: int) -> int:
    while y:
        x, y = y, x % y
    return x


def _fmt_frac(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _columns(x: int, y: int) -> list[tuple[int, int]]:
    xs, ys = str(x)[::-1], str(y)[::-1]
    return [(int(xs[i]) if i < len(xs) else 0, int(ys[i]) if i < len(ys) else 0) for i in range(max(len(xs), len(ys)))]


def _sub(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    a, b = map(int, p.args)
    if "smaller_from_larger" not in wrong:
        return [f"Borrowing where a column's top digit is smaller: {a} - {b} = {a - b}."], str(a - b)
    digits, steps = [], []
    for i, (top, bottom) in enumerate(_columns(a, b)):
        digits.append(abs(top - bottom))
        steps.append(f"Column {i + 1}: {max(top, bottom)} take away {min(top, bottom)} is {abs(top - bottom)}.")
    return steps, str(int("".join(map(str, digits[::-1]))))


def _add(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    a, b = map(int, p.args)
    if "forget_carry" not in wrong:
        return [f"Column by column, carrying tens: {a} + {b} = {a + b}."], str(a + b)
    cols = _columns(a, b)
    digits, steps = [], []
    for i, (x, y) in enumerate(cols):
        s = x + y
        last = i == len(cols) - 1
        digits.append(str(s) if last else str(s % 10))
        steps.append(f"Column {i + 1}: {x} + {y} = {s}, I write {digits[-1]}.")
    return steps, str(int("".join(digits[::-1])))


def _dec(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    x, y = p.args
    if "decimal_misalign" not in wrong:
        a, b = map(Fraction, (x, y))
        places = max(_places(x), _places(y))
        total = a + b
        if "forget_carry" in wrong:
            total = Fraction(int(_add(Problem("addition", "", (_scaled(x, places), _scaled(y, places))), wrong)[1]),
                             10 ** places)
        return [f"I line up the decimal points: {x} + {y}."], _fmt_dec(total, places)
    places = max(_places(x), _places(y))
    ix, iy = int(x.replace(".", "")), int(y.replace(".", ""))
    steps = [f"I line the numbers up on the right like {ix} and {iy}."]
    total = int(_add(Problem("addition", "", (str(ix), str(iy))), wrong)[1])
    steps.append(f"That adds to {total}, and I put the point {places} places from the end.")
    return steps, _fmt_dec(Fraction(total, 10 ** places), places)


def _places(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


def _scaled(s: str, places: int) -> str:
    whole, _, frac = s.partition(".")
    return str(int(whole + frac.ljust(places, "0")))


def _fmt_dec(f: Fraction, places: int) -> str:
    scaled = f * 10 ** places
    sign = "-" if scaled < 0 else ""
    n = abs(int(scaled))
    return f"{sign}{n // 10 ** places}.{n % 10 ** places:0{places}d}" if places else f"{sign}{n}"


def _prod(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    a, b = map(int, p.args)
    if a < 0 and b < 0 and "neg_times_neg" in wrong:
        return [f"{abs(a)} times {abs(b)} is {abs(a * b)}, and with negatives the answer is negative."], str(-abs(a * b))
    return [f"{a} times {b} is {a * b}."], str(a * b)


def _expand(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    a, sign, b = int(p.args[0]), p.args[1], int(p.args[2])
    if "distribute_first_only" in wrong:
        return [f"{a} times x is {a}x, then {sign} {b}."], f"{a}x {sign} {b}"
    return [f"{a} times x is {a}x and {a} times {b} is {a * b}."], f"{a}x {sign} {a * b}"


def _equation(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    sign, a, b = p.args[0], int(p.args[1]), int(p.args[2])
    moved = "+" if sign == "+" else "-"
    if "move_without_sign_change" in wrong:
        x = b + a if sign == "+" else b - a
        return [f"I move the {a} to the other side: x = {b} {moved} {a}."], f"x = {x}"
    x = b - a if sign == "+" else b + a
    return [f"I undo {sign} {a} on both sides: x = {b} {'-' if sign == '+' else '+'} {a}."], f"x = {x}"


def _expression(p: Problem, wrong: set[str]) -> tuple[list[str], str]:
    tokens = list(p.args)
    values = [int(t) for t in tokens[0::2]]
    ops = tokens[1::2]
    power = (lambda x, y: x * y) if "power_as_product" in wrong else (lambda x, y: x ** y)
    apply = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "^": power}
    if "left_to_right" in wrong:
        acc, steps = values[0], []
        for op, v in zip(ops, values[1:]):
            new = apply[op](acc, v)
            steps.append(f"{acc} {op} {v} = {new}.")
            acc = new
        return steps, str(acc)
    steps = []
    for level in (("^",), ("*",), ("+", "-")):
        i = 0
        while i < len(ops):
            if ops[i] in level and (level != ("^",) or i == len(ops) - 1 or ops[i + 1] != "^"):
                new = apply[ops[i]](values[i], values[i + 1])
                steps.append(f"{values[i]} {ops[i]} {values[i + 1]} = {new}.")
                values[i:i + 2] = [new]
                del ops[i]
                i = 0 if level == ("^",) else i
                continue
            i += 1
    return steps, str(values[0])


_SOLVERS = {"fraction_sum": _frac, "subtraction": _sub, "addition": _add, "decimal_sum": _dec, "product": _prod,
            "expansion": _expand, "equation": _equation, "expression": _expression}


def solve(problem: Problem | str, misconceptions=()) -> tuple[list[str], str]:
    """(worked steps, final answer) of a student holding `misconceptions` (none: the correct solution)."""
    p = parse(problem) if isinstance(problem, str) else problem
    return _SOLVERS[p.kind](p, set(misconceptions))


def same_answer(kind: str, a: str, b: str) -> bool:
    """Whether two answers to a problem of `kind` are the same value (5/6 = 10/12, x = 7 = 7, 3x+12 = 3x + 12)."""
    def norm(s: str):
        s = str(s).strip().lower().replace(" ", "").rstrip(".")
        if kind == "equation":
            s = s.removeprefix("x=")
        if kind == "expansion":
            return s
        try:
            return Fraction(s)
        except (ValueError, ZeroDivisionError):
            return s
    return norm(a) == norm(b)


def mentions_answer(text: str, kind: str, answer: str) -> bool:
    """Whether `text` states `answer` (as a standalone number, fraction or expression)."""
    if kind == "expansion":
        return answer.replace(" ", "") in str(text).replace(" ", "")
    value = answer.removeprefix("x = ")
    for token in re.findall(r"-?\d+(?:\s*/\s*\d+|\.\d+)?", str(text)):
        if same_answer(kind, token.replace(" ", ""), value):
            return True
    return False
