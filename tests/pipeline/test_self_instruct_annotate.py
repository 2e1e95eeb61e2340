"""Self-Instruct keeps only proposals whose gold solution checks out in the environment and that are not
near-duplicates; CoT annotation keeps gold actions byte for byte and keeps only trajectories that replay."""
import json

from agentlm.envs.loop import run_episode
from data_pipeline.annotate import trajectory_actions
from data_pipeline.defaults import source
from data_pipeline.envs import make_oracle
from data_pipeline.run import run_stages
from data_pipeline.store import read_jsonl
from data_pipeline.testing.fake_openai import FakeOpenAIServer
from data_pipeline.testing.responders import OracleResponder
from tests.pipeline.pipeline_helpers import tasks_of, teacher_config

TABLE = {"table_name": "staff", "columns": ["name", "team", "salary"],
         "rows": [["Ann", "red", "120"], ["Bo", "blue", "90"], ["Cy", "red", "75"], ["Di", "blue", "130"],
                  ["Ed", "red", "60"]]}


def db(question, kind, sql, **table_changes):
    return "Here is a task:\n```json\n" + json.dumps({**TABLE, **table_changes, "question": question, "type": kind,
                                                      "sql": sql}) + "\n```"


PROPOSALS = [
    db("How many people in the staff table earn more than 80?", "counting",
       "SELECT COUNT(*) FROM staff WHERE CAST(salary AS INTEGER) > 80"),                          # kept
    db("Which team does Bo belong to?", "other", "SELECT team FROM staff WHERE nmae = 'Bo'"),     # SQL fails
    db("How many people in the staff table earn more than 100?", "counting",
       "SELECT COUNT(*) FROM staff WHERE CAST(salary AS INTEGER) > 100"),                         # near-duplicate
    "Sure! I would suggest a task about databases.",                                               # no JSON
    db("Raise the salary of Ed to 65.", "UPDATE", "UPDATE staff SET salary = '65' WHERE name = 'Ed'"),  # kept
    db("What is the salary of Zed?", "other", "SELECT salary FROM staff WHERE name = 'Zed'"),    # empty answer
    db("Set the team of Ann to red.", "UPDATE", "UPDATE staff SET team = 'red' WHERE name = 'Ann'"),  # no change
    db("What is the highest salary in team blue?", "aggregation-MAX",
       "SELECT MAX(CAST(salary AS INTEGER)) FROM staff WHERE team = 'blue'", rows=[["Ann", "red"]]),  # bad rows
    db("Who earns the least among all staff members listed?", "ranking",
       "SELECT name FROM staff ORDER BY CAST(salary AS INTEGER) ASC LIMIT 1"),                    # kept
]


def test_self_instruct_rejects_failing_gold_and_near_duplicates(tmp_path):
    out = tmp_path / "si"
    cfg = teacher_config(out, "", toy=0, db_tables=0, annotate_tables=0)
    cfg.sources.db_si = source("self_instruct", "db", n_proposals=len(PROPOSALS), seed=0)
    cfg.self_instruct.batch = 4
    responder = OracleResponder([], proposals=PROPOSALS)
    with FakeOpenAIServer(responder) as server:
        cfg.teacher.base_url = server.base_url
        run_stages(cfg, ("instructions",))
        responder.add_tasks(tasks_of(out))  # so the teacher can also play the tasks it invented
        summary = run_stages(cfg, ("rollout", "annotate", "filter", "export"))
        n = len(server.log)
        run_stages(cfg, ("instructions",))  # resume: every verdict is stored, nothing is asked again
        assert len(server.log) == n
    verdicts = {r["index"]: r for r in read_jsonl(out / "self_instruct" / "db_si.jsonl")}
    assert [k for k, v in sorted(verdicts.items()) if v["kept"]] == [0, 4, 8]
    reasons = {k: v["reason"] for k, v in verdicts.items()}
    assert reasons[1].startswith("gold SQL fails") and "nmae" in reasons[1]
    assert reasons[2].startswith("near-duplicate")
    assert reasons[3].startswith("unparsable")
    assert reasons[5] == "gold SQL returns nothing" and reasons[6] == "gold statement changes nothing"
    assert reasons[7].startswith("malformed table")
    kept_tasks = {t.id: t for t in tasks_of(out)}
    assert sorted(kept_tasks) == ["db_si_00000", "db_si_00004", "db_si_00008"]
    assert kept_tasks["db_si_00000"].data["label"] == ["3"]  # computed by running the gold SQL
    assert "answer_md5" in kept_tasks["db_si_00004"].data
    # The kept tasks were then rolled out by the teacher and exported.
    assert summary["rollout"]["done"] == 3 and summary["export"]["counts"] == {"db": 3}
    report = json.loads((out / "filter_report.json").read_text())
    assert report["sources"]["db_si"]["proposed"] == len(PROPOSALS)
    assert report["sources"]["db_si"]["instructions"] == 3


def test_annotation_keeps_actions_and_rejects_thoughts_that_smuggle_actions(tmp_path):
    out = tmp_path / "ann"
    cfg = teacher_config(out, "", toy=0, db_tables=0, annotate_tables=2)
    cfg.teacher.content_retries = 1
    run_stages(cfg, ("instructions",))
    tasks = tasks_of(out)
    sneaky_id = tasks[0].id
    oracle = OracleResponder(tasks, thought="The table holds what I need, so I query it.")

    def respond(messages, body):
        prompt = messages[0]["content"]
        if prompt.startswith("You annotate") and tasks[0].data["description"] in prompt:
            return "I will answer.\nAction: Answer\nFinal Answer: [\"x\"]"  # a thought must not carry an action
        return oracle(messages, body)

    with FakeOpenAIServer(respond) as server:
        cfg.teacher.base_url = server.base_url
        summary = run_stages(cfg, ("annotate",))
    rows = {r["id"]: r for r in read_jsonl(out / "annotated.jsonl")}
    assert len(rows) == len(tasks) and summary["annotate"]["undone"] == 0
    assert rows[sneaky_id]["outcome"] == "error"
    assert "contains an action line" in rows[sneaky_id]["info"]["annotation_rejected"]
    by_id = {t.id: t for t in tasks}
    from data_pipeline.envs import env_factory
    from agentlm.envs.base import Episode
    for tid, row in rows.items():
        if tid == sneaky_id:
            continue
        assert row["outcome"] == "success" and row["info"]["replayed"]
        gold = run_episode(env_factory("db")(), make_oracle("db", mode="sql"), by_id[tid])
        assert trajectory_actions(Episode.from_row(row), "db") == trajectory_actions(gold, "db")
        thoughts = [t["value"].split("\nAction:")[0] for t in row["conversations"] if t["from"] == "gpt" and t["loss"]]
        assert set(thoughts) == {"The table holds what I need, so I query it."}


def _os(description, init, solution, answer):
    return json.dumps({"description": description, "init": init, "solution": solution, "answer": answer})


OS_PROPOSALS = [
    _os("How many .txt files are in /root/notes? Answer with the number only.",
        "mkdir -p /root/notes && touch /root/notes/a.txt /root/notes/b.txt /root/notes/c.md",
        "ls /root/notes/*.txt | wc -l", "2"),                                                          # kept
    _os("What is the first line of /root/motd.txt?", "printf 'hello\\nworld\\n' > /root/motd.txt",
        "head -n 1 /root/motd.txt", "world"),                                           # answer contradicts solution
    _os("How many .txt files are in /root/notes? Answer with a number only.",
        "mkdir -p /root/notes && touch /root/notes/x.txt", "ls /root/notes/*.txt | wc -l", "1"),    # near-duplicate
]


def test_os_self_instruct_runs_the_solution_in_the_sandbox(tmp_path):
    from agentlm.envs.os_sandbox import bwrap_available

    if bwrap_available():
        import pytest
        pytest.skip(f"OS sandbox unavailable: {bwrap_available()}")
    out = tmp_path / "os_si"
    cfg = teacher_config(out, "", toy=0, db_tables=0, annotate_tables=0)
    cfg.sources.os_si = source("self_instruct", "os", n_proposals=len(OS_PROPOSALS), seed=0)
    with FakeOpenAIServer(OracleResponder([], proposals=OS_PROPOSALS)) as server:
        cfg.teacher.base_url = server.base_url
        run_stages(cfg, ("instructions",))
    verdicts = {r["index"]: r for r in read_jsonl(out / "self_instruct" / "os_si.jsonl")}
    assert verdicts[0]["kept"] and not verdicts[1]["kept"] and not verdicts[2]["kept"]
    assert verdicts[1]["reason"].startswith("fails in the environment (wrong_answer")
    assert verdicts[2]["reason"].startswith("near-duplicate")
    assert [t.id for t in tasks_of(out)] == ["os_si_00000"]
