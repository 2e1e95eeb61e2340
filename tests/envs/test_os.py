"""OS environment: the oracle on os_interaction dev, check semantics, and attacks on the sandbox."""
import hashlib
import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

from agentlm.envs import os_env, os_sandbox_root
from agentlm.envs.base import Outcome, TaskUnscorable
from agentlm.envs.loop import run_tasks, summarize
from agentlm.envs.os_sandbox import Sandbox, SandboxError, SandboxLimits, bwrap_available
from tests.conftest import shared_path

REASON = bwrap_available()
needs_bwrap = pytest.mark.skipif(REASON is not None and not os.environ.get("CI"), reason=str(REASON))
SCRIPT_ITEMS = {3, 5, 25}  # items naming AgentBench scripts (check/0.sh, example/0.sh, init/stock-log.sh)


def _tasks():
    return os_env.load_tasks(shared_path("data", "agentbench", "os_interaction", "dev.json"))


@needs_bwrap
def test_oracle_passes_dev(tmp_path):
    tasks = _tasks()
    assert len(tasks) == 26
    eps = run_tasks(lambda: os_env.OSEnv(), os_env.OSOracle(), tasks, workers=2, out=tmp_path / "os.jsonl",
                    progress=False)
    failed = [(e.task_id, e.outcome.value, e.info) for e in eps if e.outcome != Outcome.SUCCESS]
    s = summarize(eps)
    assert s["success_rate"] >= 0.9, failed
    # our own versions of the three item scripts ship in agentlm/envs/os_scripts; without a root sandbox the
    # items whose scripts create users (18, 19, 20, 24) are set apart, with the reason
    root_items = set() if os_sandbox_root.root_problem() is None else {18, 19, 20, 24}
    assert {int(e.task_id.rsplit("_", 1)[1]) for e in eps if e.outcome == Outcome.UNSCORABLE} == root_items
    assert all("root sandbox unavailable" in e.info["unscorable"] for e in eps if e.outcome == Outcome.UNSCORABLE)


def test_missing_scripts_are_unscorable():
    env = os_env.OSEnv(scripts_dir=None)
    unscorable = set()
    for i, task in enumerate(_tasks()):
        try:
            env._plan(task.data)
        except TaskUnscorable as e:
            unscorable.add(i)
            assert "not in no scripts directory" in str(e)
    assert unscorable == SCRIPT_ITEMS


def test_builtin_checks():
    def c(name, a, r):
        return os_env.run_check(name, a, r)
    assert c("integer-match", " 6", "6\n") and not c("integer-match", "six", "6")
    assert c("size-match", "4K", "4.0K\n") and c("size-match", "1M", "1024K") and not c("size-match", "4K", "4M")
    assert c("string-match", "installed", "installed\n") and not c("string-match", "yes", "no")
    assert c("containing", "a b c", "b\r\n") and c("in", "b", "a b c") and not c("in", "a b c", "b")


def test_action_parsing():
    p = os_env.parse_action
    assert p("Think: x\n\nAct: bash\n\n```bash\nls /\n```") == ("bash", "ls /")
    assert p("Think: x\n\nAct: answer(42)") == ("answer", "42")
    assert p("Think: x\n\nAct: answer(f(1))") == ("answer", "f(1)")
    assert p("Act: finish") == ("finish", None)
    assert p("I would run ls") is None and p("Act: bash\nls") is None


@needs_bwrap
def test_episode_flow_and_outcomes():
    task = _tasks()[6]  # hidden files in /home, integer-match against the example's output
    with os_env.OSEnv() as env:
        prefix = env.reset(task)
        assert prefix[-1]["from"] == "human" and task.data["description"] in prefix[-1]["value"]
        r = env.step("Think: look\n\nAct: bash\n\n```bash\ncd /home && ls -a | grep '^\\.' | wc -l\n```")
        assert not r.done and r.observation.strip().endswith("8")
        r = env.step("Think: cwd persists\n\nAct: bash\n\n```bash\npwd\n```")
        assert r.observation.strip().endswith("/home")
        r = env.step("Think: long\n\nAct: bash\n\n```bash\nseq 1 100000\n```")
        assert len(r.observation) < os_env.OUTPUT_LIMIT + 100 and os_env.CUT_NOTE in r.observation
        assert env.step("Think: done\n\nAct: answer(7)").reward == 0.0
        env.reset(task)
        assert env.step("Act: answer(8)").reward == 1.0  # the example counts . and .. too
        env.reset(task)
        r = env.step("just text")
        assert r.done and r.invalid


@needs_bwrap
def test_item_scripts_get_the_answer_as_arguments(tmp_path):
    (tmp_path / "check").mkdir()
    (tmp_path / "check" / "is-42.sh").write_text('[ "$1" = "42" ] && [ "$(cat /root/mark)" = ok ] && echo first\n')
    (tmp_path / "check" / "is-42.py").write_text(  # gets the answer and the first check's output
        "import sys\nsys.exit(0 if sys.argv[1:] == ['42', 'first\\n'] else 1)\n")
    item = {"description": "Write ok to /root/mark and answer 42.", "create": {"init": "echo ok > /root/mark"},
            "evaluation": {"check": [{"file": "check/is-42.sh"}, {"language": "python", "file": "check/is-42.py"}]}}
    from agentlm.envs.base import Task
    task = Task("os_custom", "os", item)
    with os_env.OSEnv(scripts_dir=str(tmp_path)) as env:
        env.reset(task)
        assert env.step("Act: answer(42)").reward == 1.0
        # exit statuses are reported exactly, every time (checks are judged on them)
        codes = [env.sandbox.run(f"echo x; exit {i % 4}", shell_state=False)["exit"] for i in range(12)]
        assert codes == [i % 4 for i in range(12)]
        env.reset(task)
        assert env.step("Act: answer(41)").reward == 0.0


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


ROOT_REASON = os_sandbox_root.root_problem()


@needs_bwrap
@pytest.mark.parametrize("kind", ["plain", "root"])
def test_sandbox_attacks_fail(tmp_path, monkeypatch, kind):
    """The same attacks on both machines: the plain sandbox and the root-like one (uid 0 with 65536 ids)."""
    if kind == "root" and ROOT_REASON:
        pytest.skip(f"root sandbox unavailable: {ROOT_REASON}")
    make = Sandbox if kind == "plain" else os_sandbox_root.RootSandbox
    secret = f"agentlm-secret-{os.getpid()}"
    secret_file = pathlib.Path("/root") / f".agentlm_test_secret_{os.getpid()}"
    outside = tmp_path / "outside.txt"
    monkeypatch.setenv("AGENTLM_TEST_TOKEN", secret)
    before = {p: _digest(p) for p in ("/etc/passwd", "/etc/group")}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    victim = subprocess.Popen(["sleep", "300"])
    try:
        try:
            secret_file.write_text(secret)
        except OSError:
            secret_file = None
        limits = SandboxLimits(command_timeout=4, processes=64, address_space=512 << 20, tmpfs_bytes=32 << 20,
                               memory_bytes=512 << 20)
        with make(limits) as box:
            def run(cmd, **kw):
                t = time.monotonic()
                r = box.run(cmd, **kw)
                assert time.monotonic() - t < 20, cmd
                return r

            # writes outside land nowhere on the host
            run(f"echo x > {outside}; echo x > /usr/bin/agentlm_pwned; echo x > /.agentlm/etc/passwd;"
                " useradd mallory; echo 'root::0:0::/root:/bin/bash' >> /etc/passwd")
            assert not outside.exists() and not pathlib.Path("/usr/bin/agentlm_pwned").exists()
            # host secrets: files, environment, the project tree
            r = run(f"cat /root/.agentlm_test_secret_* 2>&1; env; cat /etc/shadow; ls /work 2>&1;"
                    f" grep -rs {secret} / --exclude-dir=proc 2>/dev/null | head -3")
            assert secret not in r["output"]
            assert "$" not in "".join(line.split(":")[1] for line in run("cat /etc/shadow")["output"].splitlines())
            # network: neither the internet nor the host's loopback
            r = run(f"python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)\" 2>&1;"
                    f" (echo hi > /dev/tcp/127.0.0.1/{port}) 2>&1; echo rc=$?")
            assert "rc=1" in r["output"] and ("unreachable" in r["output"] or "Errno" in r["output"])
            with pytest.raises(socket.timeout):
                listener.accept()
            # fork bomb, memory hog, infinite loop, huge output, disk fill: all stopped
            if box.cgroup is not None:  # many processes, each under its own limit, together over the ceiling
                hog = ("import os\nkids = []\nfor i in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
                       "        x = bytearray(300 << 20)\n        x[::4096] = b'x' * len(x[::4096])\n        os._exit(0)\n"
                       "    kids.append(pid)\nprint(sum(os.waitpid(k, 0)[1] == 0 for k in kids), 'survived')")
                r = run(f"python3 -c \"{hog}\" 2>&1", timeout=30)
                assert "survived" in r["output"] and int(r["output"].split()[0]) < 4, r["output"]
            run(":(){ :|:& };:")
            assert run("echo alive", timeout=10)["output"].strip() == "alive"
            assert int(run("ps -e --no-headers | wc -l")["output"]) < 16  # the bomb's processes are gone
            r = run("for i in $(seq 200); do sleep 30 & done; wait", timeout=4)
            assert r["timed_out"] or "fork" in r["output"] or "Resource temporarily" in r["output"]
            r = run("python3 -c \"x = bytearray(3 << 30); print('allocated')\" 2>&1")
            assert "allocated" not in r["output"] and "MemoryError" in r["output"]
            assert run("while true; do :; done")["timed_out"]
            r = run("yes agentlm")
            assert r["truncated"] and len(r["output"]) <= limits.max_output, {k: str(v)[:300] for k, v in r.items()}
            r = run("dd if=/dev/zero of=/root/fill bs=1M count=200 2>&1")
            assert "No space left" in r["output"] or "File too large" in r["output"]
            # the machine still answers after all of it
            assert run("echo alive", timeout=10)["output"].strip() == "alive"
            # killing: host processes are invisible and out of reach, even for kill -1
            try:
                run(f"kill -9 {victim.pid}; pkill sleep; kill -9 -1", timeout=5)
            except SandboxError:
                pass  # kill -1 takes the sandbox's own command server down with everything else in it
        assert victim.poll() is None, "a host process was killed from inside the sandbox"
        assert {p: _digest(p) for p in before} == before
    finally:
        victim.kill()
        listener.close()
        if secret_file:
            secret_file.unlink(missing_ok=True)
