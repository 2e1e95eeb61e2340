"""Loading an ml_collections config file by path: the one way every entry point reads `configs/**.py`.

configs/ is not a package (a config file is a script a researcher copies and edits), so files are imported by
path. Each caller keeps its own error type for the command-line message it prints; this module raises
`ConfigFileError` (a ValueError) naming the file and what is wrong with it.
"""
from __future__ import annotations

import importlib.util
import pathlib

import ml_collections


class ConfigFileError(ValueError):
    pass


def load_config_file(path: str | pathlib.Path, *, relative_to: pathlib.Path | None = None) -> ml_collections.ConfigDict:
    """`get_config()` of the Python file at `path` (a relative path is taken from `relative_to` when given,
    else from the working directory)."""
    file = pathlib.Path(path)
    if relative_to is not None and not file.is_absolute():
        file = relative_to / file
    if not file.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"_agentlm_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigFileError(f"config file {path} defines no get_config() function")
    cfg = module.get_config()
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigFileError(f"config file {path}: get_config() must return an ml_collections.ConfigDict, "
                              f"not {type(cfg).__name__}")
    return cfg
