"""ReWOO's workers, offline: Calculator (sympy on an arithmetic expression), SearchSOTU (BM25 passage search over
the State of the Union transcript), Wikipedia (the local HotpotQA corpus, `agentlm.envs.wiki_corpus`). The LLM
worker is the evaluated model itself, asked by the environment as an agent turn.

ReWOO's Calculator asks an LLM to turn the text into a numexpr expression; ours evaluates what the plan wrote,
after checking it is arithmetic only (numbers, + - * / ^ %, parentheses, a few functions), so no plan text is
ever executed as Python.
"""
from __future__ import annotations

import ast
import functools
import pathlib
import re
import threading

_FUNCTIONS = {"sqrt", "exp", "log", "ln", "sin", "cos", "tan", "pi", "E", "abs", "Abs", "floor", "ceiling",
              "factorial"}
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
            ast.Mod, ast.FloorDiv, ast.USub, ast.UAdd, ast.Call, ast.Name, ast.Load)


def calculator(expression: str) -> str:
    """The value of an arithmetic expression ("2^10 / 4", "1,200 * 3%"), or an error text the plan's later steps see."""
    import sympy

    text = expression.strip().rstrip("=").strip()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,200 -> 1200
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("$", "")
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return f"Calculator could not read {expression!r} as arithmetic"
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED) or (isinstance(node, ast.Name) and node.id not in _FUNCTIONS) or \
                (isinstance(node, ast.Constant) and not isinstance(node.value, (int, float))):
            return f"Calculator could not read {expression!r} as arithmetic"
    try:
        value = sympy.sympify(text, locals={"ln": sympy.log}).evalf(15)
        if not value.is_number or value.is_finite is False or value is sympy.nan:
            return f"Calculator could not evaluate {expression!r} (not a finite number)"
        if value.is_real is False:
            return str(value)
        number = float(value)
    except (sympy.SympifyError, ValueError, TypeError, ZeroDivisionError, OverflowError):
        return f"Calculator could not evaluate {expression!r}"
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.10g}"


class PassageSearch:
    """BM25 (bm25s) over a text's blank-line-separated passages; returns the best few joined (ReWOO's SearchSOTU
    answers from the passages its vector store retrieves)."""

    def __init__(self, text: str, top_k: int = 3, min_chars: int = 200):
        passages, current = [], ""
        for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
            if not para:
                continue
            current = f"{current} {para}".strip()
            if len(current) >= min_chars:  # the transcript's one-line paragraphs joined into passages
                passages.append(current)
                current = ""
        if current:
            passages.append(current)
        if not passages:
            raise ValueError("passage search needs a non-empty text")
        self.passages, self.top_k = passages, top_k
        self._index, self._lock = None, threading.Lock()

    def __call__(self, query: str) -> str:
        import bm25s

        with self._lock:
            if self._index is None:
                self._index = bm25s.BM25()
                self._index.index(bm25s.tokenize(self.passages, stopwords="en", show_progress=False),
                                  show_progress=False)
            tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
            ids, scores = self._index.retrieve(tokens, k=min(self.top_k, len(self.passages)), show_progress=False)
        hits = [self.passages[int(i)] for i, s in zip(ids[0], scores[0]) if s > 0]
        return "\n".join(hits) if hits else "No evidence found."


@functools.lru_cache(maxsize=4)
def sotu_search(path: str) -> PassageSearch:
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"SearchSOTU: the transcript {file} does not exist")
    return PassageSearch(file.read_text(encoding="utf-8"))


def wikipedia(browser, query: str) -> str:
    """ReWOO's Wikipedia worker: the page's opening (or similar titles) from the local corpus."""
    return browser.search(query)
