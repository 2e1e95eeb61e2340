"""The training loop: set-up, resume, steps, metrics, evaluation, checkpoints, preemption.

Order matters and is deliberate: join the multi-process job, validate the whole config (no device work yet),
build the mesh and the jitted step, then restore the latest complete checkpoint (state, data position) or
initialise. The per-step RNG is `fold_in(key(seed), step)`, so restoring the step restores the RNG stream.
"""
from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np
from tqdm.auto import tqdm

from agentlm import distributed, sharding, storage
from agentlm.train import checkpointing, metrics as metrics_lib, step as step_lib
from agentlm.train.config import validate
from agentlm.train.data import make_sources, process_rows, to_global
from agentlm.train.optim import make_optimizer


def _host(tree):
    return jax.tree.map(lambda x: float(np.asarray(x)), jax.device_get(tree))


def _any_process(flag: bool) -> bool:
    """True on every process when any process has the flag (so all of them save and stop together)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def evaluate(eval_fn, params, source, source_start: dict, num_batches: int, shardings, global_batch: int, mesh,
             rules) -> float:
    """Held-out loss weighted like training: a token-level mean over the first `num_batches` eval batches
    (the source is rewound to `source_start`, so every evaluation sees the same rows)."""
    source.restore(source_start)
    loss_sum = weight_sum = 0.0
    for _ in range(num_batches):
        batch = to_global(next(source), shardings, global_batch)
        with sharding.activate(mesh, rules):
            out = _host(eval_fn(params, batch))
        loss_sum, weight_sum = loss_sum + out["loss_sum"], weight_sum + out["weight_sum"]
    return loss_sum / max(weight_sum, 1.0)


def train(config) -> dict:
    """Runs (or resumes) the job described by `config`; returns a summary (final step, last losses, run_dir)."""
    distributed.initialize(config.distributed)
    cfg = validate(config, jax.device_count(), jax.process_count())
    rules = sharding.rules_from_config(config.logical_axis_rules)
    mesh = sharding.make_mesh(config.mesh.to_dict())
    lead = jax.process_index() == 0
    total_steps, global_batch = config.train.steps, config.data.global_batch_size

    optimizer, schedule = make_optimizer(config.optimizer, total_steps)
    shardings = step_lib.state_shardings(cfg, optimizer, mesh, rules)
    batch_sh = step_lib.batch_shardings(mesh, rules)
    train_fn = step_lib.jit_train_step(cfg, optimizer, schedule, config.train.grad_accum, mesh, rules, shardings,
                                       loss_chunk=config.model.loss_chunk)
    eval_fn = step_lib.jit_eval_step(cfg, mesh, rules, shardings, loss_chunk=config.model.loss_chunk)

    rows = process_rows(batch_sh["inputs"], global_batch, config.data.seq_len)
    train_source, eval_source = make_sources(config, cfg, rows)

    run_dir = storage.path(config.run_dir)
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_json(run_dir / "model_config.json")
        (run_dir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
    ckpts = checkpointing.RunCheckpoints(run_dir, config.checkpoint.keep, config.checkpoint.async_save)
    base_key = jax.random.key(config.seed)

    start = ckpts.latest_step() if config.checkpoint.resume else None
    if start is not None:
        state, meta = ckpts.restore(start, step_lib.abstract_state(cfg, optimizer, shardings))
        train_source.restore(meta["data"])
        if meta.get("seed") != config.seed:
            raise ValueError(f"config.seed={config.seed} differs from the checkpoint's seed {meta.get('seed')} "
                             f"in {run_dir}; resume with the same seed or use a new run_dir")
        resumed = f"resumed from step {start}"
    else:
        start = 0
        params = None
        if config.init_from:
            params = checkpointing.load_pretrained(config.init_from, cfg, mesh, rules)
        state = step_lib.init_state(cfg, optimizer, mesh, rules, jax.random.fold_in(base_key, 2 ** 31 - 1),
                                    shardings, params)
        resumed = f"initialised from {config.init_from}" if config.init_from else "initialised randomly"

    flops = metrics_lib.flops_per_step(cfg, global_batch, config.data.seq_len)
    peak, peak_source = metrics_lib.total_peak_flops(config.log.peak_flops_per_device)
    writer = metrics_lib.MetricWriter(run_dir, config.log.tensorboard, enabled=lead)
    if lead:
        print(f"[train] {cfg.num_params() / 1e6:.2f}M params, mesh {dict(mesh.shape)}, {jax.process_count()} "
              f"process(es), batch {global_batch} x {config.data.seq_len}, {resumed}; peak "
              f"{peak / 1e9:.1f} GFLOP/s ({peak_source}); run dir {run_dir}", flush=True)

    def meta_at(step: int) -> dict:
        return {"step": step, "data": train_source.state(), "seed": config.seed,
                "rng": np.asarray(jax.random.key_data(jax.random.fold_in(base_key, step))).tolist(),
                "config": json.loads(config.to_json_best_effort())}

    preempt = checkpointing.PreemptionFlag().install()
    bar = tqdm(total=total_steps, initial=start, desc="train", disable=not (lead and config.log.progress),
               dynamic_ncols=True)
    history, last_saved, eval_loss, status = [], start, None, "finished"
    eval_start = eval_source.state() if eval_source is not None else None
    t_last, steps_since = None, 0  # timing window; opens after the first (compiling) step
    can_eval = eval_source is not None and config.log.eval_batches > 0

    def run_eval(at_step: int, params) -> float:
        loss = evaluate(eval_fn, params, eval_source, eval_start, config.log.eval_batches, batch_sh,
                        global_batch, mesh, rules)
        writer.write(at_step, {"eval_loss": loss})
        history.append({"step": at_step, "eval_loss": loss})
        if lead:
            tqdm.write(f"[train] step {at_step}: eval loss {loss:.4f}")
        return loss

    if can_eval and config.log.eval_at_start and start == 0:
        eval_loss = run_eval(0, state["params"])
    try:
        step = start
        while step < total_steps:
            batch = to_global(next(train_source), batch_sh, global_batch)
            with sharding.activate(mesh, rules):
                state, m = train_fn(state, batch, jax.random.fold_in(base_key, step))
            step += 1
            steps_since += 1
            bar.update(1)
            if t_last is None:
                jax.block_until_ready(m)
                t_last, steps_since = time.perf_counter(), 0
            if step % config.log.every == 0 or step == total_steps:
                host = _host(m)  # waits for the step: the window's wall time covers finished work
                now = time.perf_counter()
                record = {"loss": host["loss"], "lr": host["lr"], "grad_norm": host["grad_norm"]}
                if steps_since:
                    step_time = (now - t_last) / steps_since
                    record.update(step_time_s=step_time, trained_tokens_per_s=host["trained_tokens"] / step_time,
                                  tokens_per_s=global_batch * config.data.seq_len / step_time,
                                  mfu=flops / step_time / peak)
                history.append({"step": step, **record})
                writer.write(step, record)
                bar.set_postfix(loss=f"{host['loss']:.4f}", lr=f"{host['lr']:.2e}")
                if lead:
                    speed = (f", {record['tokens_per_s']:,.0f} tok/s, MFU {100 * record['mfu']:.1f}%"
                             if "mfu" in record else "")
                    tqdm.write(f"[train] step {step}: loss {host['loss']:.4f}, lr {host['lr']:.2e}, "
                               f"grad norm {host['grad_norm']:.3f}{speed}")
                t_last, steps_since = now, 0
            if can_eval and (step == total_steps or (config.log.eval_every and step % config.log.eval_every == 0)):
                eval_loss = run_eval(step, state["params"])
                t_last, steps_since = time.perf_counter(), 0
            stop = _any_process(preempt.is_set())
            if step % config.checkpoint.every == 0 or step == total_steps or stop:
                ckpts.save(step, state, meta_at(step))
                last_saved = step
            if stop:
                status = "preempted"
                break
    finally:
        bar.close()
        preempt.uninstall()
        ckpts.close()
        writer.close()
    if lead:
        where = run_dir / "checkpoints" / str(last_saved)
        losses = [h["loss"] for h in history if "loss" in h]
        trend = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no steps run"
        print(f"[train] {status} at step {step}: {trend}"
              + (f", eval loss {eval_loss:.4f}" if eval_loss is not None else "")
              + f"; checkpoint {where}", flush=True)
    return {"status": status, "step": step, "history": history, "eval_loss": eval_loss, "run_dir": str(run_dir),
            "last_checkpoint": last_saved, "state": state}
