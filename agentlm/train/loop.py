"""The training loop: `setup` builds a run once, `run_steps` steps it and calls the hooks, `train` does both.

Set-up order matters and is deliberate: join the multi-process job, validate the whole config (no device work
yet), build the mesh and the jitted step, then restore the latest complete checkpoint (state, data position) or
initialise. The per-step RNG is `fold_in(key(seed), step)`, so restoring the step restores the RNG stream.
Everything that happens between steps (metrics, evaluation, preemption, checkpoints) is a hook
(agentlm.train.hooks), in the spirit of levanter's Trainer.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from agentlm import distributed, sharding, storage
from agentlm.train import checkpointing, hooks as hooks_lib, metrics as metrics_lib, step as step_lib
from agentlm.train.config import validate
from agentlm.train.data import make_sources, process_rows, to_global
from agentlm.train.optim import make_optimizer

StepFn = Callable[[Any, int], tuple[Any, Any]]  # (state, step index) -> (new state, device metrics)


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
            out = hooks_lib.to_host(eval_fn(params, batch))
        loss_sum, weight_sum = loss_sum + out["loss_sum"], weight_sum + out["weight_sum"]
    return loss_sum / max(weight_sum, 1.0)


def run_steps(step_fn: StepFn, state, start: int, total_steps: int,
              hooks: Sequence[Callable[[hooks_lib.StepInfo], None]]) -> tuple[Any, int, bool]:
    """Steps from `start` to `total_steps`, calling every hook after every step; returns (state, step, stopped),
    `stopped` when a hook set `info.stop` (the hooks after it still ran for that step)."""
    step = start
    while step < total_steps:
        state, metrics = step_fn(state, step)
        step += 1
        info = hooks_lib.StepInfo(step=step, total_steps=total_steps, state=state, metrics=metrics)
        for hook in hooks:
            hook(info)
        if info.stop:
            return state, step, True
    return state, step, False


@dataclasses.dataclass
class Run:
    """A set-up run: the state to continue from, the step function, the hooks, and what to close afterwards."""
    state: Any
    start: int
    total_steps: int
    step_fn: StepFn
    hooks: list
    eval_hook: hooks_lib.EvalHook | None
    eval_at_start: bool  # a baseline eval loss before the first step (fresh runs)
    checkpoint_hook: hooks_lib.CheckpointHook
    history: list
    run_dir: storage.epath.Path
    lead: bool
    closers: list  # called in order when the run ends, however it ends


def _restore_or_init(config, cfg, optimizer, shardings, ckpts, train_source, mesh, rules, base_key, run_dir):
    """(state, first step, how) from the latest complete checkpoint (restoring the data position too), else from
    init_from or a random init."""
    start = ckpts.latest_step() if config.checkpoint.resume else None
    if start is not None:
        state, meta = ckpts.restore(start, step_lib.abstract_state(cfg, optimizer, shardings))
        train_source.restore(meta["data"])
        if meta.get("seed") != config.seed:
            raise ValueError(f"config.seed={config.seed} differs from the checkpoint's seed {meta.get('seed')} "
                             f"in {run_dir}; resume with the same seed or use a new run_dir")
        return state, start, f"resumed from step {start}"
    params = None
    if config.init_from:
        params = checkpointing.load_pretrained(config.init_from, cfg, mesh, rules)
    state = step_lib.init_state(cfg, optimizer, mesh, rules, jax.random.fold_in(base_key, 2 ** 31 - 1),
                                shardings, params)
    return state, 0, f"initialised from {config.init_from}" if config.init_from else "initialised randomly"


def _make_hooks(config, *, lead: bool, start: int, history: list, write, flops_per_step: float, peak_flops: float,
                evaluate_fn, save, reached_preemption) -> tuple[list, list]:
    """The trainer's hooks in their order (metrics, eval, preemption, checkpoint) and what to close at the end."""
    log = tqdm.write if lead else None
    bar = tqdm(total=config.train.steps, initial=start, desc="train", disable=not (lead and config.log.progress),
               dynamic_ncols=True)
    clock = hooks_lib.Clock()
    hooks = [hooks_lib.MetricsHook(write, config.log.every, clock, flops_per_step=flops_per_step,
                                   peak_flops=peak_flops,
                                   tokens_per_step=config.data.global_batch_size * config.data.seq_len,
                                   history=history, log=log, bar=bar)]
    if evaluate_fn is not None:
        hooks.append(hooks_lib.EvalHook(evaluate_fn, write, config.log.eval_every, clock, history=history, log=log))
    # JAX's coordination service watches SIGTERM in a multi-process job (orbax reports it); otherwise our flag.
    closers = [bar.close]
    if checkpointing.jax_handles_preemption():
        hooks.append(hooks_lib.PreemptionHook(reached_preemption))
    else:
        flag = checkpointing.PreemptionFlag().install()
        closers.append(flag.uninstall)
        hooks.append(hooks_lib.PreemptionHook(reached_preemption, flag.is_set, _any_process))
    hooks.append(hooks_lib.CheckpointHook(save, config.checkpoint.every, last_saved=start))
    return hooks, closers


def setup(config) -> Run:
    """Joins the job, validates, builds mesh, step and data, restores or initialises the state, and the hooks."""
    distributed.initialize(config.distributed)
    cfg = validate(config, jax.device_count(), jax.process_count())
    rules = sharding.rules_from_config(config.logical_axis_rules)
    mesh = sharding.make_mesh(config.mesh.to_dict())
    lead = jax.process_index() == 0
    total_steps, global_batch = config.train.steps, config.data.global_batch_size

    optimizer, schedule = make_optimizer(config.optimizer, total_steps)
    shardings = step_lib.state_shardings(cfg, optimizer, mesh, rules)
    batch_sh = step_lib.batch_shardings(mesh, rules, cfg)
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

    state, start, resumed = _restore_or_init(config, cfg, optimizer, shardings, ckpts, train_source, mesh, rules,
                                             base_key, run_dir)

    flops = metrics_lib.flops_per_step(cfg, global_batch, config.data.seq_len)
    peak, peak_source = metrics_lib.total_peak_flops(config.log.peak_flops_per_device)
    writer = metrics_lib.MetricWriter(run_dir, config.log.tensorboard, enabled=lead)
    if lead:
        print(f"[train] {cfg.num_params() / 1e6:.2f}M params, mesh {dict(mesh.shape)}, {jax.process_count()} "
              f"process(es), batch {global_batch} x {config.data.seq_len}, {resumed}; peak "
              f"{peak / 1e9:.1f} GFLOP/s ({peak_source}); run dir {run_dir}", flush=True)

    def step_fn(state, step: int):
        batch = to_global(next(train_source), batch_sh, global_batch)
        with sharding.activate(mesh, rules):
            return train_fn(state, batch, jax.random.fold_in(base_key, step))

    def save(step: int, state) -> None:
        meta = {"step": step, "data": train_source.state(), "seed": config.seed,
                "rng": np.asarray(jax.random.key_data(jax.random.fold_in(base_key, step))).tolist(),
                "config": json.loads(config.to_json_best_effort())}
        ckpts.save(step, state, meta)
        writer.flush()  # metrics up to a checkpoint are kept with it (a bucket's log is uploaded in batches)

    evaluate_fn = None
    if eval_source is not None and config.log.eval_batches > 0:
        eval_start = eval_source.state()

        def evaluate_fn(params) -> float:
            return evaluate(eval_fn, params, eval_source, eval_start, config.log.eval_batches, batch_sh,
                            global_batch, mesh, rules)

    history = []
    hooks, closers = _make_hooks(config, lead=lead, start=start, history=history, write=writer.write,
                                 flops_per_step=flops, peak_flops=peak, evaluate_fn=evaluate_fn, save=save,
                                 reached_preemption=ckpts.reached_preemption)
    closers += [ckpts.close, writer.close]
    eval_hook = next((h for h in hooks if isinstance(h, hooks_lib.EvalHook)), None)
    checkpoint_hook = next(h for h in hooks if isinstance(h, hooks_lib.CheckpointHook))
    return Run(state=state, start=start, total_steps=config.train.steps, step_fn=step_fn, hooks=hooks,
               eval_hook=eval_hook, eval_at_start=eval_hook is not None and config.log.eval_at_start and start == 0,
               checkpoint_hook=checkpoint_hook, history=history, run_dir=run_dir, lead=lead, closers=closers)


def train(config) -> dict:
    """Runs (or resumes) the job described by `config`; returns a summary (final step, last losses, run_dir)."""
    run = setup(config)
    try:
        if run.eval_at_start:
            run.eval_hook.run(0, run.state["params"])
        state, step, stopped = run_steps(run.step_fn, run.state, run.start, run.total_steps, run.hooks)
    finally:
        for close in run.closers:
            close()
    status = "preempted" if stopped else "finished"
    eval_loss = run.eval_hook.last_loss if run.eval_hook is not None else None
    last_saved = run.checkpoint_hook.last_saved
    if run.lead:
        where = run.run_dir / "checkpoints" / str(last_saved)
        losses = [h["loss"] for h in run.history if "loss" in h]
        trend = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no steps run"
        print(f"[train] {status} at step {step}: {trend}"
              + (f", eval loss {eval_loss:.4f}" if eval_loss is not None else "")
              + f"; checkpoint {where}", flush=True)
    return {"status": status, "step": step, "history": run.history, "eval_loss": eval_loss,
            "run_dir": str(run.run_dir), "last_checkpoint": last_saved, "state": state}
