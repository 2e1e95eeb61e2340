"""The ratio sweep. Fast tests drive the real sweep code with stand-in stages (tests/launch/sweep_stub.py);
the slow test runs a 2-point sweep with the real trainer and agent evaluation on the tiny config."""
import csv
import json
import pathlib
import sys

import pytest

from agentlm.configfile import load_config_file
from launch import sweep

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ratio_config():
    return load_config_file(ROOT / "configs/sweep/ratio.py")


@pytest.fixture
def stub_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_STUB_LOG", str(tmp_path / "calls.jsonl"))
    c = ratio_config()
    c.etas, c.seeds = (0.0, 0.2, 1.0), (0,)
    c.out_dir = str(tmp_path / "sweep")
    c.data.steps = []
    c.train.overrides = ["--config.train.steps=50"]
    c.eval.agent.suites = {}  # one agent eval per run over registered tasks (the paper mode)
    c.eval.agent.serve.enabled = False  # the stub "model" is the run directory
    c.eval.builtin_general.enabled = False
    c.train.module = c.eval.agent.module = c.eval.general.module = "tests.launch.sweep_stub"
    c.eval.general.enabled = True
    return c


def sweep_run_config(path):
    return load_config_file(path)


def calls(tmp_path):
    path = tmp_path / "calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_sweep_runs_every_eta_then_skips_them(stub_config, tmp_path):
    results = sweep.Sweep(stub_config).run()
    assert [r["eta"] for r in results] == [0.0, 0.2, 1.0]
    made = calls(tmp_path)
    assert len(made) == 9  # train + agent eval + general eval per eta
    train0 = made[0]
    assert "--config.data.mixture.eta=0.0" in train0 and f"--config.run_dir={tmp_path}/sweep/eta_0/run" in train0
    assert "--config.train.steps=50" in train0  # the config's overrides reach the trainer
    # eta = 0 (general data only) is the base model; the other etas fine-tune it, as AgentTuning fine-tunes a chat model
    assert not any(a.startswith("--config.init_from") for a in train0)
    for train in (made[3], made[6]):
        assert f"--config.init_from={tmp_path}/sweep/eta_0/run" in train
    # ... and its settings reach the run's config file, placeholders filled, lists intact
    run_config = sweep_run_config(train0[train0.index("--config") + 1])
    assert run_config.data.source == "mixture" and run_config.model.preset == "toy_1m"
    assert list(run_config.data.mixture.agent_paths) == [f"{tmp_path}/sweep/data/agent/export/agentinstruct"]
    by_eta = {r["eta"]: r for r in results}
    assert by_eta[0.2]["held_out"] == pytest.approx(10 / 14.9)  # read back from the eval summaries
    assert by_eta[1.0]["held_in"] == pytest.approx(30 / 12.5)
    assert by_eta[1.0]["general"] == pytest.approx(40 / 58.1)  # MMLU 40 over the paper's normaliser
    assert by_eta[0.0]["train_loss"] == 2.0 and by_eta[0.0]["eval_loss"] == 2.5
    assert by_eta[0.0]["invalid_action_rate"] == pytest.approx(0.25)
    out = tmp_path / "sweep"
    for eta in ("0", "0.2", "1"):
        assert json.loads((out / f"eta_{eta}" / "done.json").read_text())["tag"] == f"eta_{eta}"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [float(r["eta"]) for r in rows] == [0.0, 0.2, 1.0] and float(rows[1]["sciworld"]) == 10.0
    md = (out / "results.md").read_text()
    assert "| eta | seeds | held_in | held_out | general |" in md and "| 0.2 | 1 |" in md
    assert "| eta | seed | held_in |" in (out / "results_runs.md").read_text()
    assert (out / "results.png").stat().st_size > 10_000

    again = sweep.Sweep(stub_config).run()  # a rerun: every eta is finished, nothing runs
    assert len(calls(tmp_path)) == 9
    assert [r["held_in"] for r in again] == [r["held_in"] for r in results]


def test_failed_stage_leaves_no_marker_and_rerun_finishes(stub_config, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_STUB_FAIL", "eta_1/eval")  # the agent eval of eta=1 fails
    stub_config.eval.general.enabled = False
    with pytest.raises(sweep.StageError, match="eval agent failed .exit 3."):
        sweep.Sweep(stub_config).run()
    out = tmp_path / "sweep"
    assert (out / "eta_0.2" / "done.json").exists() and not (out / "eta_1" / "done.json").exists()
    assert "failing on purpose" in (out / "eta_1" / "eval_agent.log").read_text()
    monkeypatch.delenv("SWEEP_STUB_FAIL")
    n = len(calls(tmp_path))
    sweep.Sweep(stub_config).run()
    assert len(calls(tmp_path)) == n + 2  # only eta=1 reruns (train resumes, eval)


def test_seeds_suites_and_before_after(stub_config, tmp_path):
    """Several seeds: one run each, a mean ± std table; suites: one agent eval per task family, held-in and
    held-out as the mean of their families; the before/after table next to the tuned runs' checkpoints."""
    stub_config.etas, stub_config.seeds, stub_config.before_after = (0.0, 0.2), (0, 1), (0.0, 0.2)
    stub_config.eval.general.enabled = False
    stub_config.eval.agent.suites = {"fam_a": dict(task="db", group="held_in", items="{data_dir}/a.jsonl"),
                                     "fam_b": dict(task="os", group="held_in", items="{data_dir}/b.jsonl"),
                                     "fam_c": dict(task="db", group="held_out", items="{data_dir}/c.jsonl")}
    results = sweep.Sweep(stub_config).run()
    made = calls(tmp_path)
    assert len(made) == 4 * (1 + 3)  # (eta, seed) runs x (train + one agent eval per suite)
    trains = [c for c in made if any(a.startswith("--config.run_dir=") for a in c)]
    assert {a for c in trains for a in c if a.startswith("--config.seed=")} == {"--config.seed=0", "--config.seed=1"}
    suite_b = next(c for c in made if "--config.out=" + f"{tmp_path}/sweep/eta_0.2_seed_1/eval/fam_b" in c)
    assert "--config.tasks=os" in suite_b and f"--config.os.data_file={tmp_path}/sweep/data/b.jsonl" in suite_b
    by_run = {(r["eta"], r["seed"]): r for r in results}
    r = by_run[(0.2, 1)]
    assert r["held_in"] == pytest.approx(20 + 12 + 1) and r["held_out"] == pytest.approx(33)
    assert r["tasks"] == {"fam_a": pytest.approx(33), "fam_b": pytest.approx(33), "fam_c": pytest.approx(33)}
    assert r["units"] == "percent" and r["invalid_action_rate"] == pytest.approx(0.8)
    out = tmp_path / "sweep"
    md = (out / "results.md").read_text()
    assert "| 0.2 | 2 | 32.5 ± 0.7 | 32.5 ± 0.7 | - |" in md  # mean ± sample std over the two seeds
    table = (out / "before_after.md").read_text()
    assert "| held_in | 20.5 ± 0.7 | 32.5 ± 0.7 |" in table
    for seed in (0, 1):
        assert (out / f"eta_0.2_seed_{seed}" / "run" / "before_after.md").read_text() == table


@pytest.mark.parametrize("field, value, message", [
    ("seeds", (), "at least one"), ("seeds", (1, 1), "distinct"), ("before_after", (0.0, 0.7), "two of config.etas"),
    ("etas", (0.2, 1.0), "init_from_eta=0.0: not one of config.etas"),
])
def test_bad_seed_and_before_after_are_refused(stub_config, field, value, message):
    stub_config[field] = value
    with pytest.raises(ValueError, match=message):
        sweep.Sweep(stub_config)


def test_tpu_mode_writes_one_launch_per_eta(stub_config, tmp_path):
    stub_config.mode = "tpu"
    stub_config.run_dir_template = "gs://bucket/sweep/{tag}"
    stub_config.tpu.update(dict(tpu="sw", zone="us-east5-a", type="v5p-128"))
    with pytest.raises(ValueError, match="mode=tpu starts every run at once"):  # the base run would not exist yet
        sweep.Sweep(stub_config)
    stub_config.train.init_from_eta = None
    with pytest.raises(ValueError, match="settings cannot travel"):
        sweep.Sweep(stub_config).run()
    stub_config.train.settings = {}
    sweep.Sweep(stub_config).run()
    jobs = (tmp_path / "sweep" / "tpu_jobs.sh").read_text().splitlines()[3:]
    assert len(jobs) == 3 and not calls(tmp_path)
    assert "-m launch.tpu --tpu sw-eta0p2 --zone us-east5-a --type v5p-128" in jobs[1]
    assert "-- --config.data.mixture.eta=0.2 --config.run_dir=gs://bucket/sweep/eta_0.2" in jobs[1]


@pytest.mark.parametrize("field, value, message", [
    ("etas", (0.2, 1.5), "outside"), ("etas", (), "empty"), ("etas", (0.2, 0.2), "repeated"),
    ("mode", "cloud", "must be 'local' or 'tpu'"),
])
def test_bad_config_is_refused(stub_config, field, value, message):
    stub_config[field] = value
    with pytest.raises(ValueError, match=message):
        sweep.Sweep(stub_config)


@pytest.mark.slow
def test_real_two_point_sweep_then_rerun_skips(tmp_path, monkeypatch):
    """The embedded default shrunk to 2 etas, one seed and a few steps: the real pipeline, trainer (mixture source),
    server, per-family agent evaluation and word-game eval, end to end (minutes on 2 cores); the rerun runs
    nothing. Whether the model learns is tests/test_demo_e2e.py's question, not this one's."""
    import io

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # the stages run as a user's would

    c = ratio_config()
    c.out_dir = str(tmp_path / "sweep")
    c.etas, c.seeds = (0.2, 1.0), (0,)
    c.train.init_from_eta = None  # both from scratch (tests/test_demo_e2e.py runs the base-then-tune chain)
    c.data.steps[0] += " --config.sources.toy_db.n=6 --config.sources.toy_os.n=4"
    c.data.steps[1] = c.data.steps[1].replace("--n 20", "--n 2")
    c.train.overrides = ["--config.train.steps=12", "--config.optimizer.warmup_steps=2", "--config.checkpoint.every=12",
                         "--config.data.global_batch_size=4"]
    first = sweep.Sweep(c, out=io.StringIO()).run()
    assert [r["eta"] for r in first] == [0.2, 1.0]
    for r in first:
        assert r["held_in"] is not None and r["held_out"] is not None and r["general"] is not None
        assert r["train_loss"] is not None
        assert set(r["tasks"]) == set(c.eval.agent.suites) | {"word_games"}
        assert r["commands"]["serve"][2] == "agentlm.infer.serve"
        model = next(a for a in r["commands"]["agent_db_count"] if a.startswith("--config.model="))
        assert model.startswith("--config.model=http://127.0.0.1:")  # evaluated through the server
    log = io.StringIO()
    again = sweep.Sweep(c, out=log).run()
    assert log.getvalue().count("finished earlier, skipping") == 2 and " train: " not in log.getvalue()
    assert [r["finished"] for r in again] == [r["finished"] for r in first]
    assert (tmp_path / "sweep" / "results.png").exists()
