"""Loading pipeline configs: an ml_collections ConfigDict from a Python file, with command-line overrides.

`--config configs/pipeline/offline_small.py --config.teacher.model=gpt-4 --config.budget.max_cost_usd=20`
Each override is parsed to the type of the value it replaces (bool, int, float, str, tuple/list of those), so a
typo in a key or a value of the wrong type fails loudly with the key's name.
"""
from __future__ import annotations

import ast
import pathlib
from typing import Any, Sequence

import ml_collections

from agentlm import configfile


class ConfigError(ValueError):
    pass


def load_config_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    try:
        return configfile.load_config_file(path)
    except configfile.ConfigFileError as e:
        raise ConfigError(str(e)) from None


def _coerce(key: str, old: Any, text: str) -> Any:
    if isinstance(old, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--config.{key}: expected a boolean, got {text!r}")
    if isinstance(old, (int, float)):
        try:
            return int(text) if isinstance(old, int) else float(text)
        except ValueError:
            raise ConfigError(f"--config.{key}: expected {type(old).__name__}, got {text!r}") from None
    if isinstance(old, (tuple, list)):
        if text.startswith(("[", "(")):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConfigError(f"--config.{key}: cannot parse {text!r} as a list") from None
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
        return type(old)(value)
    if old is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Sequence[str]) -> ml_collections.ConfigDict:
    """Applies `key.sub=value` overrides in place (keys must exist: new keys are almost always typos)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        parts = key.split(".")
        node = cfg
        for i, p in enumerate(parts[:-1]):
            if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
                raise ConfigError(f"--config.{key}: no section {'.'.join(parts[:i + 1])!r} in the config")
            node = node[p]
        leaf = parts[-1]
        if leaf not in node:
            raise ConfigError(f"--config.{key}: unknown key (known here: {', '.join(sorted(node.keys()))})")
        with node.ignore_type():
            node[leaf] = _coerce(key, node[leaf], text)
    return cfg


def parse_args(argv: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """Splits argv into (config path, overrides, the rest)."""
    path, overrides, rest = None, [], []
    it = iter(argv)
    for a in it:
        if a == "--config":
            path = next(it, None)
            if path is None:
                raise ConfigError("--config needs a file path")
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
        elif a.startswith("--config."):
            overrides.append(a[len("--config."):])
        else:
            rest.append(a)
    return path, overrides, rest
