"""The TPU launcher's dry runs: the printed bash script is what a real launch runs, so it is checked as such —
parsed by bash, and executed against a stub `gcloud` that records every call."""
import os
import pathlib
import shlex
import subprocess

import pytest

from launch import tpu

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "configs/train/llama2_70b.py"


def dry_run(*argv: str) -> str:
    import io

    out = io.StringIO()
    cut = argv.index("--") if "--" in argv else len(argv)
    assert tpu.main([*argv[:cut], "--dry_run", *argv[cut:]], out=out) == 0
    return out.getvalue()


def ssh_lines(script: str, node: str) -> list[list[str]]:
    lines = [shlex.split(line) for line in script.splitlines() if line.startswith("gcloud compute tpus tpu-vm ssh")]
    return [argv for argv in lines if argv[5] == node]


def remote_command(argv: list[str]) -> str:
    return next(a for a in argv if a.startswith("--command="))[len("--command="):]


def test_tpu_type_table():
    t = tpu.parse_tpu_type("v5p-128")
    assert (t.accelerator_type, t.chips, t.hosts, t.devices) == ("v5p-128", 64, 16, 64)
    t = tpu.parse_tpu_type("v5e-256")
    assert (t.accelerator_type, t.chips, t.hosts) == ("v5litepod-256", 256, 64)
    assert tpu.parse_tpu_type("v4-8").hosts == 1 and tpu.parse_tpu_type("v5e-8").hosts == 1
    assert tpu.parse_tpu_type("v4-32").hosts == 4
    with pytest.raises(ValueError, match="unknown TPU generation"):
        tpu.parse_tpu_type("v9-8")
    with pytest.raises(ValueError, match="expected <generation>-<size>"):
        tpu.parse_tpu_type("v5p")


def test_v5p_128_single_slice_dry_run():
    script = dry_run("--tpu", "big", "--zone", "us-east5-a", "--type", "v5p-128", "--config", CONFIG,
                     "--", "--config.run_dir=gs://bucket/runs/70b", "--config.train.steps=1000")
    lines = script.splitlines()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid bash as printed
    create = next(shlex.split(x) for x in lines if " tpu-vm create " in x)
    assert create[5] == "big" and "--zone=us-east5-a" in create
    assert "--accelerator-type=v5p-128" in create and "--version=v2-alpha-tpuv5" in create
    assert "(exclude)models/" in script  # converted weights are not shipped with the code
    scp = next(shlex.split(x) for x in lines if " tpu-vm scp " in x)
    assert "--worker=all" in scp
    steps = ssh_lines(script, "big")
    assert len(steps) == 3  # unpack, install, train
    assert all("--worker=all" in argv for argv in steps)
    assert "make install" in remote_command(steps[1]) and "jax[tpu]==" in remote_command(steps[1])
    train = remote_command(steps[2])
    assert f"-m agentlm.train --config {CONFIG} --config.distributed.initialize=always" in train
    assert "--config.run_dir=gs://bucket/runs/70b --config.train.steps=1000" in train
    assert "setsid nohup" in train and "> logs/train.log" in train and "logs/train.pid" in train
    assert "MEGASCALE" not in train and "queued-resources" not in script
    assert "# v5p-128: 64 chips, 16 hosts per slice, 1 slice(s), 64 jax devices" in script
    assert "WARNING" not in script


def test_v5e_256_two_slices_dry_run_runs_against_stub_gcloud(tmp_path):
    script = dry_run("--tpu", "ms", "--zone", "us-west4-a", "--type", "v5e-256", "--num_slices", "2",
                     "--config", CONFIG, "--code_bucket", "gs://bucket/code",
                     "--", "--config.run_dir=gs://bucket/runs/ms")
    qr = next(shlex.split(x) for x in script.splitlines() if "queued-resources create" in x)
    assert qr[5] == "ms" and "--accelerator-type=v5litepod-256" in qr
    assert "--node-count=2" in qr and "--node-prefix=ms" in qr
    for slice_id, node in enumerate(("ms-0", "ms-1")):
        train = remote_command(ssh_lines(script, node)[-1])
        assert all("--worker=all" in argv for argv in ssh_lines(script, node))
        assert f"MEGASCALE_SLICE_ID={slice_id} " in train and "MEGASCALE_NUM_SLICES=2 " in train
        assert f"--config {CONFIG} --config.distributed.initialize=always --config.mesh.data=2" in train
        assert "--config.run_dir=gs://bucket/runs/ms" in train

    # Execute the script with a stub gcloud: every call is recorded, describe calls answer like the real one.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    (bin_dir / "gcloud").write_text(
        "#!/usr/bin/env bash\n"
        f"printf '%s\\0' \"$@\" >> {log}; printf '\\n' >> {log}\n"
        'case "$*" in *"queued-resources describe"*) echo ACTIVE;; *"tpu-vm describe"*) echo 10.0.0.7;; esac\n')
    (bin_dir / "gcloud").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = script.replace("/tmp/ms-code.tgz", str(tmp_path / "code.tgz"))
    subprocess.run(["bash", "-c", script], env=env, check=True, cwd=tmp_path, capture_output=True)
    calls = [c.split("\0") for c in log.read_text().split("\0\n") if c]
    trains = [c for c in calls if c[:4] == ["compute", "tpus", "tpu-vm", "ssh"] and "agentlm.train" in c[-1]]
    assert [c[4] for c in trains] == ["ms-0", "ms-1"]
    for slice_id, call in enumerate(trains):  # the coordinator IP reached the workers' environment
        assert f"MEGASCALE_COORDINATOR_ADDRESS=10.0.0.7:8080 MEGASCALE_NUM_SLICES=2 MEGASCALE_SLICE_ID={slice_id}" \
            in call[-1]
    assert (tmp_path / "code.tgz").stat().st_size > 1000  # the code tarball was really built


def test_actions_stop_logs_delete():
    stop = dry_run("--tpu", "big", "--zone", "z", "--type", "v5p-128", "--config", CONFIG, "stop")
    assert "kill -TERM -- -$(cat ~/agentlm/logs/train.pid)" in remote_command(ssh_lines(stop, "big")[0])
    logs = dry_run("--tpu", "big", "--zone", "z", "--type", "v5p-128", "--config", CONFIG, "logs")
    assert "--worker=0" in ssh_lines(logs, "big")[0] and "tail" in remote_command(ssh_lines(logs, "big")[0])
    delete = dry_run("--tpu", "ms", "--zone", "z", "--type", "v5e-256", "--num_slices", "2", "--config", CONFIG,
                     "delete")
    assert "gcloud compute tpus queued-resources delete ms --zone=z --force --quiet" in delete


@pytest.mark.parametrize("argv, message", [
    (["--type", "v5p-128", "--", "--config.run_dir=runs/x"], "needs a location every host sees"),
    (["--type", "v5p-128", "--", "--config.run_dir=gs://b/r", "--config.init_from=/tmp/llama"],
     "needs a location every host sees"),
    (["--type", "v5p-128"], "pass --bucket gs://"),
    (["--type", "v5p-128", "--bucket", "my-bucket"], "must be a URL"),
    (["--type", "v5p-128", "--", "run_dir=x"], "must be --config.key=value"),
    (["--type", "v5p-12x"], "expected <generation>-<size>"),
    (["--type", "v5p-8", "--num_slices", "0"], "--num_slices must be >= 1"),
])
def test_bad_arguments_fail_with_the_reason(argv, message):
    pre = argv[:argv.index("--")] if "--" in argv else argv
    post = argv[argv.index("--"):] if "--" in argv else []
    with pytest.raises(SystemExit, match=message):
        tpu.main(["--tpu", "t", "--zone", "z", "--config", CONFIG, *pre, "--dry_run", *post])


def test_config_outside_repository_or_missing_is_refused(tmp_path):
    outside = tmp_path / "c.py"
    outside.write_text("def get_config():\n    return None\n")
    with pytest.raises(SystemExit, match="must live inside the repository"):
        tpu.main(["--tpu", "t", "--zone", "z", "--type", "v4-8", "--config", str(outside), "--dry_run"])
    with pytest.raises(SystemExit, match="no such file"):
        tpu.main(["--tpu", "t", "--zone", "z", "--type", "v4-8", "--config", "configs/train/nope.py", "--dry_run"])


def test_unknown_trainer_field_is_flagged():
    script = dry_run("--tpu", "t", "--zone", "z", "--type", "v4-8", "--config", CONFIG, "--",
                     "--config.train.stepz=5")
    assert "WARNING" in script and "--config.train.stepz" in script


def test_bucket_names_the_run_directory():
    script = dry_run("--tpu", "big", "--zone", "z", "--type", "v5p-128", "--config", CONFIG, "--bucket",
                     "gs://team-bucket/agentlm/", "--run_name", "agentlm_70b")
    train = remote_command(ssh_lines(script, "big")[-1])
    assert "--config.run_dir=gs://team-bucket/agentlm/runs/agentlm_70b" in train
    assert "logs/agentlm_70b.log" in train
    # an explicit run_dir wins over the bucket's default
    script = dry_run("--tpu", "big", "--zone", "z", "--type", "v5p-128", "--config", CONFIG, "--bucket", "gs://b",
                     "--", "--config.run_dir=gs://other/run")
    train = remote_command(ssh_lines(script, "big")[-1])
    assert "--config.run_dir=gs://other/run" in train and "gs://b/runs" not in train
