"""An installed package builds its own defaults: the trainer's default run, the agent and general evaluations'
default configs and the OS environment's item scripts all come from the package (code or package data), never
from the checkout's configs/.

The package is built into a wheel from a copy of the source (pyproject.toml's package data included), the wheel
is unpacked into a temporary site directory, and a fresh interpreter that cannot see the checkout (run from the
temporary directory with -P and only that site directory on PYTHONPATH) builds every default there.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

PROBE = r"""
import json, pathlib, sys
import agentlm
from agentlm import configfile
from agentlm.envs import os_env
from agentlm.eval import agent_config, general_config
from agentlm.train import builtin_config
from agentlm.train.config import validate

train = configfile.load_config_file(builtin_config.__file__)
model = validate(train, num_devices=1)
agent = configfile.load_config_file(agent_config.__file__)
general = configfile.load_config_file(general_config.__file__)
scripts = pathlib.Path(os_env.DEFAULT_SCRIPTS)
print(json.dumps({
    "package": agentlm.__file__, "train_default": builtin_config.__file__, "eval_defaults":
    [agent_config.__file__, general_config.__file__], "scripts": str(scripts),
    "script_files": sorted(str(p.relative_to(scripts)) for p in scripts.rglob("*.sh")),
    "train": {"preset": train.model.preset, "source": train.data.source, "eta": train.data.mixture.eta,
              "layers": model.num_layers},
    "agent_tasks": agent.tasks, "agent_sections": sorted(k for k in agent if k in ("db", "os", "household")),
    "general_benchmarks": general.benchmarks,
}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    """The package as pip would install it: a wheel built from a copy of the sources, unpacked."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "agentlm", src / "agentlm", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(base / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not available to build the wheel")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = (base / "dist").glob("agentlm-*.whl")
    out = base / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(out)
    return out


def _isolated(site: pathlib.Path, cwd: pathlib.Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), JAX_PLATFORMS="cpu", XLA_FLAGS="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-P", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_ships_the_defaults_and_builds_them_without_a_checkout(site, tmp_path):
    assert not (site / "configs").exists()
    proc = _isolated(site, tmp_path, "-c", PROBE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for path in (found["package"], found["train_default"], *found["eval_defaults"], found["scripts"]):
        assert pathlib.Path(path).resolve().is_relative_to(site.resolve()), path  # not the checkout's copy
    assert found["script_files"] == ["check/0.sh", "example/0.sh", "init/stock-log.sh"]
    assert found["train"] == {"preset": "tiny", "source": "synthetic", "eta": 0.2, "layers": 2}
    assert found["agent_tasks"] == "db,os,household,sciworld,miniwob"
    assert found["agent_sections"] == ["db", "household", "os"]
    assert found["general_benchmarks"] == "mmlu,gsm8k,humaneval,mt_bench"


def test_installed_command_lines_default_to_the_package(site, tmp_path):
    # The trainer's CLI loads its default and rejects a bad override before any device work (exit 2).
    proc = _isolated(site, tmp_path, "-m", "agentlm.train", "--config.data.mixture.eta=1.5",
                     f"--config.run_dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "config.data.mixture.eta=1.5" in proc.stderr
    # The eval CLIs name the package's own default config files.
    for module, default in (("agentlm.eval.general", "general_config.py"), ("agentlm.eval.agent", "agent_config.py")):
        proc = _isolated(site, tmp_path, "-m", module, "--helpfull")  # absl exits 1 after printing the help
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        expected = str(site / "agentlm" / "eval" / default)
        assert expected in proc.stdout.replace("\n", "").replace(" ", ""), (module, proc.stdout[-2000:])
