"""A root-like sandbox for OS items written for AgentBench's container: uid 0 inside, a whole writable Debian.

AgentBench runs every OS item as root in a writable Ubuntu container, and many items rely on it: their example
solutions install a command into /usr/local/bin, create users and groups (useradd, then chgrp to the new group),
fix sudo configuration, do apt housekeeping. The plain sandbox (agentlm.envs.os_sandbox) maps a single id and
shows the host's system read-only, so those solutions fail there. This one gives each episode:

- a Debian root filesystem built once (`build_rootfs`: mmdebstrap, at `make install` time) and cached through
  agentlm.cache, mounted as the read-only lower layer of an overlay whose upper layer is a size-capped tmpfs in
  the sandbox's own mount namespace: every write lands in memory and is gone when the sandbox's processes end;
  the cached tree and the host are never written;
- a user namespace mapping 65536 ids (inner 0..65535 onto an outer range of unused ids), so useradd, chown and
  chgrp to new users and groups work, and root runs sudo/su/visudo as in a container. (bwrap sets
  no_new_privs, so a setuid program cannot raise an ordinary user inside: `sudo` works for root, as AgentBench's
  checks run it, not for the users it creates);
- everything the plain sandbox promises: no network (own network namespace), no view of host processes (own pid
  namespace), the same per-command limits and command server, a memory ceiling where a cgroup can be made.

Why it is safe to be root there: root inside holds capabilities only over its own namespaces. The outer ids of
the range own nothing on the host (host files are only ever "other" to it), kernel modules and mounts of real
devices need capabilities of the host's namespace (refused), and after bwrap's pivot_root no host path is
reachable except the read-only command-server stage.

How the ids are mapped: as host root, the mapping is written into the new namespace directly (the writer holds
CAP_SETUID outside); as an ordinary user it needs newuidmap/newgidmap (Debian: uidmap) and a range of 65536
subordinate ids in /etc/subuid and /etc/subgid. `root_problem()` names whatever is missing; the OS environment
then reports the items that need root as unscorable instead of failing them.

    python -m agentlm.envs.os_sandbox_root build|check|where
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys

from agentlm import cache
from agentlm.envs.os_sandbox import Sandbox, SandboxError, SandboxLimits, bwrap_available

ID_COUNT = 65536
OVERLAY_AT = "/mnt"  # where, in the sandbox's own mount namespace, its root is assembled before bwrap starts
HOST_ROOT_RANGE = 1_600_000_000  # outer ids used as host root: far above any real user or subordinate range
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What AgentBench's items use besides the essentials: python3 runs the command server and python checks.
PACKAGES = ("python3", "sudo", "passwd", "procps", "psmisc", "less", "file", "bc", "vim-tiny", "nano", "curl",
            "wget", "iproute2", "net-tools", "zip", "unzip", "bzip2", "xz-utils", "jq", "tree", "acl", "cron",
            "gawk", "git", "tzdata", "ca-certificates", "openssl")

# Runs as the sandbox's first process before bwrap: enter a new user namespace (as the range's first id when
# started as host root), tell the host, wait until the host has written the id maps, become root inside; then,
# for a sandbox, mount the episode's root in a mount namespace of its own (bubblewrap before 0.9 has no overlay
# options): a size-capped tmpfs holds the overlay's upper layer over the cached tree; exec the command.
_ENTER_USERNS = r"""
import ctypes, json, os, sys
ready, go, outer, setup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
def check(rc, what):
    if rc != 0:
        sys.stderr.write(what + ": " + os.strerror(ctypes.get_errno()) + "\n"); sys.exit(111)
if os.geteuid() == 0:
    os.setgroups([]); os.setresgid(outer, outer, outer); os.setresuid(outer, outer, outer)
check(libc.unshare(0x10000000), "unshare(CLONE_NEWUSER)")
os.write(ready, b"1"); os.close(ready)
if os.read(go, 1) != b"1":
    sys.exit(112)
os.setgroups([]); os.setresgid(0, 0, 0); os.setresuid(0, 0, 0)
if setup.get("lower"):
    check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
    check(libc.mount(None, b"/", None, 0x4000 | 0x40000, None), "make / private")
    top = setup["at"].encode()
    check(libc.mount(b"tmpfs", top, b"tmpfs", 0, b"mode=0755,size=%d" % setup["size"]), "tmpfs for the upper layer")
    for d in (b"/upper", b"/work", b"/root"):
        os.mkdir(top + d, 0o755)
    opts = b"lowerdir=%s,upperdir=%s/upper,workdir=%s/work,userxattr" % (setup["lower"].encode(), top, top)
    check(libc.mount(b"overlay", top + b"/root", b"overlay", 0, opts), "overlay mount")
os.execvp(sys.argv[5], sys.argv[5:])
"""


def host_python() -> str:
    """The system's python3 runs `_ENTER_USERNS`: once it is an id of the range, a virtual environment's
    interpreter may sit in a directory that id cannot read (e.g. under /root)."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def id_range() -> tuple[int, str | None]:
    """(first outer id, None) where 65536 ids can be mapped, else (0, what is missing)."""
    if os.geteuid() == 0:
        return HOST_ROOT_RANGE, None
    user, uid = getpass.getuser(), str(os.getuid())
    missing = [t for t in ("newuidmap", "newgidmap") if not shutil.which(t)]
    if missing:
        return 0, f"{' and '.join(missing)} missing (Debian package uidmap: make install)"
    starts = []
    for table in ("/etc/subuid", "/etc/subgid"):
        found = None
        try:
            for line in pathlib.Path(table).read_text().splitlines():
                name, _, rest = line.partition(":")
                start, _, count = rest.partition(":")
                if name in (user, uid) and count.strip().isdigit() and int(count) >= ID_COUNT:
                    found = int(start)
                    break
        except OSError:
            pass
        if found is None:
            return 0, f"no range of {ID_COUNT} ids for {user} in {table} (usermod --add-subuids/--add-subgids)"
        starts.append(found)
    if starts[0] != starts[1]:
        return 0, f"the /etc/subuid and /etc/subgid ranges of {user} differ ({starts[0]} vs {starts[1]})"
    return starts[0], None


def rootfs_home() -> pathlib.Path:
    """Where root filesystems are cached: $AGENTLM_OS_ROOTFS_DIR, else /var/cache/agentlm/os-rootfs as host root
    (the sandbox's outer ids must be able to walk the path, which ~ of root forbids), else agentlm's cache."""
    env = os.environ.get("AGENTLM_OS_ROOTFS_DIR")
    if env:
        return pathlib.Path(env)
    if os.geteuid() == 0:
        return pathlib.Path("/var/cache/agentlm/os-rootfs")
    return cache.cache_root() / "os-rootfs"


def rootfs_path() -> pathlib.Path:
    """The cache entry for this package list; the tree itself is its `root` subdirectory."""
    key = hashlib.sha256(json.dumps([SUITE, MIRROR, PACKAGES, id_range()[0]]).encode()).hexdigest()[:12]
    return rootfs_home() / f"{SUITE}-{key}"


def _unwalkable(path: pathlib.Path) -> pathlib.Path | None:
    """The first directory on the way to `path` that ids other than its owner cannot enter."""
    for p in [*reversed(path.parents), path]:
        try:
            if not p.stat().st_mode & 0o001:
                return p
        except OSError:
            return p
    return None


def root_problem() -> str | None:
    """None when root sandboxes can start here, else what is missing (shown to the user, and recorded on every
    item that needs root)."""
    plain = bwrap_available()
    if plain:
        return plain
    _, why = id_range()
    if why:
        return why
    if not os.path.isdir(OVERLAY_AT):
        return f"{OVERLAY_AT} is missing (the sandbox assembles its root there, in its own mount namespace)"
    root = rootfs_path() / "root"
    if not cache.is_complete(rootfs_path()) or not (root / "usr/bin/python3").exists():
        return f"no Debian root filesystem at {root} (build it: make os-rootfs)"
    blocked = _unwalkable(root)
    if blocked:
        return f"{blocked} is not searchable by other users, so the sandbox cannot reach {root}"
    return None


class _Userns:
    """Starts a command in a new user namespace with 65536 ids mapped (root inside), via `_ENTER_USERNS`."""

    def __init__(self, cmd: list[str], prefix: list[str] | None = None, setup: dict | None = None, **popen):
        first, why = id_range()
        if why:
            raise SandboxError(f"root sandbox: {why}")
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        try:
            self.proc = subprocess.Popen([*(prefix or []), host_python(), "-S", "-c", _ENTER_USERNS, str(ready_w),
                                          str(go_r), str(first), json.dumps(setup or {}), *cmd], pass_fds=(ready_w, go_r), **popen)
        finally:
            os.close(ready_w)
            os.close(go_r)
        try:
            if not select.select([ready_r], [], [], 30)[0] or os.read(ready_r, 1) != b"1":
                raise SandboxError(f"root sandbox: no user namespace ({self._stderr()})")
            self._map(self.proc.pid, first)
            os.write(go_w, b"1")
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            os.close(ready_r)
            os.close(go_w)

    def _stderr(self) -> str:
        try:
            self.proc.wait(timeout=5)
            return (self.proc.stderr.read() or b"").decode(errors="replace")[-300:] if self.proc.stderr else ""
        except (subprocess.TimeoutExpired, OSError):
            return "no answer"

    @staticmethod
    def _map(pid: int, first: int) -> None:
        if os.geteuid() == 0:
            for kind in ("uid_map", "gid_map"):
                pathlib.Path(f"/proc/{pid}/{kind}").write_text(f"0 {first} {ID_COUNT}\n")
            return
        for tool in ("newuidmap", "newgidmap"):
            r = subprocess.run([tool, str(pid), "0", str(first), str(ID_COUNT)], capture_output=True, text=True)
            if r.returncode:
                raise SandboxError(f"root sandbox: {tool} failed: {r.stderr.strip()[:300]}")


def build_rootfs(force: bool = False, tarball: str | None = None) -> pathlib.Path:
    """Builds (once; concurrent callers wait on the entry's lock) the cached Debian tree; returns its path.

    `tarball`: unpack this mmdebstrap tarball (built elsewhere with the same PACKAGES, e.g. on a machine that
    reaches a Debian mirror) instead of running mmdebstrap here."""
    if tarball is None and shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (apt-get install mmdebstrap; make install does it)")
    _, why = id_range()
    if why:
        raise RuntimeError(f"cannot build the root filesystem: {why}")
    entry = rootfs_path()
    if force and entry.exists():
        shutil.rmtree(entry)

    def build(tmp: pathlib.Path) -> None:
        tmp.chmod(0o755)
        tar = tmp / "rootfs.tar"
        if tarball:
            shutil.copyfile(tarball, tar)
        else:
            mode = "root" if os.geteuid() == 0 else "unshare"
            subprocess.run(["mmdebstrap", f"--mode={mode}", "--variant=minbase", "--include=" + ",".join(PACKAGES),
                            "--skip=cleanup/apt/lists", SUITE, str(tar), MIRROR], check=True)
        tar.chmod(0o644)
        root = tmp / "root"
        tmp.chmod(0o777)  # root inside the id range makes the tree, so that the tree's top is its own too
        unpack = _Userns(["sh", "-c", 'mkdir -m 755 "$1" && exec tar -xpf "$2" -C "$1" --numeric-owner '
                          '--exclude="./dev/*"', "sh", str(root), str(tar)], stderr=subprocess.PIPE)
        _, err = unpack.proc.communicate(timeout=1800)
        tmp.chmod(0o755)
        if unpack.proc.returncode:
            raise RuntimeError(f"unpacking the root filesystem failed: {err.decode(errors='replace')[-500:]}")
        tar.unlink()

    return cache.build_once(entry, build, directory=True, what="OS root filesystem")


class RootSandbox(Sandbox):
    """One episode's root-like machine; the same interface (run, spawn, close) and limits as `Sandbox`."""

    def __init__(self, limits: SandboxLimits | None = None, workdir: str | None = None):
        problem = root_problem()
        if problem:
            raise SandboxError(f"root sandbox unavailable: {problem}")
        super().__init__(limits, workdir)

    def _start(self) -> None:
        lim = self.limits
        rlimits = {"RLIMIT_NPROC": lim.processes, "RLIMIT_AS": lim.address_space, "RLIMIT_FSIZE": lim.file_size,
                   "RLIMIT_CPU": lim.cpu_seconds}
        bwrap = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--new-session", "--hostname", "sandbox",
                 "--bind", OVERLAY_AT + "/root", "/",
                 # the command server's state (cwd, exports) apart, so a full root layer cannot stop the server
                 "--size", str(8 << 20), "--tmpfs", "/run/agentlm",
                 "--proc", "/proc", "--dev", "/dev", "--ro-bind", str(self.stage), "/.agentlm", "--chdir", "/root",
                 "--clearenv", "--setenv", "HOME", "/root", "--setenv", "USER", "root", "--setenv", "LOGNAME",
                 "root", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "--setenv", "LANG", "C.UTF-8", "--setenv", "SHELL", "/bin/bash", "--setenv", "TERM", "dumb",
                 "python3", "/.agentlm/server.py", json.dumps(rlimits), "--keep-etc"]
        self.cgroup = self._make_cgroup()
        prefix = ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"', "sh"] if self.cgroup else []
        # the writable layer over the whole tree is one tmpfs, capped like each writable tmpfs of the plain sandbox
        setup = {"lower": str(rootfs_path() / "root"), "at": OVERLAY_AT, "size": lim.tmpfs_bytes}
        self.proc = _Userns(bwrap, prefix, setup, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True).proc
        reply = self._request({"op": "setup"}, timeout=30)
        if not reply.get("ok"):
            raise SandboxError(f"root sandbox setup failed: {reply}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="The OS environment's root sandbox: build its Debian tree, check it.")
    ap.add_argument("command", choices=["build", "check", "where"])
    ap.add_argument("--force", action="store_true", help="build: rebuild even if cached")
    ap.add_argument("--tarball", default=None, help="build: unpack this mmdebstrap tarball instead of running it")
    args = ap.parse_args(argv)
    if args.command == "where":
        print(rootfs_path() / "root")
        return 0
    if args.command == "build":
        try:
            print(f"root filesystem: {build_rootfs(args.force, args.tarball) / 'root'}")
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    problem = root_problem()
    if problem:
        print(f"root sandbox unavailable: {problem}\n(OS items that need root are reported as unscorable)",
              file=sys.stderr)
        return 1
    with RootSandbox() as box:
        r = box.run("id -u; useradd -m probe && chgrp probe /home/probe && stat -c %G /home/probe; "
                    "echo ok > /usr/local/bin/probe && cat /usr/local/bin/probe", timeout=30)
    print(r["output"].strip())
    ok = r["exit"] == 0 and r["output"].split()[:1] == ["0"]
    print("root sandbox works" if ok else "root sandbox started but the probe failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
