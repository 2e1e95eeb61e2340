"""XLA:CPU settings chosen per CPU kind at start-up, because the fastest settings differ between CPUs.

The project's machines change CPU from session to session (AMD AVX2, AMD AVX-512 with BF16, Intel AVX-512 with
AMX), and XLA's CPU options (oneDNN / XNNPACK dot fusion, vector width) help on some and hurt on others. So the
choice is a table keyed by the detected kind, read once before jax creates its CPU backend, printed in the run
header, and overridable:

    AGENTLM_CPU_TUNING=auto     (default) the table's flags for the detected kind
    AGENTLM_CPU_TUNING=off      no flags added
    AGENTLM_CPU_TUNING="--xla_cpu_use_onednn=true ..."   exactly these flags

Flags already present in XLA_FLAGS always win over the table's (a user's explicit setting is never overridden).
Each row of TUNING is there because a measurement chose it (benchmarks/xla_flags.py; the figures are in
benchmarks/RESULTS.md); a kind with no measured gain gets no flags.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import platform

ENV = "AGENTLM_CPU_TUNING"

# kind -> XLA flags. Keep in step with benchmarks/RESULTS.md ("CPU settings"), which holds the measurements.
TUNING: dict[str, tuple[str, ...]] = {
    "amx": (),            # Intel AVX-512 + AMX: not yet measured with benchmarks/xla_flags.py
    "avx512_bf16": (),    # AMD Zen 4 class: no flag beat the default (RESULTS.md, CPU settings)
    "avx512": (),
    "avx2": (),
    "other": (),
}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    nproc: int

    @property
    def kind(self) -> str:
        """The most capable matrix/vector unit the CPU reports, the key of TUNING."""
        if {"amx_bf16", "amx_tile"} <= self.flags:
            return "amx"
        if "avx512_bf16" in self.flags:
            return "avx512_bf16"
        if "avx512f" in self.flags:
            return "avx512"
        if "avx2" in self.flags:
            return "avx2"
        return "other"

    @property
    def isa(self) -> str:
        wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
        return "+".join(f for f in wanted if f in self.flags) or "none of " + "/".join(wanted)

    def describe(self) -> str:
        return f"{self.model} (nproc {self.nproc}, kind {self.kind}, {self.isa})"


def detect(cpuinfo: str | None = None) -> CpuInfo:
    """Reads /proc/cpuinfo (the first processor's model name and flags); elsewhere, what platform knows."""
    if cpuinfo is None:
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags = "", frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    model = model or platform.processor() or "unknown CPU"
    return CpuInfo(model, flags, os.cpu_count() or 1)


def _flag_name(flag: str) -> str:
    return flag.split("=", 1)[0].strip()


def chosen_flags(info: CpuInfo, setting: str | None = None) -> tuple[str, ...]:
    """The flags `setting` (auto / off / an explicit flag string; default: $AGENTLM_CPU_TUNING or auto) selects."""
    setting = (setting if setting is not None else os.environ.get(ENV, "auto")).strip()
    if setting in ("", "auto"):
        return TUNING[info.kind]
    if setting == "off":
        return ()
    flags = tuple(setting.split())
    bad = [f for f in flags if not f.startswith("--xla_")]
    if bad:
        raise ValueError(f"CPU tuning {setting!r}: expected auto, off or XLA flags (--xla_...), got {bad}")
    return flags


def apply(setting: str | None = None, info: CpuInfo | None = None) -> str:
    """Adds the chosen flags to XLA_FLAGS (before jax's CPU backend exists) and returns the header line.

    Too late (a backend already created) is not an error: the line then says the flags were not applied, so a
    run header never claims settings the process does not have.
    """
    info = info or detect()
    flags = chosen_flags(info, setting)
    current = os.environ.get("XLA_FLAGS", "")
    present = {_flag_name(f) for f in current.split()}
    added = [f for f in flags if _flag_name(f) not in present]
    note = ""
    if added:
        if _backends_exist():
            note = " (NOT applied: jax's backend was created first)"
        else:
            os.environ["XLA_FLAGS"] = " ".join(current.split() + added)
    shown = os.environ.get("XLA_FLAGS", "") or "(none)"
    return f"cpu: {info.describe()}; tuning {setting or os.environ.get(ENV, 'auto')}: XLA_FLAGS {shown}{note}"


def _backends_exist() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()
