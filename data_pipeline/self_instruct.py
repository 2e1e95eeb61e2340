"""Self-Instruct for DB and OS: the teacher proposes a task with its gold solution; the pipeline keeps it only if
the solution runs and checks out in the environment and the task is not a near-duplicate of one already kept.

DB proposal: a table, a question, its type and the gold SQL. The SQL is run on the table (the label / the table
hash after an INSERT/UPDATE comes from that run), then the task is played in the DB environment by an agent that
executes the SQL and answers with what it returned; it must score full marks.
OS proposal: a description, an init script, a solution script and the expected answer. In the OS environment an
agent runs the solution and answers with its output; the environment must judge that answer correct, so a
proposal whose stated answer disagrees with its own solution is rejected.

Every proposal and its verdict (kept, or the reason it was rejected) is stored exactly once in
self_instruct/<source>.jsonl; kept ones become tasks. Near-duplicates are judged in proposal order, so a resumed
run reaches the same verdicts.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import random
import re
from typing import Any

import ml_collections

from agentlm.envs.base import Outcome, Task
from agentlm.envs.loop import LoopConfig, run_episode
from data_pipeline.dedup import NearDuplicateFilter
from data_pipeline.envs import make_oracle
from data_pipeline.pipeline import Run
from data_pipeline.rollout import make_env
from data_pipeline.sources import db_derive, os_derive
from data_pipeline.store import RecordStore
from data_pipeline.teacher import ContentFailure, TeacherError

log = logging.getLogger(__name__)

SELECT_TYPES = ("counting", "aggregation-MAX", "aggregation-MIN", "aggregation-SUM", "aggregation-AVG", "ranking",
                "comparison", "other")


class Reject(Exception):
    pass


DB_PROMPT = """You write new tasks for training a database agent. Each task is one small table, one question or
change request about it, and the single SQL statement that solves it. Make the task different from the examples
(another topic, another kind of question). All columns are stored as TEXT, so CAST numeric columns in
comparisons, ordering and aggregates. Allowed types: {types}, INSERT, UPDATE.

{examples}
Write task #{index} as one JSON object with keys "table_name", "columns" (list of names), "rows" (list of rows,
5 to 15 of them), "question", "type" and "sql". Reply with the JSON object only."""

OS_PROMPT = """You write new tasks for training an agent that uses a Linux shell. Each task has a question about
files, text or processes under /root, an init script (bash) that sets up the situation, a solution script (bash)
whose printed output is exactly the answer, and that answer. Make the task different from the examples.

{examples}
Write task #{index} as one JSON object with keys "description", "init", "solution" and "answer". Reply with the
JSON object only."""


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (bare, or inside a ```json fence)."""
    fence = re.search(r"```(?:json)?\s*\n([\s\S]*?)```", text)
    candidate = fence.group(1) if fence else text[text.find("{"): text.rfind("}") + 1]
    try:
        obj = json.loads(candidate)
    except json.JSONDecodeError as e:
        raise Reject(f"unparsable: {e.msg}") from None
    if not isinstance(obj, dict):
        raise Reject("unparsable: not a JSON object")
    return obj


def _require(obj: dict, fields: dict[str, type]) -> None:
    for name, typ in fields.items():
        if not isinstance(obj.get(name), typ) or (typ is str and not obj[name].strip()):
            raise Reject(f"unparsable: field {name!r} missing or not a {typ.__name__}")


class DBProposals:
    env = "db"

    def examples(self, rng: random.Random, k: int) -> str:
        items = db_derive.derive_items(rng.randrange(10 ** 6), 1)
        out = []
        for item in rng.sample(items, min(k, len(items))):
            t = item["table"]
            ex = {"table_name": t["table_name"], "columns": [c["name"] for c in t["table_info"]["columns"]],
                  "rows": t["table_info"]["rows"][:3], "question": item["description"], "type": item["type"][0],
                  "sql": item.get("sql", {}).get("query") or item["label"][0]}
            out.append("Example:\n" + json.dumps(ex, ensure_ascii=False))
        return "\n".join(out) + "\n"

    def prompt(self, index: int, examples: str) -> str:
        return DB_PROMPT.format(types=", ".join(SELECT_TYPES), examples=examples, index=index)

    def dedup_text(self, item: dict) -> str:
        return item["description"]

    def to_item(self, obj: dict) -> dict[str, Any]:
        from agentlm.envs.db_sqlite import SQLiteDB

        _require(obj, {"table_name": str, "columns": list, "rows": list, "question": str, "type": str, "sql": str})
        kind, cols = obj["type"], [str(c) for c in obj["columns"]]
        if kind not in SELECT_TYPES + ("INSERT", "UPDATE"):
            raise Reject(f"unparsable: unknown type {kind!r}")
        if not obj["rows"] or any(not isinstance(r, list) or len(r) != len(cols) for r in obj["rows"]):
            raise Reject("malformed table: every row needs one value per column")
        table = {"table_name": obj["table_name"], "table_info": {
            "columns": [{"name": c, "type": "TEXT"} for c in cols], "rows": obj["rows"]}}
        item = {"description": obj["question"], "type": [kind], "table": table, "heads": cols,
                "add_description": f"The name of this table is {obj['table_name']}, and the headers of this table "
                                   f"are {','.join(cols)}.", "source": "self_instruct"}
        try:
            db = SQLiteDB(obj["table_name"], cols, obj["rows"])
        except Exception as e:  # noqa: BLE001 -- whatever the proposal did wrong, it is a reject
            raise Reject(f"malformed table: {e}") from None
        try:
            before = db.table_hash()
            rows = db.query(obj["sql"])
            if kind in ("INSERT", "UPDATE"):
                after = db.table_hash()
                if after == before:
                    raise Reject("gold statement changes nothing")
                item["label"] = [obj["sql"]]
                item["answer_md5"] = f"[('{after}',)]"
            else:
                label = [db_derive.format_value(v) for row in rows for v in row]
                if not label or label == ["None"]:
                    raise Reject("gold SQL returns nothing")
                item["label"], item["sql"] = label, {"query": obj["sql"]}
        except Reject:
            raise
        except Exception as e:  # noqa: BLE001
            raise Reject(f"gold SQL fails: {str(e)[:200]}") from None
        finally:
            db.close()
        return item

    def solver(self):
        return make_oracle("db", mode="sql")


class OSProposals:
    env = "os"

    def examples(self, rng: random.Random, k: int) -> str:
        out = []
        for item in os_derive.derive_items(rng.randrange(10 ** 6), k):
            ex = {"description": item["description"], "init": item["create"]["init"]["code"],
                  "solution": item["evaluation"]["example"]["code"], "answer": item["evaluation"]["match"]}
            out.append("Example:\n" + json.dumps(ex, ensure_ascii=False))
        return "\n".join(out) + "\n"

    def prompt(self, index: int, examples: str) -> str:
        return OS_PROMPT.format(examples=examples, index=index)

    def dedup_text(self, item: dict) -> str:
        return item["description"]

    def to_item(self, obj: dict) -> dict[str, Any]:
        _require(obj, {"description": str, "init": str, "solution": str})
        answer = obj.get("answer")
        if not isinstance(answer, (str, int, float)) or not str(answer).strip():
            raise Reject("unparsable: field 'answer' missing")
        return {"description": obj["description"], "create": {"local": "default", "init": {"code": obj["init"]}},
                "evaluation": {"match": str(answer).strip(), "example": {"code": obj["solution"]}},
                "labels": ["self_instruct"], "source": "self_instruct"}

    def solver(self):
        return make_oracle("os", show_work=True)  # runs the solution script and answers with its output


PROPOSERS = {"db": DBProposals, "os": OSProposals}


def propose_and_check(run: Run, name: str, src: ml_collections.ConfigDict, index: int) -> dict[str, Any]:
    """One proposal: ask, parse, run the gold solution in the environment. Returns the verdict row (not deduped)."""
    si = run.cfg.self_instruct
    proposer = PROPOSERS[src.env]()
    rng = random.Random(f"{src.seed}-{name}-{index}")
    prompt = proposer.prompt(index, proposer.examples(rng, si.n_examples))
    pid = f"{name}_p{index:05d}"
    verdict: dict[str, Any] = {"id": pid, "index": index, "kept": False}
    try:
        text = run.teacher.chat([{"from": "human", "value": prompt}], stage="self_instruct",
                                validate=lambda t: None if "{" in t else "no JSON object in the reply",
                                max_tokens=si.max_tokens, temperature=si.temperature)
    except ContentFailure as e:
        return {**verdict, "reason": f"unparsable: {e.reason}", "reply": e.last_text[:2000]}
    verdict["reply"] = text
    try:
        item = proposer.to_item(extract_json(text))
    except Reject as e:
        return {**verdict, "reason": str(e)}
    verdict["item"] = item
    task = Task(f"{name}_{index:05d}", src.env, item, "train")
    with make_env(run, name) as env:
        episode = run_episode(env, proposer.solver(), task, LoopConfig(max_rounds=src.get("max_rounds") or None))
    if episode.outcome != Outcome.SUCCESS:
        return {**verdict, "reason": f"fails in the environment ({episode.outcome.value}, reward {episode.reward})"}
    return {**verdict, "reason": "ok", "dedup_text": proposer.dedup_text(item)}


def generate(run: Run, name: str, src: ml_collections.ConfigDict, task_store: RecordStore) -> dict[str, int]:
    """Proposes up to `src.n_proposals` tasks; adds the kept ones to `task_store`."""
    if src.env not in PROPOSERS:
        raise ValueError(f"sources.{name}: Self-Instruct supports envs {sorted(PROPOSERS)}, not {src.env!r}")
    si = run.cfg.self_instruct
    run.path("self_instruct").mkdir(exist_ok=True)
    dedup = NearDuplicateFilter(si.rouge_threshold)
    budget = run.budget
    counts = {"proposed": 0, "new": 0, "total": 0, "stopped": 0}
    with RecordStore(run.path("self_instruct", f"{name}.jsonl"), fsync=run.cfg.get("fsync", True)) as props:
        for row in sorted(props.rows(), key=lambda r: r["index"]):
            if row["kept"]:
                dedup.add(row["dedup_text"])
        todo = [k for k in range(src.n_proposals) if f"{name}_p{k:05d}" not in props]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, run.cfg.teacher.concurrency)) as pool:
            for start in range(0, len(todo), si.batch):
                reason = budget.exhausted(run.ledger)
                if reason:
                    log.warning("self-instruct %s: %s; stopping (rerun to continue)", name, reason)
                    counts["stopped"] = 1
                    break
                batch = todo[start:start + si.batch]
                budget.started += len(batch)
                futures = {k: pool.submit(propose_and_check, run, name, src, k) for k in batch}
                for k in batch:  # verdicts in proposal order, so dedup is deterministic
                    try:
                        verdict = futures[k].result()
                    except TeacherError as e:
                        run.record_failure("self_instruct", f"{name}_p{k:05d}", str(e))
                        continue
                    if verdict["reason"] == "ok":
                        score, where = dedup.closest(verdict["dedup_text"])
                        if score >= si.rouge_threshold:
                            verdict["reason"] = f"near-duplicate (ROUGE-L {score:.2f})"
                        else:
                            dedup.add(verdict["dedup_text"])
                            verdict["kept"] = True
                            verdict["task_id"] = f"{name}_{k:05d}"
                            task_store.add({"id": verdict["task_id"], "env": src.env, "data": verdict["item"],
                                            "split": "train", "source": name, "method": src.get("method", "rollout")})
                            counts["new"] += 1
                    props.add(verdict)
                    counts["proposed"] += 1
                run.ledger.save()
        counts["total"] = sum(1 for r in props.rows() if r["kept"])
        counts["rejected"] = {}
        for r in props.rows():
            if not r["kept"]:
                key = r["reason"].split(" (")[0].split(":")[0]
                counts["rejected"][key] = counts["rejected"].get(key, 0) + 1
    return counts
