"""Launch training on a Cloud TPU pod slice (or several slices over DCN) with gcloud.

    python -m launch.tpu --tpu NAME --zone Z --type v5p-128 --config configs/train/llama2_70b.py \
        [--num_slices N] [--queued] [--dry_run] [up|create|sync|install|train|logs|stop|delete|status] \
        [-- --config.key=value ...]

Why a thin gcloud driver rather than a framework (xpk, Ray): every step is one visible `gcloud` command, so
`--dry_run` prints exactly what would run and a user can paste any line by hand when a step fails.

- One slice without `--queued`: `gcloud compute tpus tpu-vm create` (reused when `describe` finds it).
- `--queued` or `--num_slices > 1`: a queued resource; for N slices its nodes are `NAME-0 .. NAME-{N-1}`.
- The same code tarball goes to every worker (scp, or through `--code_bucket gs://...` for big pods).
- Training starts on `--worker=all` of every node in a detached session (setsid + nohup) whose output goes to
  `~/agentlm/logs/<run>.log` on each worker; `logs` tails worker 0, `stop` sends SIGTERM to the process group
  (the trainer checkpoints on SIGTERM), `delete` removes the VMs / queued resource.
- jax.distributed: multi-host runs pass `--config.distributed.initialize=always`; the trainer then calls
  `jax.distributed.initialize()` with no arguments, which on TPU reads the worker list from TPU metadata;
  multi-slice adds the MEGASCALE_* variables (coordinator = worker 0 of slice 0), from which jax derives the
  global process id. The trainer's mesh gets the slice count through `--config.<dcn_key>=N` (default
  `mesh.data`): data parallelism across slices (DCN), fsdp/tensor inside each slice (ICI). This needs the
  mesh builder to lay `data` across slices (jax's create_hybrid_device_mesh when devices span several
  `slice_index` values); a plain row-major layout would put fsdp traffic on DCN.
- The run lives in a bucket: `--bucket gs://B` makes the run directory `gs://B/runs/<run_name>` (checkpoints,
  model_config.json, metrics, TensorBoard; docs/object_storage.md), unless `--config.run_dir` is given. On
  multi-host runs every host must see the same run_dir (all processes write their shards of a checkpoint), so a
  multi-host launch needs `--bucket` or a run_dir on gs:// or a shared mount (gcsfuse, Filestore/NFS); relative
  paths and /tmp are refused. Other data and checkpoint paths are passed through untouched.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import shlex
import subprocess
import sys
import time

from agentlm import configfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
REMOTE_DIR = "~/agentlm"
COORDINATOR_TOKEN = "@@COORDINATOR_IP@@"  # resolved from `describe` at run time; a shell variable in dry runs
MEGASCALE_PORT = 8080


@dataclasses.dataclass(frozen=True)
class Generation:
    gcloud_prefix: str   # how `--accelerator-type` spells it
    cores_per_chip: int  # the number in "v4-32"/"v5p-128" counts TensorCores on these; chips elsewhere
    runtime: str         # default TPU VM software version
    hbm_gib: float       # per chip (= per jax device: megacore chips expose one device)
    peak_bf16_tflops: float


GENERATIONS = {
    "v4": Generation("v4", 2, "tpu-ubuntu2204-base", 32, 275),
    "v5e": Generation("v5litepod", 1, "v2-alpha-tpuv5-lite", 16, 197),
    "v5p": Generation("v5p", 2, "v2-alpha-tpuv5", 95, 459),
    "v6e": Generation("v6e", 1, "v2-alpha-tpuv6e", 32, 918),
}
_ALIASES = {"v5litepod": "v5e", "v5lite": "v5e"}


@dataclasses.dataclass(frozen=True)
class TpuType:
    generation: str
    size: int  # the number in the type name

    @property
    def gen(self) -> Generation:
        return GENERATIONS[self.generation]

    @property
    def accelerator_type(self) -> str:
        return f"{self.gen.gcloud_prefix}-{self.size}"

    @property
    def chips(self) -> int:
        return self.size // self.gen.cores_per_chip

    @property
    def devices(self) -> int:
        """jax devices per slice (one per chip: v4/v5p megacore, v5e/v6e single core)."""
        return self.chips

    @property
    def hosts(self) -> int:
        """TPU VMs per slice: single-host shapes hold up to 8 chips (v5e/v6e) or 4 (v4/v5p); otherwise 4 per VM."""
        single_host_max = 4 if self.gen.cores_per_chip == 2 else 8
        return 1 if self.chips <= single_host_max else self.chips // 4


def parse_tpu_type(name: str) -> TpuType:
    m = re.fullmatch(r"(v\d+[a-z]*)-(\d+)", name.strip())
    if not m:
        raise ValueError(f"--type {name!r}: expected <generation>-<size>, e.g. v5p-128 or v5e-256")
    gen = _ALIASES.get(m.group(1), m.group(1))
    if gen not in GENERATIONS:
        raise ValueError(f"--type {name!r}: unknown TPU generation {m.group(1)!r}; known {sorted(GENERATIONS)}")
    size = int(m.group(2))
    t = TpuType(gen, size)
    if size % t.gen.cores_per_chip or t.chips < 1:
        raise ValueError(f"--type {name!r}: size must be a multiple of {t.gen.cores_per_chip} for {gen}")
    return t


# ---- command runners -------------------------------------------------------------------------------------
class Runner:
    """Runs commands for real; `capture` returns stdout. The dry-run subclass prints instead."""

    dry = False

    def __init__(self, out=None):
        self.out = out or sys.stdout

    def run(self, cmd: list[str], check: bool = True) -> int:
        print("+ " + render(cmd), file=self.out, flush=True)
        rc = subprocess.run(cmd).returncode
        if check and rc:
            raise SystemExit(f"command failed with exit status {rc}: {render(cmd)}")
        return rc

    def capture(self, cmd: list[str], var: str | None = None) -> str | None:
        res = subprocess.run(cmd, capture_output=True, text=True)
        return res.stdout.strip() if res.returncode == 0 else None

    def note(self, text: str) -> None:
        print(f"# {text}", file=self.out, flush=True)


class DryRunner(Runner):
    """Prints a bash script: every command the launch would run, in order, runnable as printed."""

    dry = True

    def run(self, cmd, check=True):
        print(render(cmd), file=self.out)
        return 0

    def capture(self, cmd, var=None):
        if var is None:
            return None  # a probe (`describe`): dry runs assume the resource does not exist yet
        print(f'{var}="$({render(cmd)})"', file=self.out)
        return f"${{{var}}}"


def render(cmd: list[str]) -> str:
    """shlex.join, except that the coordinator placeholder becomes a shell variable expanded by the caller."""
    text = shlex.join(cmd)
    return text.replace(COORDINATOR_TOKEN, "'\"${COORDINATOR_IP}\"'")


# ---- the launcher --------------------------------------------------------------------------------------
class TpuLauncher:
    def __init__(self, args, runner: Runner):
        self.a = args
        self.r = runner
        self.type = parse_tpu_type(args.type)
        if args.num_slices < 1:
            raise ValueError(f"--num_slices must be >= 1, got {args.num_slices}")
        self.multislice = args.num_slices > 1
        self.queued = args.queued or self.multislice
        self.nodes = [f"{args.tpu}-{i}" for i in range(args.num_slices)] if self.multislice else [args.tpu]
        self.runtime = args.runtime_version or self.type.gen.runtime
        self.total_hosts = self.type.hosts * args.num_slices
        self.total_devices = self.type.devices * args.num_slices
        self.overrides = list(args.overrides)
        if args.bucket and not any(o.startswith("--config.run_dir=") for o in self.overrides):
            self.overrides.append(f"--config.run_dir={args.bucket.rstrip('/')}/runs/{args.run_name}")
        self._check_overrides()

    # common gcloud flags
    def _loc(self) -> list[str]:
        flags = [f"--zone={self.a.zone}"]
        if self.a.project:
            flags.append(f"--project={self.a.project}")
        return flags

    def _ssh(self, node: str, command: str, worker: str = "all") -> list[str]:
        cmd = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", node, *self._loc(), f"--worker={worker}",
               f"--command={command}"]
        if self.a.internal_ip:
            cmd.append("--internal-ip")
        return cmd

    def _check_overrides(self) -> None:
        for o in self.overrides:
            if not o.startswith("--config."):
                raise ValueError(f"trainer override {o!r}: pass-through arguments after -- must be --config.key=value")
        if self.total_hosts > 1:
            training = getattr(self.a, "action", "up") in ("up", "train")
            if training and not any(o.startswith("--config.run_dir=") for o in self.overrides):
                raise ValueError(f"a {self.total_hosts}-host run writes its checkpoints to one place every host sees: "
                                 "pass --bucket gs://... (run_dir = <bucket>/runs/<run_name>) or "
                                 "--config.run_dir=gs://... after --")
            for o in self.overrides:
                key, _, value = o.partition("=")
                shared = value.startswith("gs://") or (value.startswith("/") and not value.startswith("/tmp"))
                if re.search(r"(dir|path|ckpt|checkpoint|init_from|tokenizer)$", key) and value and not shared:
                    raise ValueError(f"{o}: a {self.total_hosts}-host run needs a location every host sees here "
                                     "(gs://... or a shared mount such as /mnt/gcs/...); a relative or /tmp path "
                                     "is each host's own disk")

    # ---- steps ----
    def create(self) -> None:
        a = self.a
        if self.queued:
            qr = a.tpu
            state = self.r.capture(["gcloud", "compute", "tpus", "queued-resources", "describe", qr, *self._loc(),
                                    "--format=value(state.state)"])
            if state:
                self.r.note(f"queued resource {qr} exists (state {state}); reusing it")
            else:
                cmd = ["gcloud", "compute", "tpus", "queued-resources", "create", qr, *self._loc(),
                       f"--accelerator-type={self.type.accelerator_type}", f"--runtime-version={self.runtime}"]
                if self.multislice:
                    cmd += [f"--node-count={a.num_slices}", f"--node-prefix={a.tpu}"]
                else:
                    cmd += [f"--node-id={a.tpu}"]
                cmd += self._capacity_flags()
                self.r.run(cmd)
            self._wait_active(qr)
        else:
            state = self.r.capture(["gcloud", "compute", "tpus", "tpu-vm", "describe", a.tpu, *self._loc(),
                                    "--format=value(state)"])
            if state:
                self.r.note(f"TPU VM {a.tpu} exists (state {state}); reusing it")
                return
            cmd = ["gcloud", "compute", "tpus", "tpu-vm", "create", a.tpu, *self._loc(),
                   f"--accelerator-type={self.type.accelerator_type}", f"--version={self.runtime}"]
            self.r.run(cmd + self._capacity_flags())

    def _capacity_flags(self) -> list[str]:
        flags = []
        if self.a.spot:
            flags.append("--spot")
        if self.a.reserved:
            flags.append("--reserved")
        if self.a.network:
            flags.append(f"--network={self.a.network}")
        return flags

    def _wait_active(self, qr: str) -> None:
        cmd = ["gcloud", "compute", "tpus", "queued-resources", "describe", qr, *self._loc(),
               "--format=value(state.state)"]
        if self.r.dry:
            print(f"until [ \"$({render(cmd)})\" = ACTIVE ]; do sleep 30; done", file=self.r.out)
            return
        deadline = time.time() + self.a.wait_minutes * 60
        while time.time() < deadline:
            state = self.r.capture(cmd)
            self.r.note(f"queued resource {qr}: {state}")
            if state == "ACTIVE":
                return
            if state in ("FAILED", "SUSPENDED"):
                raise SystemExit(f"queued resource {qr} is {state}; delete it and retry (`delete`)")
            time.sleep(30)
        raise SystemExit(f"queued resource {qr} not ACTIVE after {self.a.wait_minutes} minutes")

    def sync(self) -> None:
        """Ships the working tree (tracked + untracked-not-ignored files, minus --sync_exclude) as one tarball to
        every worker."""
        tarball = f"/tmp/{self.a.tpu}-code.tgz"
        excludes = " ".join(shlex.quote(f":(exclude){p.strip('/')}/") for p in self.a.sync_exclude.split(",") if p)
        self.r.run(["bash", "-c", f"cd {shlex.quote(str(ROOT))} && git ls-files -z --cached --others "
                                  f"--exclude-standard -- . {excludes} | tar czf {tarball} --null -T -"])
        unpack = f"mkdir -p {REMOTE_DIR} && tar xzf ~/agentlm-code.tgz -C {REMOTE_DIR} && rm ~/agentlm-code.tgz"
        if self.a.code_bucket:
            url = f"{self.a.code_bucket.rstrip('/')}/{self.a.tpu}/agentlm-code.tgz"
            self.r.run(["gcloud", "storage", "cp", tarball, url])
            for node in self.nodes:
                self.r.run(self._ssh(node, f"gcloud storage cp {url} ~/agentlm-code.tgz && {unpack}"))
        else:
            for node in self.nodes:
                scp = ["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball, f"{node}:~/agentlm-code.tgz",
                       *self._loc(), "--worker=all"]
                if self.a.internal_ip:
                    scp.append("--internal-ip")
                self.r.run(scp)
                self.r.run(self._ssh(node, unpack))

    def install(self) -> None:
        """Python >= 3.11 (TPU VM images ship 3.10), `make install` (venv + Debian packages), then the TPU build
        of the pinned jax version, and a check that every host sees its chips."""
        jax_pin = _pinned("jax")
        py = self.a.python
        cmd = (f"cd {REMOTE_DIR} && (command -v {py} >/dev/null || (sudo apt-get update -qq && "
               f"sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {py} {py}-venv)) && "
               f"make install PY={py} && .venv/bin/pip install -q 'jax[tpu]=={jax_pin}' "
               f"&& .venv/bin/python -c 'import jax; print(jax.process_index(), jax.local_device_count())'")
        for node in self.nodes:
            self.r.run(self._ssh(node, cmd))

    def train_env(self, slice_id: int) -> dict[str, str]:
        env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
        if self.multislice:
            env.update(MEGASCALE_COORDINATOR_ADDRESS=f"{COORDINATOR_TOKEN}:{MEGASCALE_PORT}",
                       MEGASCALE_NUM_SLICES=str(self.a.num_slices), MEGASCALE_SLICE_ID=str(slice_id),
                       MEGASCALE_PORT=str(MEGASCALE_PORT))
        return env

    def train_command(self) -> list[str]:
        cmd = [".venv/bin/python", "-m", "agentlm.train", "--config", self.a.config]
        if self.total_hosts > 1:  # jax.distributed.initialize() with TPU autodetection on every host
            cmd.append("--config.distributed.initialize=always")
        if self.multislice:
            cmd.append(f"--config.{self.a.dcn_key}={self.a.num_slices}")
        return cmd + self.overrides

    def train(self) -> None:
        run, log = self.a.run_name, f"logs/{self.a.run_name}.log"
        if self.multislice:
            ip = self.r.capture(["gcloud", "compute", "tpus", "tpu-vm", "describe", self.nodes[0], *self._loc(),
                                 "--format=value(networkEndpoints[0].ipAddress)"], var="COORDINATOR_IP")
            if not ip:
                raise SystemExit(f"could not read the internal IP of {self.nodes[0]} worker 0 (is it ACTIVE?)")
        for slice_id, node in enumerate(self.nodes):
            env = " ".join(f"{k}={v}" for k, v in self.train_env(slice_id).items())
            if self.multislice and not self.r.dry:
                env = env.replace(COORDINATOR_TOKEN, ip)
            train = " ".join(shlex.quote(c) for c in self.train_command())
            # Release a TPU a previous crashed run may hold, then start detached: the ssh session may end.
            remote = (f"cd {REMOTE_DIR} && mkdir -p logs && sudo rm -f /tmp/libtpu_lockfile && "
                      f"(setsid nohup env {env} {train} > {log} 2>&1 < /dev/null & echo $! > logs/{run}.pid) "
                      f"&& echo started {run} on $(hostname)")
            self.r.run(self._ssh(node, remote))
        self.r.note(f"{self.total_hosts} hosts x {self.type.devices // self.type.hosts} devices; "
                    f"follow with: python -m launch.tpu {self._identity()} logs")

    def logs(self) -> None:
        self.r.run(self._ssh(self.nodes[0], f"tail -n 200 -F {REMOTE_DIR}/logs/{self.a.run_name}.log",
                             worker="0"), check=False)

    def stop(self) -> None:
        pid = f"{REMOTE_DIR}/logs/{self.a.run_name}.pid"
        for node in self.nodes:
            remote = f"test -f {pid} && kill -TERM -- -$(cat {pid}) || echo no run {self.a.run_name}"
            self.r.run(self._ssh(node, remote), check=False)

    def delete(self) -> None:
        if self.queued:
            self.r.run(["gcloud", "compute", "tpus", "queued-resources", "delete", self.a.tpu, *self._loc(),
                        "--force", "--quiet"])
        else:
            self.r.run(["gcloud", "compute", "tpus", "tpu-vm", "delete", self.a.tpu, *self._loc(), "--quiet"])

    def status(self) -> None:
        for node in self.nodes:
            self.r.run(["gcloud", "compute", "tpus", "tpu-vm", "describe", node, *self._loc(),
                        "--format=value(state,health,acceleratorType)"], check=False)

    def up(self) -> None:
        self.create()
        self.sync()
        self.install()
        self.train()

    def _identity(self) -> str:
        parts = [f"--tpu {self.a.tpu}", f"--zone {self.a.zone}", f"--type {self.a.type}", f"--config {self.a.config}",
                 f"--run_name {self.a.run_name}"]
        if self.a.num_slices > 1:
            parts.append(f"--num_slices {self.a.num_slices}")
        if self.a.queued:
            parts.append("--queued")
        return " ".join(parts)


def repo_relative(path: str) -> str:
    """The config as a path relative to the repository root: the workers run from their copy of the repo."""
    p = pathlib.Path(path)
    full = (p if p.is_absolute() else pathlib.Path.cwd() / p).resolve()
    if not full.is_file():
        raise ValueError(f"--config {path}: no such file")
    try:
        return str(full.relative_to(ROOT))
    except ValueError:
        raise ValueError(f"--config {path}: must live inside the repository ({ROOT}), which is what gets "
                         "synced to the workers") from None


def load_config_file(path: str):
    """`get_config()` of an ml_collections config file (relative paths are from the repository root)."""
    return configfile.load_config_file(path, relative_to=ROOT)


def missing_config_keys(config_path: str, overrides: list[str]) -> list[str]:
    """The --config.a.b=v overrides whose field a.b the trainer config does not have (checked before any gcloud
    call: a typo must not cost a pod allocation)."""
    config = load_config_file(config_path)
    missing = []
    for o in overrides:
        node = config
        for part in o[len("--config."):].partition("=")[0].split("."):
            if not hasattr(node, "keys") or part not in node:
                missing.append(o.partition("=")[0])
                break
            node = node[part]
    return missing


def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise SystemExit(f"requirements.txt: no pinned {package}==<version> line")


ACTIONS = ("up", "create", "sync", "install", "train", "logs", "stop", "delete", "status")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m launch.tpu", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Arguments after -- are passed to the trainer (--config.key=value).")
    p.add_argument("action", nargs="?", default="up", choices=ACTIONS,
                   help="up (default) = create + sync + install + train")
    p.add_argument("--tpu", required=True, help="TPU VM name (multi-slice: queued resource and node prefix)")
    p.add_argument("--zone", required=True)
    p.add_argument("--type", required=True, help="accelerator type, e.g. v5p-128, v5e-256, v4-32")
    p.add_argument("--config", required=True, help="trainer config file, e.g. configs/train/llama2_70b.py")
    p.add_argument("--project", default=None, help="GCP project (default: gcloud's configured one)")
    p.add_argument("--num_slices", type=int, default=1, help="slices joined over DCN (implies --queued)")
    p.add_argument("--queued", action="store_true", help="request through a queued resource")
    p.add_argument("--spot", action="store_true", help="spot capacity (preemptible; the trainer resumes)")
    p.add_argument("--reserved", action="store_true", help="use a reservation")
    p.add_argument("--network", default=None)
    p.add_argument("--runtime_version", default=None, help="TPU software version (default per generation)")
    p.add_argument("--python", default="python3.11", help="interpreter for the workers' venv (apt-installed "
                                                            "when missing)")
    p.add_argument("--code_bucket", default=None, help="gs:// prefix to ship code through instead of scp")
    p.add_argument("--sync_exclude", default="models,data,logs,runs,eval_runs",
                   help="comma-separated top-level folders not shipped (weights and data belong on shared storage)")
    p.add_argument("--run_name", default="train", help="names the log and pid files on the workers (and the run "
                                                       "directory under --bucket)")
    p.add_argument("--bucket", default=None, help="gs:// prefix for the run: run_dir = <bucket>/runs/<run_name>")
    p.add_argument("--dcn_key", default="mesh.data",
                   help="trainer config key that receives --num_slices (data parallelism across slices)")
    p.add_argument("--internal_ip", action="store_true", help="ssh/scp over internal IPs (launching from GCE)")
    p.add_argument("--wait_minutes", type=float, default=240, help="how long to wait for a queued resource")
    p.add_argument("--dry_run", action="store_true", help="print every command as a bash script; run nothing")
    return p


def main(argv: list[str] | None = None, out=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = build_parser().parse_args(argv)
    args.overrides = overrides
    try:
        args.config = repo_relative(args.config)
    except ValueError as e:
        raise SystemExit(str(e))
    if args.bucket and "://" not in args.bucket:
        raise SystemExit(f"--bucket {args.bucket!r} must be a URL such as gs://my-bucket/agentlm")
    if args.code_bucket and not args.code_bucket.startswith("gs://"):
        raise SystemExit(f"--code_bucket {args.code_bucket!r} must be a gs:// URL")
    runner = DryRunner(out) if args.dry_run else Runner(out)
    try:
        launcher = TpuLauncher(args, runner)
    except ValueError as e:
        raise SystemExit(str(e))
    if args.dry_run:
        print("#!/usr/bin/env bash\nset -euo pipefail", file=runner.out)
        runner.note(f"{args.type}: {launcher.type.chips} chips, {launcher.type.hosts} hosts per slice, "
                    f"{args.num_slices} slice(s), {launcher.total_devices} jax devices")
    if args.action in ("up", "train"):
        missing = missing_config_keys(args.config, launcher.train_command()[5:])
        if missing:
            msg = f"{args.config} has no field(s) {', '.join(missing)}"
            if launcher.multislice and f"--config.{args.dcn_key}" in missing:
                msg += (f"; multi-slice training needs the trainer's mesh to take the slice count as "
                        f"{args.dcn_key} (set --dcn_key to the field it uses)")
            if not args.dry_run:
                raise SystemExit(msg)
            runner.note(f"WARNING: {msg}")
    getattr(launcher, args.action)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
