"""`make demo`: the toy AgentTuning experiment end to end, before and after agent tuning.

    python -m launch.sweep --config configs/sweep/demo.py

The ratio sweep's toy world and stages (configs/sweep/ratio.py) at two points: eta = 0 (general data only: the
toy stand-in for the untuned chat model, Llama-2-chat in the paper) and that model fine-tuned at eta = 0.2 (the
paper's mixture), one seed. Ends with the before/after table (held-in, held-out, general, per family), printed
and written to runs/demo/before_after.md and next to the eta = 0.2 checkpoints (runs/demo/eta_0.2/run/before_after.md).
"""
import pathlib

from agentlm.configfile import load_config_file


def get_config():
    c = load_config_file(pathlib.Path(__file__).with_name("ratio.py"))
    c.title = "AgentTuning demo (toy world, 1.05M-parameter model, CPU)"
    c.etas = (0.0, 0.2)
    c.seeds = (0,)
    c.before_after = (0.0, 0.2)
    c.out_dir = "runs/demo"
    c.data.out_dir = "data/generated/demo"
    return c
