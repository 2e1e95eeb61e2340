"""Malformed configs fail before any device work, naming the field; the shipped configs say what the paper says."""
import os
import pathlib
import subprocess
import sys
import time

import pytest

from agentlm.configfile import load_config_file
from agentlm.train.config import ConfigError, default_config, validate

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load(name):
    return load_config_file(ROOT / "configs" / "train" / f"{name}.py")


def _set(config, dotted, value):
    *parents, leaf = dotted.split(".")
    for p in parents:
        config = config[p]
    config[leaf] = value


@pytest.mark.parametrize("field,value,message", [
    ("data.mixture.eta", 1.5, "config.data.mixture.eta=1.5: must be in [0, 1]"),
    ("data.mixture.eta", -0.1, "config.data.mixture.eta=-0.1"),
    ("mesh.fsdp", 3, "config.mesh="),
    ("mesh.tensor", 16, "config.mesh="),
    ("init_from", "/nonexistent/llama2_7b", "config.init_from='/nonexistent/llama2_7b': does not exist"),
    ("train.grad_accum", 3, "config.train.grad_accum=3: does not divide data.global_batch_size=16"),
    ("optimizer.warmup_steps", 1000, "config.optimizer.warmup_steps=1000"),
    ("optimizer.schedule", "exponential", "config.optimizer.schedule='exponential'"),
    ("data.source", "files", "config.data.source='files'"),
    ("data.seq_len", 4096, "config.data.seq_len=4096: exceeds the model's max_position_embeddings=1024"),
    ("model.remat_policy", "some", "config.model: invalid LlamaConfig: remat_policy='some'"),
    ("model.preset", "llama3", "config.model.preset='llama3'"),
    ("data.global_batch_size", 12, "config.data.global_batch_size=12: the microbatch of 12 rows"),
])
def test_malformed_config_names_the_field(field, value, message):
    config = load("tiny_cpu")
    _set(config, field, value)
    with pytest.raises(ConfigError) as err:
        validate(config, num_devices=8)
    assert message in str(err.value)


def test_parameter_that_does_not_divide_the_mesh_is_named():
    config = load("tiny_cpu")
    config.mesh.fsdp, config.mesh.tensor = 1, 8  # tiny has 4 KV heads: k_proj cannot split 8 ways
    with pytest.raises(ConfigError, match=r"config.mesh=.*k_proj.*does not divide"):
        validate(config, num_devices=8)


def test_init_from_without_model_config(tmp_path):
    config = load("tiny_cpu")
    config.init_from = str(tmp_path)
    with pytest.raises(ConfigError, match="has no model_config.json"):
        validate(config, num_devices=8)


def test_missing_mixture_files_are_named(tmp_path):
    config = load("tiny_cpu")
    config.data.source = "mixture"
    config.data.mixture.agent_paths = [str(tmp_path / "nope.jsonl")]
    with pytest.raises(ConfigError, match=r"config.data.mixture.agent_paths=.*nope.jsonl does not exist"):
        validate(config, num_devices=8)


def test_cli_rejects_bad_config_before_compute(tmp_path):
    """The command line exits 2 with the field in the message, and nothing is written to the run directory."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "agentlm.train", f"--config.run_dir={tmp_path / 'run'}",
                           "--config.data.mixture.eta=1.5"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "config.data.mixture.eta=1.5" in proc.stderr
    assert not (tmp_path / "run").exists()
    assert time.time() - t0 < 60


def test_paper_configs():
    for name, lr in (("llama2_7b", 5e-5), ("llama2_13b", 5e-5), ("llama2_70b", 1e-5)):
        c = load(name)
        assert (c.optimizer.lr, c.data.global_batch_size, c.data.seq_len, c.data.mixture.eta) == (lr, 64, 4096, 0.2)
        assert (c.model.dtype, c.model.param_dtype, c.data.source) == ("bfloat16", "float32", "mixture")
        # The architecture comes from the converted checkpoint; check the preset of the same size shards on 64 chips.
        c.init_from, c.model.preset, c.data.source = "", name, "synthetic"
        cfg = validate(c, num_devices=64)
        assert cfg.num_params() > 6e9 and cfg.compute_dtype.name == "bfloat16"


def test_default_config_is_valid():
    assert validate(default_config(), num_devices=8).vocab_size == 512
    assert validate(load("tiny_cpu"), num_devices=1).num_layers == 2
