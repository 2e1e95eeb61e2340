"""AgentInstruct-style WebShop trajectories from WebShop's training goals (index 1500 on; AgentBench evaluates
0-279). Needs the official WebShop data files. Offline by default: the oracle teacher searches, opens the goal's
product, chooses its options and buys; filtering keeps reward 1.

    python -m data_pipeline.run --config configs/pipeline/webshop.py --config.sources.webshop.path=/data/webshop
    # the full catalogue:  --config.sources.webshop.path=/data/webshop/items_shuffle.json
"""
from data_pipeline.defaults import base_config, source

DATA = "data/webshop"  # items_shuffle_1000.json, items_ins_v2_1000.json, items_human_ins.json


def get_config():
    c = base_config("webshop")
    c.sources.webshop = source("webshop_goals", "webshop", path=DATA, n=1500, allow_evaluated_goals=False)
    c.sources.webshop_annotated = source("webshop_goals", "webshop", method="annotate", path=f"{DATA}::3000:3100",
                                         n=0, allow_evaluated_goals=False)
    return c
