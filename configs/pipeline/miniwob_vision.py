"""Screenshot -> action trajectories for the vision path: the scripted MiniWoB++ solvers play `miniwob_vision`
(headless Chromium) and every kept episode becomes an AgentInstruct row whose human turns carry screenshots
(export/agentinstruct/miniwob_vision.jsonl + images/, and a self-contained parquet). Seeds start at 1000, far
from the evaluation's builtin seeds (0..N-1). Point a mixture with `image_patch=8` at the export directory.

    python -m data_pipeline.run --config configs/pipeline/miniwob_vision.py --config.sources.screens.path=builtin:50:1000
"""
from data_pipeline.defaults import base_config, source


def get_config():
    c = base_config("miniwob_vision")
    c.teacher.kind = "oracle"
    c.stages = ("instructions", "rollout", "filter", "export")
    c.offline_workers = 1            # one Chromium at a time is plenty on a small machine
    c.sources.screens = source("env_tasks", "miniwob_vision", path="builtin:20:1000")
    return c
