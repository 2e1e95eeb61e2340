"""miniwob_vision: the pixel action language, and (with headless Chromium) the scripted solver succeeding on every
task from screenshots, exported through data_pipeline as image rows that agentlm.data validates."""
import json

import numpy as np
import pytest

from agentlm.envs import miniwob_vision as mv
from agentlm.envs import registry


def test_parse_action():
    assert mv.parse_action("Think: the box.\nAct: click 12, 40") == ("click", (12.0, 40.0))
    assert mv.parse_action('Act: type "a \\"b\\""') == ("type", 'a "b"')
    assert mv.parse_action('Act: press "Enter"') == ("press", "Enter")
    for bad in ("Act: click [5]", "Act: click 3", 'Act: type hello', "no action"):
        assert mv.parse_action(bad) is None, bad


def test_registered_once_with_builtin_tasks():
    spec = registry.get("miniwob_vision")
    assert spec.env is mv.MiniWoBVisionEnv and spec.group == "held_out"
    tasks = spec.tasks("builtin:2:1000")
    assert len(tasks) == 2 * len(mv.VISION_TASKS) and {t.data["seed"] for t in tasks} == {1000, 1001}


def _browser():
    problem = registry.get("miniwob_vision").problem()
    if problem:
        pytest.skip(problem)


@pytest.mark.slow
def test_scripted_solver_succeeds_from_screenshots(tmp_path):
    """Every builtin task, one seed: success rate 100%, observations are text + a hash-checked 80x104 screenshot."""
    from agentlm.data.images import decode, sha256
    from agentlm.envs.loop import run_episode

    _browser()
    spec = registry.get("miniwob_vision")
    env, solver = spec.make_env(image_dir=str(tmp_path / "screens")), spec.make_oracle()
    tasks = spec.tasks("builtin:1")
    try:
        episodes = [run_episode(env, solver, t) for t in tasks]
    finally:
        env.close()
    assert spec.score(episodes, tasks)["score"] == 100.0, [(e.task_id, e.outcome, e.info) for e in episodes]
    human = [m for e in episodes for m in e.conversation if m["from"] == "human" and isinstance(m["value"], list)]
    assert len(human) >= len(tasks)
    for m in human:
        text, image = m["value"]
        assert text["type"] == "text" and "Task:" in text["text"]
        data = open(image["path"], "rb").read()
        assert sha256(data) == image["sha256"] and decode(data).shape == (104, 80, 3)
    assert not np.all(decode(open(human[0]["value"][1]["path"], "rb").read()) == 255)


@pytest.mark.slow
def test_pipeline_exports_image_rows_that_validate(tmp_path, monkeypatch):
    from agentlm.data.images import IMAGE_SENTINEL
    from agentlm.data.validate import ValidationReport, validated_rows
    from data_pipeline.config import apply_overrides, load_config_file
    from data_pipeline.run import run_stages
    from tests.conftest import ROOT

    _browser()
    monkeypatch.setenv("AGENTLM_CACHE", str(tmp_path / "cache"))
    cfg = load_config_file(ROOT / "configs" / "pipeline" / "miniwob_vision.py")
    apply_overrides(cfg, [f"out_dir={tmp_path / 'run'}", "progress=false", "fsync=false",
                          "sources.screens.path=builtin:1:1000"])
    run_stages(cfg)
    export = tmp_path / "run" / "export"
    counts = json.loads((export / "manifest.json").read_text())["counts"]
    assert counts["miniwob_vision"] == len(mv.VISION_TASKS)
    for path in (export / "agentinstruct" / "miniwob_vision.jsonl", export / "parquet" / "miniwob_vision.parquet"):
        report = ValidationReport()
        rows = list(validated_rows(path, True, report))
        assert len(rows) == len(mv.VISION_TASKS), report.summary()
        for row in rows:
            sentinels = sum(t["value"].count(IMAGE_SENTINEL) for t in row["conversations"])
            assert sentinels == len(row["images"]) >= 1      # first screen + one per later step
            assert all("oracle" not in t for t in row["conversations"])
        assert max(len(r["images"]) for r in rows) >= 3       # multi-step tasks (login-user: 5 actions)
    jsonl_row = json.loads((export / "agentinstruct" / "miniwob_vision.jsonl").read_text().splitlines()[0])
    image = [p for p in jsonl_row["conversations"][2]["value"] if p["type"] == "image"][0]
    assert image["path"].startswith("images/") and (export / "agentinstruct" / image["path"]).is_file()
