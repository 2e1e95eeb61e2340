"""DB environment (held-in): AgentBench dbbench items, their action syntax and their scoring.

The agent replies `Action: Operation` with one ```sql block (the first block runs; it sees the raw result rows or
the MySQL-style error), or `Action: Answer` with `Final Answer: [...]`. SELECT-like items are judged on the final
answer list against `label` (one value: float compare when both parse, else string; several: set compare);
INSERT/UPDATE items on the hash of the final table against `answer_md5`, whatever the answer says. Anything
else ends the episode as an invalid action. The task score is the mean of the SELECT (all SELECT-like kinds
together), INSERT and UPDATE accuracies (`aggregate`).

Backends: `sqlite` (embedded, default; agentlm.envs.db_sqlite) or `mariadb` (a real server, see
agentlm.envs.mariadb). Each episode gets a fresh database holding only the item's table (all columns TEXT).

Tables are built as AgentBench builds them (see `table_problem`): all rows go in with one INSERT, so a table with
a row of the wrong length (AgentBench's full test set has short and empty rows) exists but is empty, and the item
is still played and scored on it; such items are counted by reason in the metric (`table_problems`). A table
whose column names differ only in letter case cannot exist on MySQL/MariaDB (error 1060, names are
case-insensitive), nor on SQLite: the item is unscorable, with that reason. `strict_tables=True` refuses every
item whose table is not built whole.
"""
from __future__ import annotations

import ast
import json
import pathlib
import re
from typing import Any, Sequence

from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Episode, Message, Outcome, StepResult, Task, TaskUnscorable
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, episode_counts, scored_episodes
from agentlm.jsonl import parse_lines

MODIFYING = ("INSERT", "UPDATE", "DELETE")
OBSERVATION_LIMIT = 800

INSTRUCTION = """You are working with a MySQL database through me: I run your SQL and show you what the server returns.
Each turn, first reason briefly about the question and what you know so far, then do exactly one of these:

1. Run one SQL statement. Write
Action: Operation
```sql
SELECT name FROM people WHERE age > 30;
```
Put the statement on a single line inside one sql code block and nothing else in the block. Only the first block is
run, and you get back the raw rows (a Python-style list of tuples) or the error message.

2. Give your final answer. Write
Action: Answer
Final Answer: ["value 1", "value 2"]
The list must hold exactly the values asked for, nothing more. Answer only when you are sure.
When the task asks you to change the table (insert or update rows), make the change with operations first; the
answer list of such a task is not checked, so any list will do.

A reply that follows neither format ends the task as a failure."""


class DBItemError(ValueError):
    pass


def validate_item(item: dict, where: str) -> None:
    try:
        table = item["table"]
        info = table["table_info"]
        cols = [c["name"] for c in info["columns"]]
        kind = item["type"][0]
        item["description"]
    except (KeyError, TypeError, IndexError) as e:
        raise DBItemError(f"{where}: missing or malformed field {e}") from None
    if not table.get("table_name"):
        raise DBItemError(f"{where}: table.table_name is empty")
    if not cols:
        raise DBItemError(f"{where}: table.table_info.columns is empty")
    for n, row in enumerate(info.get("rows") or []):
        if not isinstance(row, list):
            raise DBItemError(f"{where}: table row {n} is {type(row).__name__}, not a list of values")
    if kind in MODIFYING:
        if not _md5_of(item.get("answer_md5")):
            raise DBItemError(f"{where}: {kind} item needs answer_md5 like \"[('<32 hex>',)]\"")
    elif not isinstance(item.get("label"), list):
        raise DBItemError(f"{where}: SELECT-like item needs a list `label`")


# Why a table is not built whole. The row problems leave the table empty (AgentBench's one INSERT fails);
# a case-duplicate column leaves no table at all, on MySQL/MariaDB as on SQLite.
EMPTY_TABLE_REASONS = ("empty_row", "short_row", "long_row")
UNBUILDABLE_REASONS = ("duplicate_column",)


def table_problem(item: dict) -> tuple[str, str] | None:
    """(reason, detail) when the item's table cannot be built as listed, else None."""
    info = item["table"]["table_info"]
    cols = [str(c["name"]) for c in info["columns"]]
    seen: dict[str, str] = {}
    for c in cols:
        key = c.strip().casefold()
        if key in seen:
            return ("duplicate_column", f"columns {seen[key]!r} and {c!r} differ only in letter case: MySQL/MariaDB "
                    "refuse the table (1060 Duplicate column name), and so does SQLite")
        seen[key] = c
    for n, row in enumerate(info.get("rows") or []):
        if len(row) != len(cols):
            reason = "empty_row" if not row else "short_row" if len(row) < len(cols) else "long_row"
            return (reason, f"row {n} has {len(row)} values for {len(cols)} columns: AgentBench's one INSERT of "
                    "all rows fails, so the table exists but is empty")
    return None


def table_rows(item: dict) -> list[list]:
    """The rows the item's table holds once built: none when AgentBench's single INSERT would fail."""
    problem = table_problem(item)
    return [] if problem and problem[0] in EMPTY_TABLE_REASONS else list(item["table"]["table_info"].get("rows") or [])


def load_tasks(path: str | pathlib.Path, split: str = "dev") -> list[Task]:
    """dbbench JSONL, or JSON holding a list or one item -> Tasks with ids db_<file stem>_<index in the file>
    (`split` is the Tasks' split label; the ids follow the file, so dev and standard items never share one)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DBItemError(f"{path}: no such dbbench file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DBItemError(f"{path}: invalid JSON ({e})") from None
        items = items if isinstance(items, list) else [items]
    else:
        items = parse_lines(text, path, DBItemError)
    stem = re.sub(r"\W+", "_", path.stem)
    tasks = []
    for i, item in enumerate(items):
        validate_item(item, f"{path} item {i}")
        tasks.append(Task(id=f"db_{stem}_{i}", env="db", data=item, split=split))
    return tasks


def _md5_of(answer_md5: Any) -> str | None:
    m = re.search(r"[0-9a-f]{32}", str(answer_md5 or ""))
    return m.group(0) if m else None


def parse_final_answer(raw: str) -> list:
    """AgentBench reads the text after 'Final Answer:' as a Python literal list (falling back to the raw text)."""
    try:
        return list(ast.literal_eval(raw))
    except Exception:  # noqa: BLE001 -- any unparsable answer is one string
        return [raw]


def select_correct(raw_answer: str, label: Sequence[Any]) -> bool:
    ans = parse_final_answer(raw_answer)
    if len(ans) == 1 and len(label) == 1:
        try:
            return float(ans[0]) == float(label[0])
        except (ValueError, TypeError):
            return ans[0] == label[0]
    try:
        return set(ans) == set(label)
    except TypeError:
        return False


def parse_action(text: str) -> tuple[str, str] | None:
    """('sql', statement) | ('answer', raw list text) | None for a reply in neither format."""
    m = re.search(r"Action:\s*(\w+)", text)
    if not m:
        return None
    if m.group(1) == "Operation":
        block = re.search(r"```sql\s*\n([\s\S]*?)\n?```", text[m.end():]) or re.search(r"```sql\s*\n([\s\S]*?)\n?```", text)
        return ("sql", block.group(1).strip().replace("\n", " ")) if block else None
    ans = re.search(r"Final Answer:(.*)", text)
    return ("answer", ans.group(1).strip()) if ans else None


def make_backend(item: dict, backend: str, **kw):
    info = item["table"]["table_info"]
    cols = [c["name"] for c in info["columns"]]
    rows = table_rows(item)
    if backend == "sqlite":
        from agentlm.envs.db_sqlite import SQLiteDB
        return SQLiteDB(item["table"]["table_name"], cols, rows, **kw)
    if backend == "mariadb":
        from agentlm.envs.mariadb import MariaDBDatabase
        return MariaDBDatabase(item["table"]["table_name"], cols, rows, **kw)
    raise ValueError(f"unknown DB backend {backend!r} (sqlite | mariadb)")


class DBEnv(Environment):
    name = "db"

    def __init__(self, backend: str = "sqlite", max_rounds: int = 15, prompt_file: str | None = None,
                 statement_timeout: float = 5.0, backend_options: dict | None = None, strict_tables: bool = False):
        self.backend, self.max_rounds, self.timeout = backend, max_rounds, statement_timeout
        self.strict_tables = strict_tables
        self.backend_options = dict(backend_options or {})
        self.scaffold: PromptScaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        self.db = None
        self.item: dict = {}
        self.rounds = 0

    def reset(self, task: Task) -> list[Message]:
        self.close()
        self.item, self.rounds = task.data, 0
        problem = table_problem(self.item)
        if problem and (problem[0] in UNBUILDABLE_REASONS or self.strict_tables):
            why = "" if problem[0] in UNBUILDABLE_REASONS else "strict_tables: "
            raise TaskUnscorable(f"{why}{problem[0]}: {problem[1]}")
        self.db = make_backend(self.item, self.backend, statement_timeout=self.timeout, **self.backend_options)
        return self.scaffold.build(self.item["description"] + "\n" + self.item.get("add_description", ""))

    def _finish(self, answer: str | None, info: dict) -> StepResult:
        kind = self.item["type"][0]
        info = dict(info, type=kind)
        if kind in MODIFYING:
            got = self.db.table_hash()
            info["table_md5"] = got
            ok = got is not None and got == _md5_of(self.item["answer_md5"])
        else:
            ok = answer is not None and select_correct(answer, self.item["label"])
        info["answer"] = answer
        return StepResult("", 1.0 if ok else 0.0, True, info)

    def step(self, action: str) -> StepResult:
        self.rounds += 1
        parsed = parse_action(action)
        if parsed is None:
            result = self._finish(None, {"invalid": True})
            result.invalid = True
            return result
        kind, body = parsed
        if kind == "answer":
            return self._finish(body, {})
        out = self.db.execute(body)
        if len(out) > OBSERVATION_LIMIT:
            out = out[:OBSERVATION_LIMIT] + "[TRUNCATED]"
        if self.rounds >= self.max_rounds:  # out of rounds: a modifying item is still judged on its table
            return self._finish(None, {"round_limit": True})
        return StepResult(out, 0.0, False, {})

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def rows_to_answer(observation: str) -> list[str]:
    """Turns a result observation into an answer list, using the dataset's convention that nothing is 'none'."""
    try:
        rows = ast.literal_eval(observation)
    except (ValueError, SyntaxError):
        return [observation]
    values = [v for row in rows for v in (row if isinstance(row, tuple) else (row,))]
    values = ["none" if v is None else str(v) for v in values]
    return values or ["none"]


class DBOracle:
    """Knows the item's solution: runs the gold SQL (or the label statement), then answers.

    mode="label": answers with the item's label (full marks whenever the environment works); mode="sql":
    answers with what the gold SQL returned (full marks only where the gold SQL reproduces the label).
    """

    def __init__(self, mode: str = "label"):
        if mode not in ("label", "sql"):
            raise ValueError("DBOracle mode is 'label' or 'sql'")
        self.mode = mode

    def act(self, conversation: list[Message], task: Task) -> str:
        item, turn = task.data, n_agent_turns(conversation)
        modifying = item["type"][0] in MODIFYING
        sql = item["label"][0] if modifying else (item.get("sql") or {}).get("query")
        if turn == 0 and sql:
            return f"I will run the statement that answers this.\nAction: Operation\n```sql\n{' '.join(sql.split())}\n```"
        if modifying:
            return "The table is updated.\nAction: Answer\nFinal Answer: [\"done\"]"
        answer = item["label"] if self.mode == "label" or not sql else rows_to_answer(conversation[-1]["value"])
        return f"That gives the answer.\nAction: Answer\nFinal Answer: {json.dumps(answer, ensure_ascii=False)}"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """AgentBench's DB score in percent: the mean of SELECT-like, INSERT and UPDATE accuracies (present kinds
    only; the accuracies themselves are fractions)."""
    kinds = {t.id: t.data["type"][0] for t in tasks}
    groups: dict[str, list[float]] = {"SELECT": [], "INSERT": [], "UPDATE": []}
    for ep in scored_episodes(episodes):
        kind = kinds.get(ep.task_id, "SELECT")
        groups["SELECT" if kind not in ("INSERT", "UPDATE") else kind].append(ep.reward)
    acc: dict[str, Any] = {f"{k}_accuracy": sum(v) / len(v) for k, v in groups.items() if v}
    score = 100.0 * sum(acc.values()) / len(acc) if acc else 0.0
    played = {ep.task_id for ep in episodes}
    problems: dict[str, int] = {}
    for t in tasks:
        problem = table_problem(t.data) if t.id in played and "table" in t.data else None
        if problem:
            problems[problem[0]] = problems.get(problem[0], 0) + 1
    return {"score": score, **acc, **episode_counts(episodes), "table_problems": problems}


SPEC = EnvSpec(
    name="db", env=DBEnv, load_tasks=load_tasks, group="held_in", paper_task="DB",
    metric=Metric("mean of SELECT/INSERT/UPDATE accuracy", aggregate),
    oracle=DBOracle, oracle_options={"mode": "label"},
    action_format=ActionFormat(r"^Action:\s*(Operation|Answer)"),
    options={"backend": "sqlite", "prompt_file": None, "statement_timeout": 5.0, "backend_options": {},
             "strict_tables": False},
    task_formats="AgentBench dbbench items, JSONL or JSON (e.g. dbbench/dev.jsonl)",
    description="AgentBench DB: SQL over one table per item, sqlite or MariaDB backend")
