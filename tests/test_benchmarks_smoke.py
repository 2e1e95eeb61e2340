"""The benchmark scripts still run end to end (toy sizes, one step); they time nothing here.

Speed is measured by running benchmarks/*.py by hand (see benchmarks/RESULTS.md), never asserted in tests.
"""
import math
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_train_benchmark_runs_both_sides_in_both_precisions():
    import train

    rows = train.main(["--presets", "tiny", "--batch", "2", "--seq", "32", "--steps", "1", "--warmup", "1",
                       "--matmul_n", "64"])
    assert [(r[2], r[3]) for r in rows] == [(d, impl) for d in ("float32", "bfloat16")
                                            for impl in ("agentlm", "transformers", "**ratio**")]
    assert all(r[4] > 0 and math.isfinite(r[4]) for r in rows)


@pytest.mark.slow  # a child process per candidate, each compiling both precisions
def test_xla_flags_benchmark_compares_candidates():
    import xla_flags

    rows = xla_flags.main(["--presets", "tiny", "--batch", "2", "--seq", "32", "--steps", "1", "--matmul_n", "64",
                           "--candidates", "none,onednn", "--dtypes", "float32"])
    assert [r[0] for r in rows] == ["none", "onednn"]
    assert all(r[3].endswith("x") and float(r[3][:-1]) > 0 for r in rows), rows


def test_generate_benchmark_runs_both_sides():
    import generate

    rows = generate.main(["--preset", "tiny", "--batches", "2", "--prompt", "5", "--new", "3", "--repeats", "1"])
    assert [r[1] for r in rows] == ["agentlm", "transformers", "**ratio**"]
    assert all(r[3] > 0 for r in rows[:2])  # time to first token


def test_data_benchmark_runs(shared):
    shared("data", "agentinstruct")
    out = subprocess.run([sys.executable, str(BENCH / "data.py"), "--config", "configs/mixture/tiny.py",
                          "--seq_len", "2048", "--batch_size", "1", "--batches", "2", "--resume_steps", "3",
                          "--render_conversations", "5", "--trainer_tokens_per_s", "1000"],
                         cwd=BENCH.parent, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for word in ("load", "render", "packed", "resume", "ratio"):
        assert f"\n{word} " in "\n" + out.stdout, out.stdout


@pytest.mark.slow  # two servers compiling their shapes
def test_serve_benchmark_runs_both_sides():
    import serve

    rows = serve.main(["--preset", "tiny", "--clients", "4", "--requests", "1", "--prompt", "4", "--new", "2",
                       "--rounds", "1"])
    assert [r[0] for r in rows] == ["batched", "serial", "**ratio**"]
    assert all(r[1] > 0 and r[2] > 0 for r in rows[:2]) and rows[1][3] == 1.0  # serial: one row per call
