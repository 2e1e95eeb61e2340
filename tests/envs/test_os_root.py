"""The root-like OS sandbox: AgentBench items that need root pass there, root inside reaches nothing outside, and a
machine without it says what is missing and sets those items apart.

The synthetic items do what the test set's correct example solutions do and the plain sandbox refuses: install a
command into /usr/local/bin and /usr/bin, create users and groups and hand files to them (chgrp fails with
"Invalid argument" where one id is mapped), configure sudo, apt/dpkg housekeeping.
"""
import hashlib
import os
import pathlib
import subprocess

import pytest

from agentlm.envs import os_env, os_items, os_sandbox_root
from agentlm.envs.base import Outcome, Task
from agentlm.envs.loop import run_tasks
from agentlm.envs.os_sandbox import Sandbox, SandboxLimits, bwrap_available

ROOT_REASON = os_sandbox_root.root_problem()
needs_root_sandbox = pytest.mark.skipif(ROOT_REASON is not None,
                                        reason=f"root sandbox unavailable: {ROOT_REASON} (make install)")

COUNT = {"description": "Implement a `count` command: `count DIR` prints how many regular files DIR holds.",
         "create": {"init": "mkdir -p /data && touch /data/a /data/b /data/c"},
         "evaluation": {"check": ["[ \"$(count /data)\" = 3 ] && [ \"$(cd / && count data)\" = 3 ]"],
                        "example": "printf '#!/bin/bash\\nfind \"$1\" -maxdepth 1 -type f | wc -l\\n' "
                                   "> /usr/local/bin/count && chmod +x /usr/local/bin/count"}}
USERS = {"description": "Create user alice in a new group devs and give /srv/shared to that group.",
         "create": {"init": ["mkdir -p /srv/shared", {"code": "touch /srv/shared/plan"}]},
         "evaluation": {"check": [{"language": "python", "code":
                                   "import grp, os, pwd\npwd.getpwnam('alice')\n"
                                   "g = grp.getgrnam('devs')\nassert os.stat('/srv/shared').st_gid == g.gr_gid\n"
                                   "assert 'alice' in g.gr_mem"}],
                        "example": "groupadd devs && useradd -m -G devs alice && chgrp -R devs /srv/shared"}}
SUDO = {"description": "Let user bob run every command with sudo without a password.",
        "create": {"init": "useradd -m bob"},
        # checks run as root, as AgentBench's do (bwrap sets no_new_privs: bob himself cannot sudo up)
        "evaluation": {"check": ["sudo -l -U bob | grep -q 'NOPASSWD: ALL' && [ \"$(sudo -u bob id -u)\" = 1000 ]"],
                       "example": "echo 'bob ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/bob && chmod 440 /etc/sudoers.d/bob"}}
APT = {"description": "Clear apt's package cache; answer how many packages dpkg lists as installed.",
       "evaluation": {"check": [None, {"language": "python", "file": "check/integer-match.py"}],
                      "example": "apt-get clean && dpkg -l | grep -c '^ii'"}}
SYSTEM_BIN = {"description": "Put a `hello` command in /usr/bin that prints hi.",
              "evaluation": {"check": ["[ \"$(hello)\" = hi ] && [ -O /usr/bin/hello ]"],
                             "example": "printf '#!/bin/sh\\necho hi\\n' > /usr/bin/hello && chmod 755 /usr/bin/hello"}}
ROOT_ITEMS = [COUNT, USERS, SUDO, APT, SYSTEM_BIN]


def _tasks():
    return [Task(f"os_root_{i}", "os", item) for i, item in enumerate(ROOT_ITEMS)]


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@needs_root_sandbox
def test_root_items_pass_in_the_root_sandbox(tmp_path):
    eps = run_tasks(lambda: os_env.OSEnv(sandbox="root"), os_env.OSOracle(), _tasks(), workers=2, progress=False)
    assert [e.outcome for e in eps] == [Outcome.SUCCESS] * len(ROOT_ITEMS), [(e.task_id, e.info) for e in eps]


@pytest.mark.skipif(bwrap_available() is not None, reason=str(bwrap_available()))
def test_the_plain_sandbox_fails_them():
    """What the root sandbox is for: in the one-id sandbox chgrp to a new group and writing /usr/bin fail."""
    with Sandbox() as box:
        r = box.run("groupadd devs; mkdir -p /srv/x && chgrp devs /srv/x 2>&1; echo rc=$?")
        assert "Invalid argument" in r["output"] and "rc=1" in r["output"]
        assert "rc=0" not in box.run("echo hi > /usr/bin/hello 2>&1; echo rc=$?")["output"]


@needs_root_sandbox
def test_root_inside_is_confined(tmp_path):
    tree = os_sandbox_root.rootfs_path() / "root"
    watched = [tree / "etc/passwd", tree / "etc/group", tree / "usr/bin/id", pathlib.Path("/etc/passwd")]
    before = {p: _digest(p) for p in watched}
    outside = tmp_path / "outside"
    victim = subprocess.Popen(["sleep", "300"])
    try:
        limits = SandboxLimits(command_timeout=20)
        with os_sandbox_root.RootSandbox(limits) as box:
            assert box.run("id -u; id -g")["output"].split() == ["0", "0"]
            # 65536 ids: new users and groups own files
            r = box.run("useradd -m carol && chown carol:carol /home/carol && stat -c '%U %u' /home/carol")
            assert r["output"].split() == ["carol", "1000"]
            # writes: everywhere inside, nowhere outside
            box.run(f"echo x > {outside}; echo pwned > /usr/bin/id; echo 'x:x:0:0::/:/bin/sh' >> /etc/passwd;"
                    f" echo x > /.agentlm/server.py; touch /root/left-behind")
            assert box.run("cat /usr/bin/id")["output"].strip() == "pwned"
            # host processes: not visible, not killable
            r = box.run(f"ps -e -o pid,comm --no-headers; kill -9 {victim.pid} 2>&1")
            assert "sleep" not in r["output"] and "pytest" not in r["output"]
            # kernel modules and host filesystems: refused
            r = box.run("python3 -c \"import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
                        "rc = libc.init_module(b'x', 1, b''); print('module', rc, os.strerror(ctypes.get_errno()))\"")
            # (refused for want of CAP_SYS_MODULE outside; a kernel built without modules says so instead)
            assert r["output"].strip() in ("module -1 Operation not permitted", "module -1 Function not implemented")
            dev = os.stat("/").st_dev
            r = box.run(f"mknod /tmp/disk b {os.major(dev)} {os.minor(dev)} 2>&1; echo rc=$?; "
                        "mount -t ext4 /dev/sda1 /mnt 2>&1; mount -t ext4 /tmp/disk /mnt 2>&1; echo rc=$?; ls /mnt")
            assert r["output"].count("rc=1") + r["output"].count("rc=32") == 2, r["output"]
            assert box.run(f"ls {tmp_path} 2>&1; ls /work 2>&1")["output"].count("No such file") == 2
        assert not outside.exists() and victim.poll() is None
        assert {p: _digest(p) for p in watched} == before
        with os_sandbox_root.RootSandbox(limits) as box:  # nothing survives the episode
            r = box.run("ls /root; id carol 2>&1; cat /usr/bin/id | head -c 4 | od -c | head -1")
            assert "left-behind" not in r["output"] and "no such user" in r["output"] and "E   L   F" in r["output"]
    finally:
        victim.kill()


def test_missing_root_sandbox_is_named_and_root_items_are_unscorable(monkeypatch, tmp_path):
    monkeypatch.setattr(os_sandbox_root, "id_range", lambda: (0, "newuidmap missing (Debian package uidmap)"))
    problem = os_sandbox_root.root_problem()
    if bwrap_available() is None:
        assert problem == "newuidmap missing (Debian package uidmap)"
    assert os_sandbox_root.main(["check"]) == 1
    tasks = _tasks()
    assert [os_items.needs_root(t.data, []) for t in tasks] == [None, "groupadd", "sudo", "apt", "> /usr/bin/"]
    with os_env.OSEnv(sandbox="root") as env:
        with pytest.raises(Exception, match="root sandbox unavailable: newuidmap missing"):
            env.reset(tasks[0])
    if bwrap_available() is not None:
        pytest.skip(str(bwrap_available()))
    eps = run_tasks(lambda: os_env.OSEnv(), os_env.OSOracle(), tasks, progress=False)
    assert [e.outcome for e in eps][1:] == [Outcome.UNSCORABLE] * 4  # never run as failures
    assert all("needs root" in e.info["unscorable"] and "uidmap" in e.info["unscorable"] for e in eps[1:])
    assert eps[0].outcome == Outcome.SUCCESS  # /usr/local/bin is writable in the plain sandbox as well
    assert os_env.aggregate(eps, tasks)["unscorable_reasons"] == {"needs root": 4}


def test_rootfs_is_a_cache_entry_keyed_by_its_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTLM_OS_ROOTFS_DIR", str(tmp_path))
    first = os_sandbox_root.rootfs_path()
    assert first.parent == tmp_path
    monkeypatch.setattr(os_sandbox_root, "PACKAGES", os_sandbox_root.PACKAGES + ("htop",))
    assert os_sandbox_root.rootfs_path() != first
    if bwrap_available() is None and os_sandbox_root.id_range()[1] is None:
        assert os_sandbox_root.root_problem().startswith(f"no Debian root filesystem at {tmp_path}")
        assert "make os-rootfs" in os_sandbox_root.root_problem()
