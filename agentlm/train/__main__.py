"""`python -m agentlm.train --config configs/train/<name>.py [--config.key=value ...]`

Without --config the built-in default (agentlm.train.builtin_config, shipped with the package: a tiny Llama on
the built-in conversations, a few minutes on a laptop CPU) runs. Any field can be overridden, e.g.
`--config.train.steps=50 --config.run_dir=/tmp/run`. Re-running with the same run_dir resumes from its latest
checkpoint.
"""
from __future__ import annotations

import sys

from absl import app, logging
from ml_collections import config_flags

from agentlm.train import builtin_config

DEFAULT_CONFIG = builtin_config.__file__  # a module of the package: found wherever the package is installed
_CONFIG = config_flags.DEFINE_config_file("config", str(DEFAULT_CONFIG), "trainer config file (ml_collections)",
                                          lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; config fields are set as --config.key=value")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
    from agentlm import cpu_tuning

    try:
        print(f"[train] {cpu_tuning.apply(_CONFIG.value.cpu_tuning or None)}", flush=True)
    except ValueError as e:
        print(f"error: config.cpu_tuning: {e}", file=sys.stderr)
        sys.exit(2)
    from agentlm.distributed import DistributedConfigError
    from agentlm.train.config import ConfigError
    from agentlm.train.loop import train

    try:
        summary = train(_CONFIG.value)
    except (ConfigError, DistributedConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if summary["status"] in ("finished", "preempted") else 1)


if __name__ == "__main__":
    app.run(main)
