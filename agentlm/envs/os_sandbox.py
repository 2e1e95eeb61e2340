"""A throwaway Linux for agent commands, without docker: bubblewrap in an unprivileged user namespace.

What a sandbox sees: the host's /usr/* (read-only, but /usr itself and an empty /usr/local are writable; /bin,
/lib ... as the host links them), its own /proc and
/dev, and private size-capped tmpfs for /root, /home, /tmp, /var, /run and /etc (the latter filled at start
from a sanitized copy of the host's /etc: no shadow hashes, no host keys). No network (fresh network
namespace with only loopback), no view of host processes (own pid namespace), host name "sandbox".

Why a user namespace as an unprivileged user: the sandbox's root is an unused uid (300000+) outside, one per
sandbox, so RLIMIT_NPROC stops fork bombs (the kernel never applies it to real root) without starving other
sandboxes, host files are only ever readable as "other", and no signal can reach a host process. Per command: wall-clock timeout (the process group is killed), output
cap, address-space, file-size and CPU limits; when the memory cgroup is writable the whole sandbox also gets a
memory ceiling.

The commands run through agentlm/envs/os_sandbox_server.py, the sandbox's first process.
"""
from __future__ import annotations

import atexit
import dataclasses
import itertools
import json
import os
import pathlib
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

NOBODY = 65534
_SENSITIVE = {"shadow", "shadow-", "gshadow", "gshadow-", "machine-id", ".pwd.lock", "credstore",
              "credstore.encrypted", "ssh", "wireguard", "NetworkManager", "openvpn", "sudoers.d", "krb5.keytab"}


class SandboxError(RuntimeError):
    pass


@dataclasses.dataclass
class SandboxLimits:
    command_timeout: float = 10.0  # seconds per agent command
    max_output: int = 65536  # bytes kept per command (the agent sees far less)
    processes: int = 64  # RLIMIT_NPROC for the sandbox's user
    address_space: int = 1 << 30  # RLIMIT_AS per process
    file_size: int = 64 << 20  # RLIMIT_FSIZE
    cpu_seconds: int = 60  # RLIMIT_CPU per process
    tmpfs_bytes: int = 128 << 20  # size of each writable tmpfs
    memory_bytes: int = 2 << 30  # whole-sandbox ceiling, where a memory cgroup can be made


def bwrap_available() -> str | None:
    """None when sandboxes can start here, else the reason they cannot."""
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    cmd = _priv_drop() + ["bwrap", "--unshare-all", "--uid", "0", "--ro-bind", "/usr", "/usr", *_root_links(),
                          "--proc", "/proc", "--dev", "/dev", "true"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return None if r.returncode == 0 else f"bwrap cannot create namespaces here: {r.stderr.strip()[:300]}"


UID_BASE, UID_SPAN = 300_000, 1_000_000
# Sandboxes of other processes draw from the same range: start each process at a random point in it.
_UIDS = itertools.count(secrets.randbelow(UID_SPAN))


def _priv_drop(uid: int = NOBODY) -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--"]


def _root_links() -> list[str]:
    args = []
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        p = pathlib.Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    return args


def _usr_binds() -> list[str]:
    """/usr as a writable tmpfs holding read-only binds of the host's /usr/* (so items may add files such as
    /usr/stock.log), with /usr/local left empty and writable (the host's own tools there stay hidden)."""
    args = ["--tmpfs", "/usr"]
    for entry in sorted(pathlib.Path("/usr").iterdir()):
        if entry.name == "local":
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        else:
            args += ["--ro-bind", str(entry), str(entry)]
    return args + ["--tmpfs", "/usr/local", "--dir", "/usr/local/bin", "--dir", "/usr/local/sbin",
                   "--dir", "/usr/local/lib", "--dir", "/usr/local/share"]


def _stage_etc(dest: pathlib.Path) -> None:
    """A copy of /etc without secrets; shadow files are rebuilt with locked passwords."""

    def ignore(directory, names):
        skip = {n for n in names if n in _SENSITIVE}
        if os.path.basename(directory) == "ssl":
            skip.add("private")
        return skip

    shutil.copytree("/etc", dest, symlinks=True, ignore=ignore, ignore_dangling_symlinks=True,
                    copy_function=_copy_readable)
    users = [line.split(":")[0] for line in (dest / "passwd").read_text().splitlines() if line.strip()]
    groups = [line.split(":")[0] for line in (dest / "group").read_text().splitlines() if line.strip()]
    (dest / "shadow").write_text("".join(f"{u}:*:19000:0:99999:7:::\n" for u in users))
    (dest / "gshadow").write_text("".join(f"{g}:*::\n" for g in groups))


def _copy_readable(src, dst):
    try:
        shutil.copy2(src, dst)
    except OSError:
        pass  # unreadable special files are left out


_STAGES: dict[str, pathlib.Path] = {}
_STAGE_LOCK = threading.Lock()


def staged_image(workdir: str | None = None) -> pathlib.Path:
    """The read-only material every sandbox mounts at /.agentlm: the sanitized /etc and the command server.

    Built once per process and directory (copying /etc takes seconds), removed when the process exits."""
    base = pathlib.Path(workdir or tempfile.gettempdir())
    with _STAGE_LOCK:
        if str(base) in _STAGES and _STAGES[str(base)].exists():
            return _STAGES[str(base)]
        base.mkdir(parents=True, exist_ok=True)
        stage = pathlib.Path(tempfile.mkdtemp(prefix="agentlm-os-", dir=base))
        try:
            _stage_etc(stage / "etc")
            shutil.copy(pathlib.Path(__file__).with_name("os_sandbox_server.py"), stage / "server.py")
            # every sandbox runs as its own unprivileged uid, so the image must be readable by anyone
            for root, dirs, files in os.walk(stage):
                for n in dirs + files:
                    p = os.path.join(root, n)
                    if not os.path.islink(p):
                        os.chmod(p, (os.stat(p).st_mode & 0o7777) | (0o555 if n in dirs else 0o444))
            stage.chmod(0o755)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        atexit.register(shutil.rmtree, stage, True)
        _STAGES[str(base)] = stage
        return stage


class Sandbox:
    """One episode's machine. Commands keep their working directory and exports between calls."""

    def __init__(self, limits: SandboxLimits | None = None, workdir: str | None = None):
        self.limits = limits or SandboxLimits()
        self.stage = staged_image(workdir)
        self.proc: subprocess.Popen | None = None
        self.cgroup: pathlib.Path | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _make_cgroup(self) -> pathlib.Path | None:
        """A memory cgroup for the whole sandbox, made inside this process's own cgroup (never elsewhere in the
        hierarchy, so the sandbox stays within whatever limits this process lives under). None where that is not
        possible (no writable cgroupfs, or cgroup v2 rules forbid a child here)."""
        try:
            lines = pathlib.Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        candidates = []
        for line in lines:
            hid, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                candidates.append((pathlib.Path("/sys/fs/cgroup/memory") / path.lstrip("/"), "memory.limit_in_bytes"))
            elif hid == "0" and controllers == "":
                candidates.append((pathlib.Path("/sys/fs/cgroup") / path.lstrip("/"), "memory.max"))
        for parent, limit_file in candidates:
            cg = parent / f"agentlm-os-{uuid.uuid4().hex[:10]}"
            try:
                cg.mkdir()
            except OSError:
                continue
            try:
                (cg / limit_file).write_text(str(self.limits.memory_bytes))
                return cg
            except OSError:
                cg.rmdir()
        return None

    def _start(self) -> None:
        lim = self.limits
        tmpfs = []
        for path in ("/tmp", "/root", "/home", "/var", "/run", "/etc", "/mnt", "/opt", "/srv"):
            tmpfs += ["--size", str(lim.tmpfs_bytes), "--tmpfs", path]
        rlimits = {"RLIMIT_NPROC": lim.processes, "RLIMIT_AS": lim.address_space, "RLIMIT_FSIZE": lim.file_size,
                   "RLIMIT_CPU": lim.cpu_seconds}
        bwrap = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "0", "--gid", "0",
                 "--hostname", "sandbox", *_usr_binds(), *_root_links(), "--proc", "/proc",
                 "--dev", "/dev", *tmpfs, "--dir", "/var/tmp", "--dir", "/var/log", "--dir", "/var/mail",
                 "--dir", "/var/spool", "--ro-bind", str(self.stage), "/.agentlm", "--chdir", "/root",
                 "--clearenv", "--setenv", "HOME", "/root", "--setenv", "USER", "root", "--setenv", "LOGNAME",
                 "root", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "--setenv", "LANG", "C.UTF-8", "--setenv", "SHELL", "/bin/bash", "--setenv", "TERM", "dumb",
                 "python3", "/.agentlm/server.py", json.dumps(rlimits)]
        # A uid of its own per sandbox: RLIMIT_NPROC counts per uid, so one sandbox's fork bomb starves only itself.
        self.uid = UID_BASE + next(_UIDS) % UID_SPAN
        cmd = _priv_drop(self.uid) + bwrap
        self.cgroup = self._make_cgroup()
        if self.cgroup:
            cmd = ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"', "sh"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        reply = self._request({"op": "setup"}, timeout=30)
        if not reply.get("ok"):
            raise SandboxError(f"sandbox setup failed: {reply}")

    def _request(self, req: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")[-500:] if self.proc else ""
            raise SandboxError(f"sandbox is not running {err}")
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        deadline, buf = time.monotonic() + timeout, b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                self.close()
                raise SandboxError(f"sandbox did not answer within {timeout:.0f}s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-500:]
                raise SandboxError(f"sandbox exited: {err}")
            buf += chunk
        reply = json.loads(buf)
        if "error" in reply:
            raise SandboxError(f"sandbox: {reply['error']}")
        return reply

    def run(self, cmd: str, timeout: float | None = None, shell_state: bool = True, interpreter: str = "bash",
            args: list[str] | None = None) -> dict:
        """Runs a command; returns {"output", "exit", "timed_out", "truncated"}."""
        t = self.limits.command_timeout if timeout is None else timeout
        return self._request({"op": "run", "cmd": cmd, "timeout": t, "max_output": self.limits.max_output,
                              "shell_state": shell_state, "interpreter": interpreter, "args": args or []},
                             timeout=t + 15)

    def spawn(self, cmd: str, interpreter: str = "bash") -> None:
        self._request({"op": "spawn", "cmd": cmd, "interpreter": interpreter}, timeout=15)

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
        if self.cgroup is not None:
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            self.cgroup = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
