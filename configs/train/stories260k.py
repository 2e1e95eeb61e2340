"""Hybrid instruction tuning of a real (tiny) pretrained Llama: stories260K on AgentInstruct + ShareGPT, eta = 0.2.

Uses the reference files in ../shared (this config is for development and tests, not a product default):
    python -m agentlm.checkpoint.convert hf-to-orbax --hf_dir ../shared/models/stories260K-hf --out models/stories260K
    python -m agentlm.train --config configs/train/stories260k.py
Training reads the os, db and alfworld AgentInstruct splits plus ShareGPT; the eval loss is measured on the webshop
split, which training never sees (held-out AgentInstruct rows). With the 512-piece tokenizer a trajectory's first
trained exchange alone is 1,000-1,800 tokens, so rows are 2048 long, beyond the base model's 512 positions (RoPE
extrapolates; fine-tuning adapts it).
"""
import pathlib

from agentlm.configfile import load_config_file
from agentlm.train.config import default_config

_MIXTURES = pathlib.Path(__file__).resolve().parents[1] / "mixture"  # configs/mixture/ beside this file

_SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared"
_AGENT = _SHARED / "data" / "agentinstruct"


def get_config():
    c = default_config()
    c.run_dir = "runs/stories260k"
    c.init_from = "models/stories260K"  # the converted ../shared/models/stories260K-hf
    c.model.dtype = "float32"
    c.model.param_dtype = "float32"
    c.model.max_position_embeddings = 2048
    c.model.attention_impl = "causal_blocks"  # exact on packed rows; skips the masked upper half of attention

    c.data.source = "mixture"
    c.data.mixture = load_config_file(_MIXTURES / "agenttuning.py")
    c.data.mixture.name = "stories260k"
    c.data.mixture.eta = 0.2
    c.data.mixture.agent_paths = [str(_AGENT / f"{task}.parquet") for task in ("os", "db", "alfworld")]
    c.data.mixture.general_paths = [str(_SHARED / "data" / "sharegpt")]
    c.data.mixture.tokenizer = str(_SHARED / "models" / "stories260K-hf" / "tokenizer.model")
    c.data.mixture.cache_dir = "/tmp/agentlm-tfds-cache"
    c.data.eval_paths = [str(_AGENT / "webshop.parquet")]
    c.data.global_batch_size = 8
    c.data.seq_len = 2048

    c.train.steps = 100  # ~10 s per step of 8 x 2048 tokens on a quiet 2-core CPU
    c.optimizer.lr = 2e-3
    c.optimizer.warmup_steps = 20
    c.optimizer.schedule = "cosine"
    c.optimizer.weight_decay = 0.0
    c.checkpoint.every = 100
    c.log.every = 10
    c.log.eval_every = 100
    c.log.eval_batches = 2
    return c
