"""The embedded default: a 0.3M-parameter Llama learns copy / reverse / sort conversations on a CPU in minutes.

Everything it needs ships with the package (agentlm.train.synthetic builds the data; agentlm.train.builtin_config
holds these settings, which `python -m agentlm.train` without --config runs). Copy this file to experiment:
    python -m agentlm.train --config configs/train/tiny_cpu.py
"""
from agentlm.train.builtin_config import tiny_cpu


def get_config():
    c = tiny_cpu()
    # Edit or add fields here, e.g. c.train.steps = 600 or c.run_dir = "runs/my_tiny".
    return c
