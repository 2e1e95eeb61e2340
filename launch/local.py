"""Runs one command as N cooperating JAX processes on this machine: a multi-host job without the hosts.

    python -m launch.local --num_processes 2 --devices_per_process 4 -- python -m agentlm.train --config ...

Each process gets a CPU backend with `devices_per_process` simulated devices (XLA_FLAGS), the coordinator
address 127.0.0.1:<free port>, its process id and the process count (AGENTLM_* variables, read by
agentlm.distributed). Output lines are streamed with a `[pN]` prefix. When any process fails, the
others are terminated and the launcher exits with the failing process's code; SIGINT/SIGTERM are forwarded.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ENV_COORDINATOR = "AGENTLM_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "AGENTLM_NUM_PROCESSES"
ENV_PROCESS_ID = "AGENTLM_PROCESS_ID"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(base: dict, process_id: int, num_processes: int, port: int, devices: int) -> dict:
    env = dict(base)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
    env["JAX_PLATFORMS"] = env.get("LAUNCH_PLATFORMS", "cpu")
    env[ENV_COORDINATOR] = f"127.0.0.1:{port}"
    env[ENV_NUM_PROCESSES] = str(num_processes)
    env[ENV_PROCESS_ID] = str(process_id)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stream(proc: subprocess.Popen, prefix: str, out) -> None:
    for line in iter(proc.stdout.readline, ""):
        out.write(f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")
        out.flush()


def launch(command: list[str], num_processes: int, devices_per_process: int, out=sys.stdout,
           timeout: float | None = None) -> int:
    """Starts the processes, streams their output, returns 0 or the first failing exit code."""
    if num_processes < 1 or devices_per_process < 1:
        raise ValueError("--num_processes and --devices_per_process must be >= 1")
    if not command:
        raise ValueError("no command given; put it after `--`")
    port = free_port()
    procs = []
    for pid in range(num_processes):
        env = process_env(os.environ, pid, num_processes, port, devices_per_process)
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      bufsize=1, start_new_session=True))
    threads = [threading.Thread(target=_stream, args=(p, f"[p{i}]", out), daemon=True) for i, p in enumerate(procs)]
    for t in threads:
        t.start()

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if timeout is None else time.monotonic() + timeout
    code = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                out.write(f"[launch] process {i} exited with code {code}; stopping the others\n")
                break
            if all(c == 0 for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                out.write(f"[launch] timed out after {timeout} s; stopping all processes\n")
                code = 124
                break
            time.sleep(0.2)
    finally:
        _terminate(procs)
        for t in threads:
            t.join(timeout=5)
        for s, h in previous.items():
            signal.signal(s, h)
    return code


def _terminate(procs, grace: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(end - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        split = argv.index("--")
        own, command = argv[:split], argv[split + 1:]
    else:
        own, command = argv, []
    parser = argparse.ArgumentParser(prog="python -m launch.local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_processes", type=int, default=2, help="processes to start (default 2)")
    parser.add_argument("--devices_per_process", type=int, default=4,
                        help="simulated CPU devices per process (default 4)")
    parser.add_argument("--timeout", type=float, default=None, help="kill everything after this many seconds")
    args = parser.parse_args(own)
    if not command:
        parser.error("no command given; usage: python -m launch.local [options] -- <command ...>")
    return launch(command, args.num_processes, args.devices_per_process, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
