"""Multi-host training on one machine: 2 processes x 4 devices train exactly like 1 process x 8 devices, the
2-process run exports to Hugging Face files identical to a 1-process export, and the local launcher propagates a
failing process's exit code."""
import subprocess
import sys
import time

from conftest import ROOT, losses, read_log, train_command

ARGS = ["--config.train.steps=4", "--config.checkpoint.every=4", "--config.log.eval_batches=1",
        "--config.mesh.data=2", "--config.mesh.fsdp=-1"]


def test_two_processes_match_one_process(tmp_path, train_env):
    single = subprocess.run(train_command(tmp_path / "one", *ARGS), cwd=ROOT, env=train_env(8), capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    launch = [sys.executable, "-m", "launch.local", "--num_processes", "2", "--devices_per_process", "4",
              "--timeout", "300", "--", *train_command(tmp_path / "two", *ARGS)]
    multi = subprocess.run(launch, cwd=ROOT, env=train_env(4), capture_output=True, text=True, timeout=360)
    assert multi.returncode == 0, multi.stdout[-3000:]
    assert "[p0]" in multi.stdout and "[p1]" in multi.stdout and "2 process(es)" in multi.stdout
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    l1, l2 = losses(one), losses(two)
    assert sorted(l1) == sorted(l2) == [1, 2, 3, 4]
    for step in l1:
        assert abs(l1[step] - l2[step]) <= 1e-5, (step, l1[step], l2[step])
    eval1 = [r["eval_loss"] for r in one if "eval_loss" in r]
    eval2 = [r["eval_loss"] for r in two if "eval_loss" in r]
    assert len(eval1) == len(eval2) == 2  # step 0 (baseline) and the end
    assert all(abs(a - b) <= 1e-5 for a, b in zip(eval1, eval2)), (eval1, eval2)
    assert (tmp_path / "two" / "checkpoints" / "4" / "state").is_dir()

    # export the 2-process run's sharded checkpoint with 2 processes (each restores its shards; tensors are
    # gathered, process 0 writes) and with 1: the safetensors must be byte-identical
    export = [sys.executable, "-m", "agentlm.checkpoint.convert", "orbax-to-hf", "--ckpt", str(tmp_path / "two"),
              "--mesh", "data=2,fsdp=-1"]
    launch = [sys.executable, "-m", "launch.local", "--num_processes", "2", "--devices_per_process", "4",
              "--timeout", "300", "--", *export, "--out", str(tmp_path / "hf_two")]
    multi = subprocess.run(launch, cwd=ROOT, env=train_env(4), capture_output=True, text=True, timeout=360)
    assert multi.returncode == 0, multi.stdout[-3000:]
    assert multi.stdout.count("2 process(es)") == 2, multi.stdout[-3000:]  # one job, not two independent ones
    single = subprocess.run([*export, "--out", str(tmp_path / "hf_one")], cwd=ROOT, env=train_env(8),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    files = sorted(x.name for x in (tmp_path / "hf_one").glob("*.safetensors"))
    assert files and files == sorted(x.name for x in (tmp_path / "hf_two").glob("*.safetensors"))
    for name in files:
        assert (tmp_path / "hf_one" / name).read_bytes() == (tmp_path / "hf_two" / name).read_bytes(), name


def test_launcher_stops_everything_when_one_process_fails():
    script = ("import os, sys, time\n"
              "pid = int(os.environ['AGENTLM_PROCESS_ID'])\n"
              "print('process', pid, 'of', os.environ['AGENTLM_NUM_PROCESSES'], os.environ['XLA_FLAGS'], flush=True)\n"
              "sys.exit(7) if pid == 1 else time.sleep(60)\n")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "launch.local", "--num_processes", "3", "--devices_per_process", "2",
                           "--", sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stdout
    assert time.time() - t0 < 30  # the sleeping processes were terminated, not waited for
    assert "[p1] process 1 of 3 --xla_force_host_platform_device_count=2" in proc.stdout
    assert "process 1 exited with code 7" in proc.stdout
