"""`make demo` end to end: the toy world's data, the toy_1m base model trained on general data only (eta = 0: the
untuned chat model), the same model agent-tuned on the eta = 0.2 mixture, each served by agentlm.infer.serve and
played through agentlm.eval.agent, and the before/after table. The assertions are about acting in the
environments through the server, not about a loss: a template, stop-token or action-parsing mismatch between
training and serving fails them.

Two sizes:
- `slow` (CI): the DB families only, fewer trajectories, steps (150 + 150) and evaluation items (its time is in
  docs/toy_experiment.md). It asserts the whole act -> observe -> answer loop on a held-in family (the tuned
  model's SQL runs in SQLite and it then answers in the environment's answer format, where the untuned model's
  replies are all invalid actions), not a success rate: reading the answer off the observation (a copy) is not
  learned at this size and budget (docs/toy_experiment.md), so success is ~0 for both models;
- `experiment` (`make test-experiment`, not in CI): the demo itself against the targets of issue 20, which it
  does not meet today (xfail, docs/toy_experiment.md has the measurement).
"""
import io
import json
import pathlib

import pytest

from agentlm.configfile import load_config_file
from launch import sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]


def demo_config(tmp_path):
    c = load_config_file(ROOT / "configs/sweep/demo.py")
    c.out_dir = str(tmp_path / "demo")
    c.data.out_dir = "{out_dir}/data"
    return c


def check_served_and_tabled(results, tmp_path, families):
    for r in results:  # every family was played through the server, every score came back
        assert set(r["tasks"]) == {*families, "word_games"}
        model = next(a for a in r["commands"][f"agent_{families[0]}"] if a.startswith("--config.model="))
        assert model.startswith("--config.model=http://127.0.0.1:")
    tuned_train = next(r for r in results if r["eta"] == 0.2)["commands"]["train"]
    assert f"--config.init_from={tmp_path}/demo/eta_0/run" in tuned_train  # tuned = the base model, agent-tuned
    table = (tmp_path / "demo" / "before_after.md").read_text()
    assert "untuned (eta = 0)" in table and "tuned (eta = 0.2)" in table
    assert (tmp_path / "demo" / "eta_0.2" / "run" / "before_after.md").read_text() == table


SLOW_FAMILIES = ("db_count", "db_first")


@pytest.mark.slow
def test_reduced_demo_tuned_model_completes_the_env_loop_the_untuned_cannot(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # the stages run as a user's would
    c = demo_config(tmp_path)
    c.data.steps[0] += " --config.sources.toy_os.enabled=False --config.sources.toy_db.n=200"
    c.data.steps[1] = c.data.steps[1].replace("--n 20", "--n 10") + f" --families {','.join(SLOW_FAMILIES)}"
    c.eval.agent.suites = {k: v for k, v in c.eval.agent.suites.items() if k in SLOW_FAMILIES}
    c.train.overrides = ["--config.train.steps=150", "--config.checkpoint.every=150"]

    log = io.StringIO()
    results = sweep.Sweep(c, out=log).run()
    check_served_and_tabled(results, tmp_path, SLOW_FAMILIES)
    untuned, tuned = ({r["eta"]: r for r in results}[e] for e in (0.0, 0.2))
    assert untuned["invalid_action_rate"] >= 0.9, untuned  # never saw the action formats
    assert tuned["invalid_action_rate"] <= 0.5, (tuned, log.getvalue()[-3000:])

    def loops(family, tag):
        """Episodes of `family` where the model's SQL ran (a result, not an error) and it then gave a parsed
        Final Answer: the environment's whole protocol, through the server."""
        path = tmp_path / "demo" / tag / "eval" / family / "agent" / "db" / "episodes.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(rows) == 10
        return sum(len(r["conversations"]) > 5 and r["conversations"][4]["value"].startswith("[(")
                   and (r.get("info") or {}).get("answer") is not None for r in rows)

    done = {f: (loops(f, "eta_0"), loops(f, "eta_0.2")) for f in SLOW_FAMILIES}
    assert all(before == 0 for before, _ in done.values()), done
    assert max(after for _, after in done.values()) >= 8, done


@pytest.mark.experiment
@pytest.mark.xfail(reason="issue 20's held-in target is not met at this size (docs/toy_experiment.md)", strict=False)
def test_demo_meets_the_issue_targets(tmp_path, monkeypatch):
    """The demo as `make demo` runs it against the held-in targets of issue 20."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    c = demo_config(tmp_path)
    log = io.StringIO()
    results = sweep.Sweep(c, out=log).run()
    families = tuple(c.eval.agent.suites)
    check_served_and_tabled(results, tmp_path, families)
    untuned, tuned = ({r["eta"]: r for r in results}[e] for e in (0.0, 0.2))
    held_in = [f for f, s in c.eval.agent.suites.items() if s["group"] == "held_in"]
    assert all(untuned["tasks"][f] <= 5.0 for f in held_in), untuned["tasks"]
    assert sum(tuned["tasks"][f] >= 50.0 for f in held_in) >= 2, (tuned["tasks"], log.getvalue()[-3000:])
