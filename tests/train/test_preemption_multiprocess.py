"""Preemption of a multi-process job goes through JAX's coordination service and orbax's `reached_preemption`
(agentlm.train.hooks.PreemptionHook): SIGTERM reaches both processes (the local launcher forwards it), JAX catches
it, all processes agree on one step, save it and exit cleanly. The single-process SIGTERM path is test_resume.py.

Slow (two jax.distributed processes compile and train a few steps): `make test-slow`.
"""
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, losses, read_log, train_command

pytestmark = pytest.mark.slow


def test_sigterm_stops_both_processes_at_one_saved_step(tmp_path, train_env):
    run = tmp_path / "run"
    launch = [sys.executable, "-m", "launch.local", "--num_processes", "2", "--devices_per_process", "2",
              "--timeout", "300", "--", *train_command(run, "--config.train.steps=200", "--config.checkpoint.every=100",
                                                       "--config.mesh.data=2", "--config.mesh.fsdp=-1")]
    proc = subprocess.Popen(launch, cwd=ROOT, env=train_env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if max(losses(read_log(run)), default=0) >= 3:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "Reached preemption sync point" in out  # orbax/JAX agreed on the step, not our own flag
    stopped = max(losses(read_log(run)))
    assert f"preempted at step {stopped}" in out and stopped < 200
    assert sorted(p.name for p in (pathlib.Path(run) / "checkpoints").iterdir() if p.name.isdigit()) == [str(stopped)]
