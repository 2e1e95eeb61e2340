"""The toy vision run (issue 19, docs/vision.md): a small Llama with a vision path, from random init, learns to
click MiniWoB++ targets from screenshots that the scripted solver labelled (data_pipeline's miniwob_vision
export). benchmarks/vision_toy.py runs the whole experiment (data, this config, server, eval.agent, baselines);
by hand:

    python -m agentlm.train --config configs/train/vision_toy.py \
        --config.data.mixture.agent_paths="('runs/vision_toy/data/export/agentinstruct/miniwob_vision.jsonl',)"
"""
import pathlib

from agentlm.train.config import default_config

_SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared"


def get_config():
    c = default_config()
    c.run_dir = "runs/vision_toy/train"
    c.model.preset = "vision_toy"             # hidden 128, 4 layers, the 512-piece stories260K vocabulary
    c.model.vision.patch_size = 8             # 80 x 104 screenshots: 130 patches
    c.model.vision.max_patches = 256
    c.model.vision.encoder_layers = 1
    c.model.vision.patch_norm = True          # without it the model answered one fixed point per task
    c.data.source = "mixture"
    c.data.global_batch_size = 8
    c.data.seq_len = 288                      # one screen (130 patches) + instruction + reply: 273-282 tokens
    m = c.data.mixture
    m.name = "vision_toy"
    m.eta = 1.0                               # screen -> click rows only
    m.agent_paths = ("runs/vision_toy/data/export/agentinstruct/miniwob_vision.jsonl",)
    m.cache_dir = "runs/vision_toy/tfds"
    m.general_paths = ()
    m.tokenizer = str(_SHARED / "models/stories260K-hf/tokenizer.model")
    m.image_patch = 8
    c.train.steps = 1400
    c.optimizer.lr = 2e-3
    c.optimizer.warmup_steps = 50
    c.optimizer.weight_decay = 0.0
    c.checkpoint.every = 200
    c.checkpoint.keep = 10
    c.log.every = 50
    c.log.eval_batches = 0
    c.log.tensorboard = False
    return c
