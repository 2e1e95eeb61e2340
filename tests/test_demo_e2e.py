"""`make demo` at reduced size: the toy world's data, the toy_2m model trained at eta = 0 and eta = 0.2, each served
by agentlm.infer.serve and played through agentlm.eval.agent, and the before/after table. The assertion is about
acting in the environments (a held-in family's success rate through the server), not about a loss: a template,
stop-token or action-parsing mismatch between training and serving fails it.

Reduced against the demo: three of the six families; training is the demo's own (fewer steps do not learn the
action formats, and then the test could not tell a broken path from an undertrained model). The demo's measured
scores are low (docs/toy_experiment.md: 5-10% per held-in family), so the test asserts what they robustly show:
fewer invalid actions, a held-in family above the untuned model's score (0), and the model's SQL running in the
environment. ~40 minutes on 2 busy cores, hence marked `experiment`: `make test-experiment` runs it; CI leaves it out.
"""
import io
import json
import pathlib

import pytest

from agentlm.configfile import load_config_file
from launch import sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]
HELD_IN = ("db_count", "os_count")


@pytest.mark.experiment
def test_tuned_model_beats_untuned_on_a_held_in_family_through_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # the stages run as a user's would
    c = load_config_file(ROOT / "configs/sweep/demo.py")
    c.out_dir = str(tmp_path / "demo")
    c.data.out_dir = "{out_dir}/data"
    c.eval.agent.suites = {k: v for k, v in c.eval.agent.suites.items() if k in (*HELD_IN, "db_tally")}

    log = io.StringIO()
    results = sweep.Sweep(c, out=log).run()
    by_eta = {r["eta"]: r for r in results}
    untuned, tuned = by_eta[0.0], by_eta[0.2]
    for r in results:  # every family was played through the server, every score came back
        assert set(r["tasks"]) == {*HELD_IN, "db_tally", "word_games"}
        model = next(a for a in r["commands"]["agent_db_count"] if a.startswith("--config.model="))
        assert model.startswith("--config.model=http://127.0.0.1:")
    # the tuned model acts: fewer invalid actions, and it scores on a held-in family where the untuned one cannot
    assert tuned["invalid_action_rate"] < untuned["invalid_action_rate"], (tuned, untuned)
    gains = {f: tuned["tasks"][f] - untuned["tasks"][f] for f in HELD_IN}
    assert max(gains.values()) > 0.0, (gains, log.getvalue()[-3000:])

    # the episodes behind the score: the tuned model's own SQL ran in the DB environment (a result, not an error)
    episodes = tmp_path / "demo" / "eta_0.2" / "eval" / "db_count" / "agent" / "db" / "episodes.jsonl"
    rows = [json.loads(line) for line in episodes.read_text().splitlines()]
    assert len(rows) == 20
    ran = [r for r in rows if len(r["conversations"]) > 4 and r["conversations"][4]["value"].startswith("[(")]
    assert len(ran) >= 10, [r["conversations"][3:5] for r in rows[:3]]

    table = (tmp_path / "demo" / "before_after.md").read_text()
    assert "untuned (eta = 0)" in table and "tuned (eta = 0.2)" in table
    assert (tmp_path / "demo" / "eta_0.2" / "run" / "before_after.md").read_text() == table
