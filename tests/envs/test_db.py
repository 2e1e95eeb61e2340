"""DB environment: gold statements against dbbench dev, scoring semantics, and the SQL sandbox."""
import json

import pytest

from agentlm.envs import db
from agentlm.envs.base import Outcome, Task
from agentlm.envs.db_sqlite import SQLiteDB, concat_ws, mysql_table_hash
from agentlm.envs.loop import run_tasks, summarize
from tests.conftest import shared_path
from tests.envs.mariadb_server import running_mariadb

# Where a dev item's gold SQL cannot give its label, and why (the label comes from the source dataset, the SQL
# was written afterwards). Checked against both backends: the same items fail for the same reasons on MariaDB.
GOLD_SQL_FAILS = {
    0: "syntax: unquoted column name with spaces",
    1: "wrong result: LIKE '%jimmy%' returns the full driver cell, not the label's name",
    2: "unknown column weeks_at_No_1 (the table has no such column)",
    5: "wrong result: LIKE '%#%' counts 2 rows, label says 17",
    6: "unknown column Wrestler",
    7: "syntax: table name in single quotes",
    8: "syntax: missing spaces and [bracket] quoting",
    11: "syntax: `table` used as a table name",
    12: "wrong result: selects Player, label is a number",
    13: "syntax: missing spaces before FROM/WHERE/LIMIT",
    15: "wrong result: SUM is 5, label says 1",
    16: "wrong result: MIN over TEXT compares strings ('13'), label says 5",
    17: "wrong result: rows exist with Silver = 0, label says none",
    18: "unknown table Baseball_Team_Record (the table is 'Baseball Team Record')",
    19: "syntax: missing spaces around FROM/WHERE",
}
FAIL_PREFIX = {"syntax": "1064", "unknown column": "1054", "unknown table": "1146", "wrong result": "["}


def _items():
    path = shared_path("data", "agentbench", "dbbench", "dev.jsonl")
    return db.load_tasks(path)


def _check_gold(task, backend, **kw):
    item = task.data
    store = db.make_backend(item, backend, **kw)
    try:
        if item["type"][0] in db.MODIFYING:
            out = store.execute(item["label"][0])
            return store.table_hash() == db._md5_of(item["answer_md5"]), out
        out = store.execute(item["sql"]["query"])
        return db.select_correct(json.dumps(db.rows_to_answer(out)), item["label"]), out
    finally:
        store.close()


def _assert_gold(tasks, backend, **kw):
    for i, task in enumerate(tasks):
        ok, out = _check_gold(task, backend, **kw)
        if i in GOLD_SQL_FAILS:
            reason = GOLD_SQL_FAILS[i]
            assert not ok, f"item {i} now matches; drop it from GOLD_SQL_FAILS"
            prefix = next(p for k, p in FAIL_PREFIX.items() if reason.startswith(k))
            assert out.startswith(prefix), f"item {i} ({reason}) failed differently: {out[:120]}"
        else:
            assert ok, f"item {i} ({task.data['type'][0]}) gold does not reproduce: {out[:200]}"


def test_gold_statements_sqlite():
    tasks = _items()
    assert len(tasks) == 60
    kinds = [t.data["type"][0] for t in tasks]
    assert kinds.count("INSERT") == 20 and kinds.count("UPDATE") == 20
    _assert_gold(tasks, "sqlite")


@pytest.mark.slow
def test_gold_statements_mariadb(tmp_path_factory):
    with running_mariadb(tmp_path_factory, port=33071) as (_, datadir):
        tasks = _items()
        _assert_gold(tasks, "mariadb", datadir=datadir, port=33071)
        opts = {"datadir": datadir, "port": 33071}
        eps = run_tasks(lambda: db.DBEnv(backend="mariadb", backend_options=opts), db.DBOracle(), tasks[16:26],
                        workers=2, progress=False)
        assert all(e.outcome == Outcome.SUCCESS for e in eps), [(e.task_id, e.info) for e in eps]


def test_oracle_full_score_through_loop(tmp_path):
    tasks = _items()
    out = tmp_path / "db.jsonl"
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(), tasks, workers=2, out=out, progress=False)
    assert [e.task_id for e in eps] == [t.id for t in tasks]
    assert all(e.outcome == Outcome.SUCCESS for e in eps), [(e.task_id, e.outcome, e.info) for e in eps if e.reward < 1]
    assert db.aggregate(eps, tasks)["score"] == 100.0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [t.id for t in tasks]
    assert rows[0]["conversations"][-1]["from"] == "gpt" and rows[0]["conversations"][-1]["loss"] is True
    # the sql-mode oracle answers from what the gold SQL returned: exactly the reproducible SELECT items pass
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(mode="sql"), tasks[:20], progress=False)
    assert {i for i, e in enumerate(eps) if e.reward == 1.0} == set(range(20)) - set(GOLD_SQL_FAILS)


def test_mysql_hash_semantics():
    import hashlib

    def rowhash(text):
        return hashlib.md5(text.encode()).hexdigest()[:5]

    # NULLs are skipped by CONCAT_WS, not rendered empty; an empty table hashes to NULL
    assert concat_ws(",", "a", None, "b") == "a,b" and concat_ws(None, "a") is None
    assert mysql_table_hash([]) is None
    h = mysql_table_hash([("x", None), ("y", "1")])
    assert h == hashlib.md5(",".join(sorted([rowhash("x"), rowhash("y,1")])).encode()).hexdigest()
    # group_concat stops at 1024 bytes (170 rowhashes and a bit): a row sorting past the cut changes nothing,
    # a row sorting first does
    rows = [(f"r{i}",) for i in range(300)]
    full = sorted(rowhash(r[0]) for r in rows)
    assert mysql_table_hash(rows) == hashlib.md5(",".join(full).encode()[:1024]).hexdigest()
    last = next(f"z{i}" for i in range(10 ** 6) if rowhash(f"z{i}") > full[200])
    first = next(f"a{i}" for i in range(10 ** 6) if rowhash(f"a{i}") < full[0])
    assert mysql_table_hash(rows + [(last,)]) == mysql_table_hash(rows)
    assert mysql_table_hash(rows + [(first,)]) != mysql_table_hash(rows)


def test_select_scoring():
    assert db.select_correct('["1.0"]', ["1"])
    assert db.select_correct("[1]", ["1.0"])
    assert db.select_correct('["b", "a"]', ["a", "b"])
    assert not db.select_correct('["a"]', ["a", "b"])
    assert db.select_correct("Giza", ["Giza"])  # unparsable answer text is one string
    assert not db.select_correct('["x"]', ["y"])


def _table():
    return SQLiteDB("t", ["name", "n"], [["a", "5"], ["b", "17"], ["c", "abc"]], statement_timeout=0.5)


def test_mysql_dialect():
    t = _table()
    assert t.execute("SELECT name FROM t WHERE n < 10") == "[('a',), ('c',)]"  # numeric compare, 'abc' is 0
    assert t.execute("SELECT name FROM t WHERE name = 'A'") == "[('a',)]"  # case-insensitive collation
    assert t.execute("SELECT 'it\\'s'") == '[("it\'s",)]'
    assert t.execute("SELECT SUM(n) FROM t") == "[(22.0,)]"
    assert t.execute("SELECT x FROM t").startswith("1054 (42S22): Unknown column 'x'")
    assert t.execute("SELECT * FROM 't'").startswith("1064 (42000)")
    assert t.execute("UPDATE t SET n = 6 WHERE name = 'a'") == "[]"
    assert t.execute("SELECT n FROM t WHERE name = 'a'") == "[('6',)]"
    assert t.execute("SELECT CONCAT(name, '-', n), LEFT(name, 1), IF(n > 10, 'big', 'small') FROM t LIMIT 2") == \
        "[('a-6', 'a', 'small'), ('b-17', 'b', 'big')]"
    assert t.execute("SELECT a.name FROM t a LEFT JOIN t b ON a.name = b.name WHERE b.n = 17") == "[('b',)]"


def test_sql_sandbox(tmp_path):
    t = _table()
    target = tmp_path / "x.db"
    for sql in [f"ATTACH DATABASE '{target}' AS x", f"VACUUM INTO '{target}'", "SELECT load_extension('x')",
                "PRAGMA writable_schema = 1", "SELECT readfile('/etc/passwd')"]:
        out = t.execute(sql)
        assert out.startswith(("1142", "1105", "1064")), (sql, out)
    assert not target.exists()
    out = t.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
    assert out.startswith("3024"), out  # the statement time limit
    assert t.execute("SELECT count(*) FROM t") == "[(3,)]"  # and the database still works


def test_actions_and_outcomes():
    task = _items()[20]  # an INSERT item
    env = db.DBEnv()
    env.reset(task)
    r = env.step("I think so.")
    assert r.done and r.invalid and r.reward == 0.0
    env.reset(task)
    r = env.step("Action: Operation\n```sql\nSELECT COUNT(*) FROM `School Location Table`\n```")
    assert not r.done and r.observation == "[(28,)]"
    r = env.step("Action: Answer\nFinal Answer: []")
    assert r.done and r.reward == 0.0  # the table was not changed
    env.close()
