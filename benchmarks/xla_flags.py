"""Which XLA:CPU flags make agentlm's training step fast on this CPU: the measurement behind agentlm.cpu_tuning.

    python benchmarks/xla_flags.py                                   # bench_20m, fp32 and bf16, the candidates below
    python benchmarks/xla_flags.py --presets tiny --batch 2 --seq 64 --steps 1 --candidates none   # smoke size

XLA flags are read once per process, so each candidate runs `train.py` in a child process with that XLA_FLAGS
(and AGENTLM_CPU_TUNING=off, so the table under test does not add its own). Inside each child agentlm and
transformers alternate step by step as usual, and the comparison between candidates is made on the ratio to
transformers, not on raw tokens/s: the children run minutes apart on a shared machine, and the in-process
reference absorbs most of the load change. Pick a flag for agentlm.cpu_tuning.TUNING only when its ratio beats
`none` by more than the spread of repeated `none` runs (`--candidates none,none,...` measures that spread).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import common
from common import print_header, table

CANDIDATES = {
    "none": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn_custom_call": "--xla_cpu_experimental_onednn_custom_call=true",
    "xnn_dot": "--xla_cpu_experimental_xnn_fusion_type=dot",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "ynn_dot": "--xla_cpu_experimental_ynn_fusion_type=dot",
    "vector512": "--xla_cpu_prefer_vector_width=512",
    "fast_math": "--xla_cpu_enable_fast_math=true",
}
HEADER = ["candidate", "XLA_FLAGS", "preset dtype", "ratio vs transformers", "agentlm tokens/s", "matmul jax/torch"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--candidates", default="none,onednn,onednn_custom_call,xnn_dot,vector512,none",
                   help=f"comma-separated names from {sorted(CANDIDATES)} (repeat `none` to see the spread)")
    p.add_argument("--presets", default="bench_20m")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--matmul_n", type=int, default=2048)
    return p.parse_args(argv)


def run_candidate(name: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "rows.json"
        env = {**os.environ, "XLA_FLAGS": CANDIDATES[name], "AGENTLM_CPU_TUNING": "off"}
        cmd = [sys.executable, str(common.ROOT / "benchmarks" / "train.py"), "--presets", args.presets,
               "--dtypes", args.dtypes, "--batch", str(args.batch), "--seq", str(args.seq), "--steps",
               str(args.steps), "--warmup", "1", "--matmul_n", str(args.matmul_n), "--json", str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        return json.loads(out.read_text())


def main(argv=None):
    args = parse_args(argv)
    unknown = [c for c in args.candidates.split(",") if c not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; known: {sorted(CANDIDATES)}")
    print_header(f"XLA:CPU flag candidates: train step {args.presets} batch {args.batch} x {args.seq}, "
                 f"{args.steps} steps per side per candidate")
    rows = []
    for name in args.candidates.split(","):
        result = run_candidate(name, args)
        if "error" in result:
            rows.append([name, CANDIDATES[name] or "(none)", "failed", "", "", " ".join(result["error"])])
            print(table(HEADER, rows[-1:]), flush=True)
            continue
        for record in result["rows"]:
            if record["impl"] != "**ratio**":
                continue
            dtype = record["dtype"]
            agent = next(r for r in result["rows"] if r["impl"] == "agentlm" and r["dtype"] == dtype
                         and r["preset"] == record["preset"])
            peak = result["peaks"][dtype]
            rows.append([name, CANDIDATES[name] or "(none)", f"{record['preset']} {dtype}",
                         f"{record['tokens/s']:.2f}x", f"{agent['tokens/s']:,.0f}",
                         f"{peak['jax'] / 1e9:.0f}/{peak['torch'] / 1e9:.0f} GFLOP/s"])
        print(table(HEADER, rows[-len(args.dtypes.split(",")):]), flush=True)
    print("\nall candidates:")
    print(table(HEADER, rows))
    return rows


if __name__ == "__main__":
    main()
