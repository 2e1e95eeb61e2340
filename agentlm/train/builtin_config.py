"""The trainer's built-in default run, in code, so an installed package runs `python -m agentlm.train` with no
checkout around it.

A tiny Llama learns copy / reverse / sort conversations that `agentlm.train.synthetic` generates, in minutes on a
laptop CPU. configs/train/tiny_cpu.py starts from `tiny_cpu()` and is the file a user copies and edits; this
module is also a config file itself (`get_config()`), which is how `__main__` names it as the --config default.
"""
from __future__ import annotations

import ml_collections

from agentlm.train.config import default_config


def tiny_cpu() -> ml_collections.ConfigDict:
    c = default_config()
    c.run_dir = "runs/tiny_cpu"
    c.model.preset = "tiny"
    c.data.source = "synthetic"
    c.data.global_batch_size = 16
    c.data.seq_len = 128
    c.train.steps = 300
    c.optimizer.lr = 3e-3
    c.optimizer.warmup_steps = 20
    c.optimizer.schedule = "cosine"
    c.checkpoint.every = 100
    c.log.every = 10
    c.log.eval_every = 100
    c.log.eval_batches = 2
    return c


def get_config() -> ml_collections.ConfigDict:
    return tiny_cpu()
