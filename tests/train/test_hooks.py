"""Each training-loop hook alone, on fake steps (no model, no compilation), plus run_steps driving them.

The whole loop with these hooks is covered end to end by test_resume.py (SIGTERM, kill -9, identical losses) and
test_multiprocess.py; here each hook's own rule is pinned: when it acts and what it records.
"""
import os
import signal

import jax.numpy as jnp
import numpy as np
import pytest

from agentlm.train import checkpointing
from agentlm.train.hooks import CheckpointHook, Clock, EvalHook, MetricsHook, PreemptionHook, StepInfo
from agentlm.train.loop import run_steps


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def metrics(loss=2.0, lr=1e-3, grad_norm=0.5, trained_tokens=40.0):
    return {k: jnp.float32(v) for k, v in
            dict(loss=loss, lr=lr, grad_norm=grad_norm, trained_tokens=trained_tokens).items()}


def info(step, total=10, **kw):
    return StepInfo(step=step, total_steps=total, state={"params": {"w": step}}, metrics=metrics(), **kw)


def test_clock_times_only_the_steps_in_its_window():
    now = FakeTime()
    clock = Clock(now)
    assert not clock.is_open and clock.step_time() is None
    clock.restart()
    assert clock.step_time() is None  # open, but no step yet
    for _ in range(4):
        now.t += 0.5
        clock.tick()
    assert clock.step_time() == pytest.approx(0.5)


def test_metrics_hook_logs_every_k_steps_and_the_last_with_throughput():
    now, written, lines = FakeTime(), [], []
    clock = Clock(now)
    hook = MetricsHook(lambda step, rec: written.append((step, rec)), every=2, clock=clock, flops_per_step=1e9,
                       peak_flops=1e10, tokens_per_step=64, log=lines.append)
    for step in range(1, 6):
        now.t += 10.0 if step == 1 else 0.25  # the first step compiles: never timed
        hook(info(step, total=5))
    assert [s for s, _ in written] == [2, 4, 5]
    step2 = written[0][1]
    assert step2["loss"] == pytest.approx(2.0) and step2["step_time_s"] == pytest.approx(0.25)
    assert step2["tokens_per_s"] == pytest.approx(64 / 0.25)
    assert step2["trained_tokens_per_s"] == pytest.approx(40 / 0.25)
    assert step2["mfu"] == pytest.approx(1e9 / 0.25 / 1e10)
    assert written[2][1]["step_time_s"] == pytest.approx(0.25)  # the window reopened at step 4
    assert [h["step"] for h in hook.history] == [2, 4, 5] and "step 5: loss 2.0000" in lines[-1]


def test_metrics_hook_logs_a_first_step_without_speed():
    written = []
    hook = MetricsHook(lambda step, rec: written.append(rec), every=1, clock=Clock(FakeTime()), flops_per_step=1.0,
                       peak_flops=1.0, tokens_per_step=1)
    hook(info(1))
    assert set(written[0]) == {"loss", "lr", "grad_norm"}  # no window yet: no step time, no MFU


def test_eval_hook_runs_every_k_steps_and_at_the_end_and_reopens_the_clock():
    now, seen, written = FakeTime(), [], []
    clock = Clock(now)

    def evaluate(params):
        seen.append(params["w"])
        now.t += 30.0  # evaluation time must not count as training time
        return 1.0 / params["w"]

    hook = EvalHook(evaluate, lambda step, rec: written.append((step, rec)), every=3, clock=clock)
    for step in range(1, 8):
        hook(info(step, total=7))
    assert seen == [3, 6, 7]
    assert written[-1] == (7, {"eval_loss": pytest.approx(1 / 7)}) and hook.last_loss == pytest.approx(1 / 7)
    assert clock.opened == now.t and clock.steps == 0
    only_end = EvalHook(lambda params: 0.0, lambda *_: None, every=0)
    for step in range(1, 8):
        only_end(info(step, total=7))
    assert [h["step"] for h in only_end.history] == [7]


def test_preemption_hook_stops_on_orbax_sync_point_or_flag_from_any_process():
    at_4 = PreemptionHook(lambda step: step == 4)
    infos = [info(s) for s in range(1, 6)]
    for i in infos:
        at_4(i)
    assert [i.step for i in infos if i.stop] == [4]

    local, gathered = [False], []

    def any_process(flag):  # as if another process had received SIGTERM
        gathered.append(flag)
        return True

    hook = PreemptionHook(lambda step: False, flag=lambda: local[0], any_process=any_process)
    i = info(2)
    hook(i)
    assert i.stop and gathered == [False]  # the local flag is combined over processes, not trusted alone


def test_checkpoint_hook_saves_every_k_at_the_end_and_when_stopping():
    saved = []
    hook = CheckpointHook(lambda step, state: saved.append((step, state["params"]["w"])), every=3)
    for step in range(1, 8):
        hook(info(step, total=7, stop=(step == 4)))
    assert saved == [(3, 3), (4, 4), (6, 6), (7, 7)] and hook.last_saved == 7


def test_run_steps_calls_hooks_in_order_and_stops_after_the_stopping_step():
    calls = []

    def step_fn(state, step):
        return state + 1, metrics(loss=step)

    def first(i):
        calls.append(("first", i.step))
        if i.step == 5:
            i.stop = True

    def second(i):
        calls.append(("second", i.step, i.stop))

    state, step, stopped = run_steps(step_fn, 10, start=3, total_steps=9, hooks=[first, second])
    assert (state, step, stopped) == (12, 5, True)
    assert calls == [("first", 4), ("second", 4, False), ("first", 5), ("second", 5, True)]
    assert run_steps(step_fn, 0, start=0, total_steps=3, hooks=[]) == (3, 3, False)
    assert run_steps(step_fn, 0, start=3, total_steps=3, hooks=[first]) == (0, 3, False)  # nothing left to run


def test_real_checkpoints_and_sigterm_flag(tmp_path):
    """The production pieces the hooks are given: orbax saves through CheckpointHook; without JAX's coordination
    service reached_preemption stays False; SIGTERM sets the flag, which stops the run."""
    ckpts = checkpointing.RunCheckpoints(tmp_path, keep=2, async_save=False)
    try:
        state = {"params": {"w": jnp.arange(4.0)}}
        hook = CheckpointHook(lambda step, s: ckpts.save(step, s, {"step": step}), every=2)
        for step in (1, 2, 3):
            hook(StepInfo(step, 3, state, metrics()))
        ckpts.wait()
        assert ckpts.latest_step() == 3 and not ckpts.reached_preemption(3)
        restored, meta = ckpts.restore(3, {"params": {"w": np.zeros(4, np.float32)}})
        assert meta == {"step": 3} and np.array_equal(np.asarray(restored["params"]["w"]), np.arange(4.0))
        assert not checkpointing.jax_handles_preemption()  # one process: our own flag is the signal
        flag = checkpointing.PreemptionFlag().install()
        try:
            hook = PreemptionHook(ckpts.reached_preemption, flag.is_set)
            before = info(1)
            hook(before)
            os.kill(os.getpid(), signal.SIGTERM)
            after = info(2)
            hook(after)
        finally:
            flag.uninstall()
        assert not before.stop and after.stop
    finally:
        ckpts.close()
