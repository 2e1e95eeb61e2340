"""What runs between optimizer steps, one small object per concern: metrics, evaluation, preemption, checkpoints.

`loop.run_steps` calls every hook after every step with a `StepInfo`, in the order given (the trainer uses
metrics, eval, preemption, checkpoint: a preempted step is logged, then saved). A hook decides from the step
number whether it has work; the only thing a hook tells the loop is `info.stop` (preemption: save now, then
leave). Each hook takes plain callables and values rather than the trainer's config, so it can be built and
tested alone on a fake step (tests/train/test_hooks.py); `loop.setup` wires them to the real run.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import numpy as np


@dataclasses.dataclass
class StepInfo:
    step: int  # optimizer steps completed (the step just run is `step`; the first is 1)
    total_steps: int
    state: Any  # the train state after this step ({params, opt_state, step})
    metrics: Any  # this step's metrics, still on the devices (loss, lr, grad_norm, trained_tokens)
    stop: bool = False  # set by a hook: the hooks after it see it (checkpoint), then the loop returns

    @property
    def is_last(self) -> bool:
        return self.step >= self.total_steps


def to_host(tree) -> dict:
    """Device scalars as Python floats (waits for the values, so for the step that produced them)."""
    return jax.tree.map(lambda x: float(np.asarray(x)), jax.device_get(tree))


class Clock:
    """The metrics' timing window: wall time over the steps since the window opened. The window first opens after
    the first step of a run has finished (it includes compilation), and reopens after work that is not training
    (an evaluation), so step_time and MFU describe training steps only."""

    def __init__(self, now: Callable[[], float] = time.perf_counter):
        self.now = now
        self.opened: float | None = None
        self.steps = 0

    @property
    def is_open(self) -> bool:
        return self.opened is not None

    def restart(self) -> None:
        self.opened, self.steps = self.now(), 0

    def tick(self) -> None:
        self.steps += 1

    def step_time(self) -> float | None:
        """Seconds per step over the window, or None when it holds no step yet."""
        return (self.now() - self.opened) / self.steps if self.is_open and self.steps else None


class MetricsHook:
    """Every `every` steps (and at the last): loss, lr and grad norm, plus step time, tokens/s and MFU once the
    clock has a window; written to the metric sinks and `history`, and shown on the progress bar and the log."""

    def __init__(self, write: Callable[[int, dict], None], every: int, clock: Clock, *, flops_per_step: float,
                 peak_flops: float, tokens_per_step: int, history: list | None = None,
                 log: Callable[[str], None] | None = None, bar=None):
        self.write, self.every, self.clock = write, every, clock
        self.flops, self.peak, self.tokens = flops_per_step, peak_flops, tokens_per_step
        self.history = history if history is not None else []
        self.log, self.bar = log, bar

    def __call__(self, info: StepInfo) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if not self.clock.is_open:  # the first step of this run: compiled, not timed
            jax.block_until_ready(info.metrics)
            self.clock.restart()
        else:
            self.clock.tick()
        if info.step % self.every and not info.is_last:
            return
        host = to_host(info.metrics)  # waits for the step: the window's wall time covers finished work
        record = {"loss": host["loss"], "lr": host["lr"], "grad_norm": host["grad_norm"]}
        step_time = self.clock.step_time()
        if step_time is not None:
            record.update(step_time_s=step_time, trained_tokens_per_s=host["trained_tokens"] / step_time,
                          tokens_per_s=self.tokens / step_time, mfu=self.flops / step_time / self.peak)
        self.history.append({"step": info.step, **record})
        self.write(info.step, record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{host['loss']:.4f}", lr=f"{host['lr']:.2e}")
        if self.log is not None:
            speed = f", {record['tokens_per_s']:,.0f} tok/s, MFU {100 * record['mfu']:.1f}%" if "mfu" in record else ""
            self.log(f"[train] step {info.step}: loss {host['loss']:.4f}, lr {host['lr']:.2e}, "
                     f"grad norm {host['grad_norm']:.3f}{speed}")
        self.clock.restart()


class EvalHook:
    """The held-out loss every `every` steps (0: only at the last step), written like a metric. `evaluate(params)`
    returns the loss (loop.evaluate over fixed eval batches); the clock reopens afterwards so evaluation time is
    not counted as training time."""

    def __init__(self, evaluate: Callable[[Any], float], write: Callable[[int, dict], None], every: int,
                 clock: Clock | None = None, *, history: list | None = None, log: Callable[[str], None] | None = None):
        self.evaluate, self.write, self.every, self.clock = evaluate, write, every, clock
        self.history = history if history is not None else []
        self.log = log
        self.last_loss: float | None = None

    def run(self, step: int, params) -> float:
        """Evaluates now (the loop's baseline at step 0 calls this directly)."""
        loss = self.evaluate(params)
        self.write(step, {"eval_loss": loss})
        self.history.append({"step": step, "eval_loss": loss})
        if self.log is not None:
            self.log(f"[train] step {step}: eval loss {loss:.4f}")
        self.last_loss = loss
        return loss

    def __call__(self, info: StepInfo) -> None:
        if info.is_last or (self.every and info.step % self.every == 0):
            self.run(info.step, info.state["params"])
            if self.clock is not None:
                self.clock.restart()


class PreemptionHook:
    """Stops the run at a step every process agrees on, so all of them save that step and exit cleanly.

    Two sources, both checked every step on every process: `reached_preemption(step)` (orbax's
    CheckpointManager.reached_preemption: in a jax.distributed job JAX's coordination service catches the
    preemption notice (SIGTERM) on any host and names one sync step for all), and `flag()` (a SIGTERM flag, for
    jobs without that service, e.g. a single process), combined over processes by `any_process`.
    """

    def __init__(self, reached_preemption: Callable[[int], bool], flag: Callable[[], bool] = lambda: False,
                 any_process: Callable[[bool], bool] = lambda flag: flag):
        self.reached_preemption, self.flag, self.any_process = reached_preemption, flag, any_process

    def __call__(self, info: StepInfo) -> None:
        if self.reached_preemption(info.step) or self.any_process(self.flag()):
            info.stop = True


class CheckpointHook:
    """Saves every `every` steps, at the last step, and at a step where a hook asked to stop (preemption).
    `save(step, state)` starts an orbax save (RunCheckpoints.save with the run's metadata)."""

    def __init__(self, save: Callable[[int, Any], None], every: int, last_saved: int = 0):
        self.save, self.every, self.last_saved = save, every, last_saved

    def __call__(self, info: StepInfo) -> None:
        if info.step % self.every == 0 or info.is_last or info.stop:
            self.save(info.step, info.state)
            self.last_saved = info.step
