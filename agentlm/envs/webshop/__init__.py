"""WebShop as AgentBench runs it: the official data files (catalog.py), BM25 search (search.py), the pages and the
environment (env.py) and the purchase reward (reward.py). Declared here so the registry reads the SPEC without
importing bm25s or thefuzz."""
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric

SPEC = EnvSpec(
    name="webshop", env="agentlm.envs.webshop.env:WebShopEnv", load_tasks="agentlm.envs.webshop.env:load_tasks",
    group="held_in", paper_task="WebShop", metric=Metric("mean reward x 100", "agentlm.envs.webshop.env:aggregate"),
    oracle="agentlm.envs.webshop.env:GoalProductOracle",
    action_format=ActionFormat(r"^Action:", thought_prefix="Thought:\n", separator="\n\n"),
    options={"prompt_file": None, "spacy_model": "en_core_web_lg", "search_seed": 0,
             "observation_format": "agentbench"},
    requires=("bm25s", "thefuzz"), split="std",
    task_formats="needs the official WebShop data files: a directory with items_shuffle_1000.json (or the full "
                 "items_shuffle.json), items_ins_v2_1000.json (or items_ins_v2.json) and items_human_ins.json, or its "
                 "product file; DIR::START:END picks goals",
    note="WebShop: BM25 search by bm25s in place of WebShop's Lucene index, title nouns by spaCy only where its "
         "model is installed (docs/envs/webshop.md)",
    description="WebShop (held in): shop from a human goal in 10 rounds, WebShop's purchase reward")
