"""Throughput accounting (FLOPs, MFU), the device peak, and the metric sinks (JSONL, TensorBoard).

FLOPs per step follow MaxText's formula (../shared/DESIGN.md section 7): 3 x [L x (qkv + out + ffn) + 2BSEV] +
attention, with attention = 3L x 4BS^2 Hq D / 2 for causal masking. The 3 is forward + backward (2x forward).
"""
from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp

from agentlm import storage
from agentlm.model import LlamaConfig


def flops_per_step(cfg: LlamaConfig, batch: int, seq: int) -> float:
    b, s, e, m, v = batch, seq, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    hq, hkv, d, layers = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.num_layers
    qkv = 2 * b * s * e * (hq + 2 * hkv) * d
    out = 2 * b * s * e * hq * d
    ffn = 2 * b * s * m * e * 3
    attention = 3 * layers * 4 * b * s * s * hq * d / 2
    return 3 * (layers * (qkv + out + ffn) + 2 * b * s * e * v) + attention


def measure_matmul_flops(n: int = 2048, repeats: int = 3) -> float:
    """Best-of-`repeats` FLOP/s of an n^3 float32 matmul on the first local device (a practical peak)."""
    device = jax.local_devices()[0]
    a = jax.device_put(jnp.ones((n, n), jnp.float32), device)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def total_peak_flops(peak_per_device: float) -> tuple[float, str]:
    """Peak FLOP/s of the whole job and where the number came from.

    On CPU the "devices" are simulated slices of the same cores, so the host's measured peak is counted once per
    process rather than once per device.
    """
    source = "config"
    if peak_per_device <= 0:
        peak_per_device, source = measure_matmul_flops(), "measured f32 matmul"
    if jax.devices()[0].platform == "cpu":
        return peak_per_device * jax.process_count(), source + " (per CPU host)"
    return peak_per_device * jax.device_count(), source


class MetricWriter:
    """JSONL (one object per logged step, appended across restarts) and optional TensorBoard, process 0 only.

    Both sinks accept a bucket URL: the JSONL through `storage.AppendLog`, TensorBoard through tensorboardX's own
    gs:// writer (google-cloud-storage)."""

    def __init__(self, run_dir, tensorboard: bool, enabled: bool):
        self.enabled = enabled
        self.jsonl = None
        self.tb = None
        if not enabled:
            return
        self.jsonl = storage.AppendLog(storage.path(run_dir) / "metrics.jsonl")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: (float(v) if not isinstance(v, str) else v) for k, v in metrics.items()}}
        self.jsonl.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k != "step" and not isinstance(v, str):
                    self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def flush(self) -> None:
        if self.jsonl is not None:
            self.jsonl.flush()

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
