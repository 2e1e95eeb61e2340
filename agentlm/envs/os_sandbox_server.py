"""Runs inside the OS sandbox (as its first process, with the system python3): executes shell commands on request.

Kept free of project imports: it is bind-mounted read-only into a sandbox that has no view of the project.
Protocol: one JSON request per line on stdin, one JSON reply per line on stdout.
  {"op": "setup"}                                  copy the staged /etc into the sandbox's own /etc (not with
                                                   --keep-etc: the root sandbox has a whole Debian /etc of its own)
  {"op": "run", "cmd", "timeout", "max_output", "shell_state"}  -> {"output", "exit", "timed_out", "truncated"}
  {"op": "spawn", "cmd", "interpreter"}            start a background process (the item's `start`)
With shell_state, the working directory and exported variables carry over between commands, as in a terminal.
"""
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import time

STATE = "/run/agentlm"
LIMITS = {}
KEEP_ETC = "--keep-etc" in sys.argv[2:]


def limits():
    os.setsid()
    for name, value in LIMITS.items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):
            pass


def run(req):
    _sweep()
    cmd, timeout, cap = req["cmd"], float(req.get("timeout", 10)), int(req.get("max_output", 65536))
    if req.get("shell_state"):
        with open(f"{STATE}/cmd.sh", "w") as f:
            f.write(cmd + "\n")
        script = (f'cd "$(cat {STATE}/cwd 2>/dev/null || echo /root)" 2>/dev/null; '
                  f'[ -f {STATE}/env ] && . {STATE}/env 2>/dev/null; '
                  f'__agentlm_cmd=$(cat {STATE}/cmd.sh); rm -f {STATE}/cmd.sh; eval "$__agentlm_cmd"; __rc=$?; '
                  f'pwd > {STATE}/cwd; export -p > {STATE}/env; exit $__rc')  # (the command text stays off disk)
    else:
        script = cmd
    extra = [str(a) for a in req.get("args", [])]
    if req.get("interpreter") == "python3":
        args = ["python3", "-c", script] + extra  # sys.argv[1:] are the arguments
    else:
        args = ["bash", "-c", script, "script"] + extra  # $0 is a name, $1... the arguments
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd="/root", preexec_fn=limits)
    fd = proc.stdout.fileno()
    out, truncated, timed_out = bytearray(), False, False
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                del out[cap:]
                truncated = True
                break
        elif proc.poll() is not None:
            break  # exited, and nothing is left to read (background children may hold the pipe open)
        if time.monotonic() > deadline:
            timed_out = True
            break
    if not (timed_out or truncated):
        try:  # end of output comes a moment before the exit status
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True  # it closed its output but kept running
    if proc.poll() is None:
        _kill_group(proc.pid)
    code = proc.wait()
    _sweep()
    return {"output": out.decode("utf-8", "replace"), "exit": code, "timed_out": timed_out, "truncated": truncated}


def _groups():
    """Live (non-zombie) processes per process group."""
    counts = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                counts[int(fields[2])] = counts.get(int(fields[2]), 0) + 1
    return counts


def _sweep():
    """Background processes a command leaves behind keep running (servers the agent starts), unless a group of
    them is large or they crowd the sandbox's process limit: then they are a fork bomb and their group goes."""
    limit = LIMITS.get("RLIMIT_NPROC") or 1 << 30
    own = os.getpgrp()
    for _ in range(10):
        groups = {g: n for g, n in _groups().items() if g not in (own, 1, 0)}
        crowded = sum(groups.values()) + 2 >= 0.5 * limit
        doomed = [g for g, n in groups.items() if n >= 16 or (crowded and n == max(groups.values()))]
        for g in doomed:
            _kill_group(g)
        if not doomed:
            if not any(n >= 4 for n in groups.values()):
                return
            time.sleep(0.05)  # a group that is still growing may be a fork bomb getting started: look again


def _kill_group(pgid):
    for _ in range(20):  # a fork bomb may fork between signals: repeat until the group is empty
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.02)  # (never reap here: waitpid(-1) could take the exit status Popen.wait needs)


def spawn(req):
    args = ["python3", "-c", req["cmd"]] if req.get("interpreter") == "python3" else ["bash", "-c", req["cmd"]]
    subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, cwd="/root", preexec_fn=limits)
    return {"ok": True}


def setup(req):
    src = "/.agentlm/etc"
    for name in [] if KEEP_ETC else os.listdir(src):
        s, d = os.path.join(src, name), os.path.join("/etc", name)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, d, symlinks=True)
        else:
            shutil.copy2(s, d, follow_symlinks=False)
    os.makedirs(STATE, exist_ok=True)
    if KEEP_ETC:  # the root sandbox's own Debian /etc: name the host, as a container's /etc/hosts does
        with open("/etc/hosts", "a") as f:
            f.write("127.0.1.1\tsandbox\n")
        with open("/etc/hostname", "w") as f:
            f.write("sandbox\n")
    return {"ok": True}


def main():
    LIMITS.update({k: int(v) for k, v in json.loads(sys.argv[1]).items()})
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = {"setup": setup, "run": run, "spawn": spawn}[req["op"]](req)
        except Exception as e:  # noqa: BLE001 -- reported to the host, which decides
            reply = {"error": repr(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        # reap finished background children so they do not pile up as zombies
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


if __name__ == "__main__":
    main()
