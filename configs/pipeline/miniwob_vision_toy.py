"""Training screens for the toy vision run (benchmarks/vision_toy.py, docs/vision.md): the scripted solver plays
the tasks listed in `sources.screens.path` (a JSONL of {task, seed}; seeds far from the evaluation's), with the
one-turn scaffold of configs/envs/miniwob_vision_short.json (instruction + screenshot, no long preamble), which the
evaluation must use too (--config.miniwob_vision.prompt_file=...).

    python -m data_pipeline.run --config configs/pipeline/miniwob_vision_toy.py \
        --config.sources.screens.path=runs/vision_toy/train_items.jsonl --config.out_dir=runs/vision_toy/data
"""
import pathlib

from data_pipeline.defaults import base_config, source

SHORT_SCAFFOLD = str(pathlib.Path(__file__).resolve().parents[1] / "envs" / "miniwob_vision_short.json")


def get_config():
    c = base_config("miniwob_vision_toy")
    c.teacher.kind = "oracle"
    c.stages = ("instructions", "rollout", "filter", "export")
    c.offline_workers = 2
    c.progress = False
    c.sources.screens = source("env_tasks", "miniwob_vision", path="runs/vision_toy/train_items.jsonl",
                               env_kwargs={"prompt_file": SHORT_SCAFFOLD})
    return c
