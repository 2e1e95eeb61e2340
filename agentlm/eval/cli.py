"""Command-line plumbing shared by the eval entry points: an ml_collections config file plus overrides.

`--config configs/eval/x.py --config.key=value` works as everywhere in the project (absl + config_flags); a few
common settings also get short flags (`--model`, `--out`, ...) that, when given, override the config.
"""
from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags

REPO = pathlib.Path(__file__).resolve().parents[2]


def define_config(default: str):
    """`--config`, defaulting to the config file `default`: an absolute path (a module of the package that builds
    the default in code), or a name under configs/eval/ of this checkout."""
    path = default if pathlib.Path(default).is_absolute() else str(REPO / "configs" / "eval" / default)
    return config_flags.DEFINE_config_file("config", path,
                                           "ml_collections config file; override fields with --config.key=value")


def apply_short_flags(config, names: dict[str, str]) -> None:
    """Copies each given short flag (flag name -> config field) into the config."""
    values = flags.FLAGS
    for flag, field in names.items():
        value = values[flag].value
        if value is not None:
            config[field] = value
