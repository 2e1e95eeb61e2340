"""The pipeline and the evaluation harness on tool domains: a function-calling teacher over real HTTP (with faults)
produces trajectories that pass filtering and export and load in the tfds builder; a toy domain declared below
(tools + checker, tasks from a file) goes through the whole offline pipeline; agentlm.eval.agent scores both
worked domains on their held-out templates."""
import json

from agentlm.configfile import load_config_file
from agentlm.envs.tools import Domain, FunctionCallingOracle, Verdict, load_tasks
from agentlm.envs import registry
from data_pipeline.domains import domain_source
from agentlm.envs.tools.text_protocol import parse_reply
from data_pipeline.defaults import base_config
from data_pipeline.export import to_agentinstruct
from data_pipeline.run import run_stages
from data_pipeline.testing.fake_openai import FakeOpenAIServer
from tests.conftest import ROOT


# -- a toy domain: tools and a checker, nothing else ----------------------------------------------------------------
def add_item(world, name: str, qty: int) -> str:
    """Puts items in the basket.

    Args:
        name: what to add
        qty: how many
    """
    if qty <= 0:
        raise ValueError("qty must be positive")
    world[name] = world.get(name, 0) + qty
    return f"basket: {world}"


def check_basket(world, answer, data):
    return Verdict(world == data["want"], None, f"basket {world}")


TOY = Domain("toy_shop", "You fill a shopping basket.", [add_item], check=check_basket)


def _load(tmp_path):
    from agentlm.data import builders

    def load(out):
        builder, report = builders.prepare("agent", [out / "export" / "agentinstruct"], tmp_path / "tfds",
                                           strict=True, verbose=False)
        manifest = json.loads((out / "export" / "manifest.json").read_text())
        assert sum(report.skipped.values()) == 0 and dict(report.kept) == manifest["counts"]
        return {s: sum(1 for _ in builder.as_dataset(split=s)) for s in manifest["counts"]}
    return load


def _config(out, **sources):
    c = base_config("domains_test")
    c.out_dir, c.progress, c.fsync = str(out), False, False
    for name, src in sources.items():
        c.sources[name] = src
    return c


def test_toy_domain_through_the_whole_pipeline(tmp_path):
    tasks = tmp_path / "toy.jsonl"
    rows = [{"goal": f"Order #{i}: put {i + 1} apples and {i + 2} pears in the basket.",
             "want": {"apple": i + 1, "pear": i + 2},
             "solution": [{"tool": "add_item", "args": {"name": "apple", "qty": i + 1}},
                          {"tool": "add_item", "args": {"name": "pear", "qty": i + 2}},
                          {"answer": "done", "thought": "Both are in."}]} for i in range(5)]
    rows[4]["solution"][1]["args"]["qty"] = 99  # a wrong gold plan: the filter must drop its trajectory
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ref = "tests.domains.test_pipeline_and_eval:TOY"
    out = tmp_path / "run"
    toy = domain_source(ref, tasks=str(tasks))  # registers the domain as the environment "toy_shop"
    assert len(registry.get("toy_shop").tasks(str(tasks), "train")) == 5
    summary = run_stages(_config(out, toy=toy))
    assert summary["rollout"]["done"] == 5 and summary["filter"]["total"]["kept"] == 4
    report = json.loads((out / "filter_report.json").read_text())
    assert report["sources"]["toy"]["rejected"] == {"below_threshold": 1}
    exported = [json.loads(x) for x in (out / "export" / "agentinstruct" / "toy_shop.jsonl").read_text().splitlines()]
    assert len(exported) == 4 and all(to_agentinstruct(r) == r for r in exported)
    assert "add_item(name: string, qty: integer)" in exported[0]["conversations"][0]["value"]
    assert _load(tmp_path)(out) == {"toy_shop": 4}


def test_function_calling_teacher_over_http(tmp_path):
    out = tmp_path / "run"
    cfg = _config(out, triage=domain_source("triage", n=8, teacher_protocol="function_calling"),
                  back_office=domain_source("back_office", n=8, teacher_protocol="function_calling"),
                  triage_text=domain_source("triage", n=4, seed=5))  # the text protocol, same pipeline
    run_stages(cfg, ("instructions",))
    from tests.pipeline.pipeline_helpers import tasks_of
    tasks = tasks_of(out)
    fc = FunctionCallingOracle(tasks)
    from data_pipeline.testing.responders import OracleResponder
    text = OracleResponder(tasks)

    def respond(messages, body):  # function calling when the request carries tools=, text otherwise
        return fc(messages, body) if body.get("tools") else text(messages, body)

    cfg.teacher.update(kind="openai", model="fake-teacher", api_key="x", concurrency=3, timeout_s=1.0,
                       backoff_base_s=0.01, backoff_max_s=0.1, max_retries=8)
    with FakeOpenAIServer(respond, faults=["429", "500", "drop", "bad_json", "timeout", "empty"], stall_s=1.3) as srv:
        cfg.teacher.base_url = srv.base_url
        summary = run_stages(cfg, ("rollout", "filter", "export"))
        assert set(srv.faults_served()) == {"429", "500", "drop", "bad_json", "timeout", "empty"}
    assert summary["rollout"]["done"] == 20 and summary["rollout"]["undone"] == 0
    assert summary["filter"]["total"]["kept"] == 20
    assert {r["tool"] for r in fc.requests} >= {"read_protocol", "assign_triage", "create_employee"}
    assert all("assign_triage" in r["tools"] or "create_employee" in r["tools"] for r in fc.requests)
    rows = [json.loads(x) for x in (out / "filtered.jsonl").read_text().splitlines()]
    for r in rows:  # recorded in the text action format, whichever protocol the teacher spoke
        for t in r["conversations"]:
            if t["from"] == "gpt" and t["loss"]:
                assert parse_reply(t["value"]).__class__.__name__ in ("ToolCall", "FinalAnswer")
    assert _load(tmp_path)(out) == {"back_office": 8, "triage": 12}


def test_eval_harness_scores_held_out_templates(tmp_path):
    from agentlm.eval import agent, report

    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.update(model="oracle", tasks="back_office,triage", out=str(tmp_path / "run"), workers=2)
    config.back_office.limit = config.triage.limit = 12
    summary = agent.run(config)
    for name, templates in (("back_office", {"offboard_lead", "onboard_into_team", "top_pending"}),
                            ("triage", {"unseen_complaint", "retriage"})):
        s = summary["tasks"][name]
        assert s["score"] == 100.0 and s["n"] == 12 and set(s["per_template"]) == templates
    assert summary["overall"]["held_in"]["overall"] is None  # not paper tasks: in no overall
    paths = report.write_model_report(config.out)
    assert "back_office (back_office)" in open(paths["markdown"]).read()
    held_out = {t.data["template"] for t in load_tasks("triage", config.triage.data_file)}
    train = {t.data["template"] for t in load_tasks("triage", "builtin:train")}
    assert held_out.isdisjoint(train)
