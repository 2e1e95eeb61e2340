"""Hybrid instruction tuning: the optimizer, the pure sharded train step, and the loop around it.

    python -m agentlm.train                                   # the built-in default (agentlm.train.builtin_config)
    python -m agentlm.train --config configs/train/llama2_7b.py --config.run_dir=/mnt/shared/runs/7b
    python -m launch.local --num_processes 2 -- python -m agentlm.train ...   # multi-host on one machine

Modules: `config` (schema + validation before any device work), `optim` (AdamW, decay mask, schedules),
`step` (`train_step(state, batch, rng) -> (state, metrics)`, shardings, jit), `data` (batch sources and global
array assembly), `synthetic` (built-in conversations), `builtin_config` (the default run, shipped in code),
`mixture` (agentlm.data adapter), `checkpointing` (orbax run directory, preemption), `metrics` (FLOPs/MFU, JSONL,
TensorBoard), `hooks` (what runs between steps: metrics, eval, checkpoint, preemption), `loop` (`train(config)`:
setup, then `run_steps`).

Loss: sum over trained tokens of token loss x loss_weights, divided by the sum of loss_weights over the whole
global batch (all processes and all accumulation microbatches), so every trained token weighs the same however
conversations are packed and however the batch is split.

Run directory: model_config.json, config.json, metrics.jsonl, tensorboard/, checkpoints/<step>/{state,meta}.
Re-running the same command resumes from the latest complete checkpoint (state, optimizer, data position, RNG).
"""
