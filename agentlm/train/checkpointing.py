"""Run-directory checkpoints (orbax CheckpointManager) and loading a converted model to fine-tune from.

Layout (docs/architecture.md, Checkpoints): `<run_dir>/model_config.json` and `<run_dir>/checkpoints/<step>/` with
items `state` ({params, opt_state, step}) and `meta` (JSON: data position, rng seed, config). Orbax writes a step
under a temporary name and renames it when complete, so a process killed mid-save leaves no step that a restart
would pick up; `latest_step()` only ever sees finished ones.
"""
from __future__ import annotations

import signal
import threading

import jax
import orbax.checkpoint as ocp

from agentlm import storage
from agentlm.model import LlamaConfig


class RunCheckpoints:
    def __init__(self, run_dir, keep: int, async_save: bool):
        # A bucket has no atomic rename, so orbax writes a step in place and marks it with commit_success.txt; a run
        # killed mid-save leaves an unmarked step there, which would block saving that step again. Cleaning
        # unfinished steps at start-up removes them (on disk it removes orbax's *.orbax-checkpoint-tmp-* dirs).
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=True,
                                               cleanup_tmp_directories=True)
        self.manager = ocp.CheckpointManager(storage.path(run_dir) / "checkpoints", options=options,
                                             item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        """Starts a save (async: returns once arrays are copied off the devices, so the state may be donated)."""
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)), force=True)

    def restore(self, step: int, abstract_state):
        """(state, meta) of `step`, laid out as `abstract_state`'s shardings (any mesh)."""
        out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                                 meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def reached_preemption(self, step: int) -> bool:
        """orbax's preemption sync point: True on every process at the one step where all of them should save
        (JAX's coordination service caught a preemption notice); always False without that service."""
        return self.manager.reached_preemption(step)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def load_pretrained(path: str, cfg: LlamaConfig, mesh, rules):
    """Parameters of a converted model directory (or a run directory's latest step) on `mesh`, through
    agentlm.checkpoint.load, which checks every shape against the model config before reading."""
    try:
        from agentlm.checkpoint import load
    except ImportError:  # package __init__ not re-exporting yet
        from agentlm.checkpoint.store import load
    numerics = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, remat_policy=cfg.remat_policy,
                    attention_impl=cfg.attention_impl, attention_chunk=cfg.attention_chunk,
                    max_position_embeddings=cfg.max_position_embeddings)
    loaded_cfg, params = load(path, mesh=mesh, rules=rules, config_overrides=numerics)
    if loaded_cfg != cfg:
        raise ValueError(f"config.init_from={path!r}: model config {loaded_cfg} differs from the run's {cfg}")
    return params


def jax_handles_preemption() -> bool:
    """True when JAX's coordination service catches SIGTERM for this job (a multi-process jax.distributed job with
    the preemption service on); orbax's `reached_preemption` then reports it and our own handler must stay off,
    since installing one would replace JAX's."""
    return jax.process_count() > 1 and bool(jax.config.jax_enable_preemption_service)


class PreemptionFlag:
    """Set by SIGTERM (what TPU preemption and most schedulers send first) in a job JAX does not watch (a single
    process): the loop saves and exits cleanly."""

    def __init__(self):
        self.event = threading.Event()
        self.previous = None

    def install(self) -> "PreemptionFlag":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self

    def uninstall(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None

    def is_set(self) -> bool:
        return self.event.is_set()
