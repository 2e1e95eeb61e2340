"""Command-line plumbing shared by the eval entry points: an ml_collections config file plus overrides.

`--config configs/eval/x.py --config.key=value` works as everywhere in the project (absl + config_flags); a few
common settings also get short flags (`--model`, `--out`, ...) that, when given, override the config.
"""
from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags


def define_config(default: str):
    """`--config`, defaulting to `default`: the file of a package module that builds the default in code and has a
    `get_config()` (agent_config, general_config), so the default is found wherever the package is installed;
    configs/eval/*.py in a checkout start from the same modules."""
    if not pathlib.Path(default).is_absolute():
        raise ValueError(f"define_config({default!r}): the default must be a package module's file (module.__file__)")
    return config_flags.DEFINE_config_file("config", default,
                                           "ml_collections config file; override fields with --config.key=value")


def apply_short_flags(config, names: dict[str, str]) -> None:
    """Copies each given short flag (flag name -> config field) into the config."""
    values = flags.FLAGS
    for flag, field in names.items():
        value = values[flag].value
        if value is not None:
            config[field] = value
