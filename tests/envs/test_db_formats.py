"""DB items as AgentBench's full test set has them: ragged and empty table rows, identifiers that start with a
digit, columns that differ only in letter case, and item ids named after the file.

Every item here is synthetic, built to have exactly one of those traits. Before this change the ragged items
stopped `load_tasks` with DBItemError, the digit-leading identifier failed on SQLite with "unrecognized token",
the case-duplicate table crashed the episode, and every file's ids came out as db_dev_<n>.
"""
import json

import pytest

from agentlm.envs import db
from agentlm.envs.base import Outcome
from agentlm.envs.db_sqlite import mysql_table_hash
from agentlm.envs.loop import run_tasks
from agentlm.envs.run import main as run_main
from tests.envs.mariadb_server import running_mariadb


def _item(name="scores", columns=("Name", "Score"), rows=(("ann", "3"), ("bob", "5")), kind="counting",
          query=None, label=None, **extra):
    item = {"description": f"How many rows does {name} have?", "add_description": "",
            "table": {"table_name": name, "table_info": {"columns": [{"name": c} for c in columns],
                                                        "rows": [list(r) for r in rows]}},
            "type": [kind], "label": label if label is not None else [str(len(rows))],
            "sql": {"query": query or f"SELECT COUNT(*) FROM `{name}`"}}
    item.update(extra)
    return item


def _write(path, items):
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


RAGGED = _item(rows=(("ann", "3"), ("bob",)), label=["0"])
EMPTY_ROW = _item(rows=(("ann", "3"), ()), label=["0"])
CASE_DUP = _item(columns=("Name", "Score", "score"), rows=(("ann", "3", "4"),))
DIGIT = _item(name="1952_British_Grand_Prix_0", columns=("Driver", "Laps"),
              rows=(("Ascari", "85"), ("Farina", "84")), kind="other",
              query="SELECT Driver FROM 1952_British_Grand_Prix_0 WHERE Laps > 84", label=["Ascari"])


def test_ragged_and_empty_rows_load_and_play_on_an_empty_table(tmp_path):
    tasks = db.load_tasks(_write(tmp_path / "standard.jsonl", [RAGGED, EMPTY_ROW, _item()]))
    assert [t.id for t in tasks] == ["db_standard_0", "db_standard_1", "db_standard_2"]
    assert db.table_problem(RAGGED)[0] == "short_row" and db.table_problem(EMPTY_ROW)[0] == "empty_row"
    assert "row 1 has 0 values for 2 columns" in db.table_problem(EMPTY_ROW)[1]
    with db.DBEnv() as env:
        for task in tasks[:2]:
            env.reset(task)  # the table exists (no "doesn't exist" error) and holds nothing
            assert env.step("Action: Operation\n```sql\nSELECT COUNT(*) FROM scores\n```").observation == "[(0,)]"
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(mode="sql"), tasks, progress=False)
    assert [e.outcome for e in eps] == [Outcome.SUCCESS] * 3  # played and scored: the count on an empty table is 0
    got = db.aggregate(eps, tasks)
    assert got["table_problems"] == {"short_row": 1, "empty_row": 1} and got["scored"] == 3


def test_strict_tables_refuses_items_whose_table_is_not_whole(tmp_path):
    tasks = db.load_tasks(_write(tmp_path / "standard.jsonl", [RAGGED, _item()]))
    eps = run_tasks(lambda: db.DBEnv(strict_tables=True), db.DBOracle(), tasks, progress=False)
    assert [e.outcome for e in eps] == [Outcome.UNSCORABLE, Outcome.SUCCESS]
    assert eps[0].info["unscorable"].startswith("strict_tables: short_row: row 1 has 1 values")


def test_modifying_item_on_an_emptied_table_is_judged_on_that_table(tmp_path):
    insert = _item(rows=(("ann", "3"), ("bob",)), kind="INSERT", label=["INSERT INTO scores VALUES ('cy', '7')"],
                   answer_md5=f"[('{mysql_table_hash([('cy', '7')])}',)]")
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(), db.load_tasks(_write(tmp_path / "t.jsonl", [insert])),
                    progress=False)
    assert eps[0].outcome == Outcome.SUCCESS and eps[0].info["table_md5"] == mysql_table_hash([("cy", "7")])


def test_digit_leading_identifiers_run_on_sqlite(tmp_path):
    (task,) = db.load_tasks(_write(tmp_path / "standard.jsonl", [DIGIT]))
    with db.DBEnv() as env:
        env.reset(task)
        obs = env.step("Action: Operation\n```sql\nSELECT Driver FROM 1952_British_Grand_Prix_0 WHERE Laps > 84\n```")
        assert obs.observation == "[('Ascari',)]"
        # numbers stay numbers next to such names: 1e1 is ten, 0x55 is 85
        obs = env.step("Action: Operation\n```sql\nSELECT COUNT(*) FROM 1952_British_Grand_Prix_0 WHERE Laps > 1e1 "
                       "AND Laps < 0x56\n```")
        assert obs.observation == "[(2,)]"
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(mode="sql"), [task], progress=False)
    assert eps[0].outcome == Outcome.SUCCESS


def test_case_duplicate_columns_are_unscorable_with_the_reason(tmp_path):
    tasks = db.load_tasks(_write(tmp_path / "standard.jsonl", [CASE_DUP, _item()]))
    eps = run_tasks(lambda: db.DBEnv(), db.DBOracle(), tasks, progress=False)
    assert [e.outcome for e in eps] == [Outcome.UNSCORABLE, Outcome.SUCCESS]
    assert "'Score' and 'score' differ only in letter case" in eps[0].info["unscorable"]
    got = db.aggregate(eps, tasks)
    assert got["unscorable"] == 1 and got["scored"] == 1 and got["table_problems"] == {"duplicate_column": 1}


def test_ids_follow_the_file_and_json_holds_one_or_many(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps(_item()))
    (tmp_path / "all.json").write_text(json.dumps([_item(), _item()]))
    assert [t.id for t in db.load_tasks(tmp_path / "test.json", "test")] == ["db_test_0"]
    assert [t.id for t in db.load_tasks(tmp_path / "all.json")] == ["db_all_0", "db_all_1"]
    bad = _item()
    bad["table"]["table_info"]["rows"][0] = "ann,3"
    with pytest.raises(db.DBItemError, match=r"bad.jsonl item 0: table row 0 is str"):
        db.load_tasks(_write(tmp_path / "bad.jsonl", [bad]))


def test_summary_json_counts_table_problems(tmp_path):
    src = _write(tmp_path / "standard.jsonl", [RAGGED, EMPTY_ROW, CASE_DUP, DIGIT, _item()])
    assert run_main(["--env", "db", "--tasks", str(src), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["scores"]["table_problems"] == {"short_row": 1, "empty_row": 1, "duplicate_column": 1}
    assert summary["unscorable"] == 1 and summary["scored"] == 4
    assert run_main(["--env", "db", "--tasks", str(src), "--out", str(tmp_path / "strict"), "--strict-tables"]) == 0
    assert json.loads((tmp_path / "strict" / "summary.json").read_text())["unscorable"] == 3


@pytest.mark.slow
def test_mariadb_agrees(tmp_path_factory):
    """MariaDB itself refuses the case-duplicate table (1060) and takes the digit-leading name unquoted; the same
    items play as on SQLite."""
    with running_mariadb(tmp_path_factory, port=33072) as (server, datadir):
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS probe")
            with pytest.raises(Exception, match="1060"):
                cur.execute("CREATE TABLE probe.t (`Name` TEXT, `Score` TEXT, `score` TEXT)")
            cur.execute("DROP DATABASE probe")
        conn.close()
        tmp = tmp_path_factory.mktemp("items")
        tasks = db.load_tasks(_write(tmp / "standard.jsonl", [RAGGED, EMPTY_ROW, CASE_DUP, DIGIT, _item()]))
        opts = {"datadir": datadir, "port": 33072}
        eps = run_tasks(lambda: db.DBEnv(backend="mariadb", backend_options=opts), db.DBOracle(mode="sql"), tasks,
                        progress=False)
        assert [e.outcome for e in eps] == [Outcome.SUCCESS, Outcome.SUCCESS, Outcome.UNSCORABLE, Outcome.SUCCESS,
                                            Outcome.SUCCESS], [(e.task_id, e.info) for e in eps]
