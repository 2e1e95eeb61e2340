"""Shared body of the Llama-2 pod configs (llama2_7b / 13b / 70b.py): the paper's hybrid instruction tuning.

AgentTuning fine-tuned Llama-2-chat on AgentInstruct + ShareGPT with eta = 0.2, batch 64, sequence 4096,
lr 5e-5 (7B, 13B) or 1e-5 (70B). Prepare the base model first:
    python -m agentlm.checkpoint.convert hf-to-orbax --hf_dir <Llama-2-7b-chat-hf> --out models/llama2_7b_chat
then launch it on a pod with its run directory in a bucket (every host writes its shards of each checkpoint there):
    python -m launch.tpu --tpu NAME --zone ZONE --type v5p-64 --config configs/train/llama2_7b.py \
        --bucket gs://my-bucket/agentlm --run_name agentlm_7b
or on every host by hand: `python -m agentlm.train --config ... --config.run_dir=gs://my-bucket/agentlm/runs/agentlm_7b`
(docs/object_storage.md). init_from may be a gs:// model directory too.
"""
import pathlib

from agentlm.configfile import load_config_file
from agentlm.train.config import default_config

_MIXTURES = pathlib.Path(__file__).resolve().parents[1] / "mixture"  # configs/mixture/ beside this file


def llama2_config(size: str, lr: float, remat: str):
    c = default_config()
    c.run_dir = f"runs/agentlm_{size}"
    c.init_from = f"models/llama2_{size}_chat"  # a converted Llama-2-chat directory (model_config.json + params/)
    c.model.dtype = "bfloat16"  # matmuls in bf16 ...
    c.model.param_dtype = "float32"  # ... on fp32 master weights and fp32 Adam moments
    c.model.remat_policy = remat
    c.model.attention_impl = "causal_blocks"  # 512-row query blocks that skip the key blocks after them
    c.model.attention_chunk = 512
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 1  # pure FSDP: every chip holds 1/N of weights and moments

    c.data.source = "mixture"
    c.data.mixture = load_config_file(_MIXTURES / "agenttuning.py")  # eta = 0.2, agent data + ShareGPT-layout general data
    c.data.mixture.eta = 0.2
    c.data.mixture.tokenizer = f"{c.init_from}/tokenizer.model"
    c.data.global_batch_size = 64
    c.data.seq_len = 4096

    # The number of steps depends on how much data you mix: steps x 64 x 4096 tokens is what the run sees.
    c.train.steps = 2000
    c.train.grad_accum = 1  # raise on small slices: global_batch_size / grad_accum rows must divide over chips
    c.optimizer.lr = lr
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_steps = 60
    c.optimizer.end_lr_ratio = 0.1
    c.optimizer.weight_decay = 0.0
    c.optimizer.clip_norm = 1.0
    c.checkpoint.every = 200
    c.checkpoint.keep = 2
    c.log.every = 10
    c.log.eval_every = 200
    c.log.eval_batches = 4
    c.log.peak_flops_per_device = 0.0  # measured at start-up; set the chip's datasheet bf16 peak for reporting
    return c
