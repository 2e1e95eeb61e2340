"""agentlm.cpu_tuning: the detected CPU kind picks the XLA flags; a user's own settings always win."""
import os
import subprocess
import sys

import pytest

from agentlm import cpu_tuning

INTEL_AMX = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile\n"
AMD_ZEN4 = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 fma avx512f avx512_bf16 avx512_vnni\n"
AMD_ZEN2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nmodel name\t: x\n"


@pytest.mark.parametrize("text,kind", [(INTEL_AMX, "amx"), (AMD_ZEN4, "avx512_bf16"), (AMD_ZEN2, "avx2"),
                                       ("", "other")])
def test_kind_is_the_strongest_unit_reported(text, kind):
    info = cpu_tuning.detect(text)
    assert info.kind == kind and kind in cpu_tuning.TUNING
    assert info.model and info.model != "x"  # the first processor's name


def test_settings_auto_off_and_explicit(monkeypatch):
    info = cpu_tuning.detect(AMD_ZEN2)
    monkeypatch.setitem(cpu_tuning.TUNING, "avx2", ("--xla_cpu_use_onednn=true",))
    assert cpu_tuning.chosen_flags(info, "auto") == ("--xla_cpu_use_onednn=true",)
    assert cpu_tuning.chosen_flags(info, "off") == ()
    assert cpu_tuning.chosen_flags(info, "--xla_cpu_enable_fast_math=false") == ("--xla_cpu_enable_fast_math=false",)
    with pytest.raises(ValueError, match="CPU tuning .fast.: expected auto, off"):
        cpu_tuning.chosen_flags(info, "fast")


def test_apply_adds_flags_in_a_fresh_process_and_never_overrides_the_user():
    """jax reads XLA_FLAGS when its backend starts, so apply() runs in a process of its own here."""
    code = ("import os; from agentlm import cpu_tuning as c; c.TUNING[c.detect().kind] = "
            "('--xla_cpu_use_onednn=true', '--xla_cpu_enable_fast_math=false');"
            "line = c.apply(); import jax; jax.numpy.ones(2).block_until_ready();"
            "print(os.environ['XLA_FLAGS']); print(line)")
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_use_onednn=false", "AGENTLM_CPU_TUNING": "auto",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    flags, line = out.stdout.strip().splitlines()[-2:]
    assert flags.split() == ["--xla_cpu_use_onednn=false", "--xla_cpu_enable_fast_math=false"]
    assert line.startswith("cpu: ") and "NOT applied" not in line


def test_apply_after_the_backend_started_says_so(monkeypatch):
    import jax

    jax.numpy.ones(1).block_until_ready()
    monkeypatch.setenv("XLA_FLAGS", "")
    line = cpu_tuning.apply("--xla_cpu_enable_fast_math=false")
    assert "NOT applied" in line and "fast_math" not in os.environ["XLA_FLAGS"]
