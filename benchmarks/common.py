"""Shared pieces of the side-by-side benchmarks (agentlm vs Hugging Face transformers on CPU).

Why interleave: the machine is 2 cores shared with other work, so absolute rates wander by 2x within minutes.
Every benchmark alternates agentlm and the reference (A, B, A, B, ...) inside one process and reports medians and
their ratio; a load spike then hits both sides about equally and the ratio stays meaningful.
"""
from __future__ import annotations

import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def configure_threads() -> int:
    """torch uses every core (its default is physical cores, which can be 1 on a 2-vCPU VM)."""
    import torch

    n = os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def interleaved(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1, desc: str = "") -> dict:
    """Seconds per call of each fn: `warmup` untimed rounds, then `repeats` rounds of A, B, A, B...

    Returns {name: sorted list of seconds}. Each fn must block until its work is done.
    """
    from tqdm import tqdm

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in tqdm(range(repeats), desc=desc or "timing", leave=False, disable=repeats < 3):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: sorted(v) for k, v in times.items()}


def timed(label: str, fn, width: int = 60):
    """Runs fn once and prints how long it took (the environment benchmarks time whole stages, not kernels)."""
    start = time.perf_counter()
    out = fn()
    print(f"{label:{width}s} {time.perf_counter() - start:8.1f} s")
    return out


def median(xs) -> float:
    return statistics.median(xs)


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> dict[str, float]:
    """FLOP/s of an n^3 matmul in jax and in torch, interleaved; the best of each (a practical peak).

    bfloat16 inputs accumulate in float32 on both sides (jax: preferred_element_type), as the model's dots do.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    a_np = np.random.default_rng(0).standard_normal((n, n), np.float32)
    a_jax = jnp.asarray(a_np, dtype)
    mm = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
    a_t = torch.from_numpy(a_np).to(getattr(torch, dtype))
    times = interleaved({"jax": lambda: mm(a_jax).block_until_ready(), "torch": lambda: torch.mm(a_t, a_t)},
                        repeats, warmup=1, desc=f"matmul peak {dtype}")
    return {k: 2 * n ** 3 / v[0] for k, v in times.items()}


def machine() -> dict[str, str]:
    from agentlm import cpu_tuning

    info = cpu_tuning.detect()
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return {"nproc": str(info.nproc), "cpu": info.model, "kind": info.kind, "isa": info.isa, "load(1,5,15m)": load}


def versions() -> dict[str, str]:
    import flax
    import jax
    import torch
    import transformers

    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "torch": torch.__version__, "transformers": transformers.__version__}


def print_header(title: str) -> None:
    print(f"# {title}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine().items()))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print("XLA_FLAGS: " + os.environ.get("XLA_FLAGS", "(unset)"))


def apply_cpu_tuning() -> None:
    """The benchmarks run with the settings a user's run gets (agentlm.cpu_tuning), before jax starts its backend."""
    from agentlm import cpu_tuning

    print(cpu_tuning.apply())


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (pasted into RESULTS.md as is)."""
    fmt = lambda x: f"{x:,.3g}" if isinstance(x, float) and abs(x) < 10 else (f"{x:,.0f}" if isinstance(x, float)
                                                                               else str(x))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def hf_llama(cfg, torch_dtype=None):
    """transformers' LlamaForCausalLM with the same architecture as an agentlm LlamaConfig (random weights)."""
    import torch
    import transformers

    hf_cfg = transformers.LlamaConfig.from_dict({**cfg.to_hf(), "pad_token_id": 0})
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(hf_cfg)
    return model.to(torch_dtype or torch.float32)
