"""AgentBench's Knowledge Graph task: the environment (env.py), its SPARQL programs (sparql.py), the embedded
graph built from the items' own facts (local_graph.py) and the Freebase schema (ontology.py). Declared here so the
registry reads the SPEC without importing rdflib."""
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric

SPEC = EnvSpec(
    name="kg", env="agentlm.envs.kg.env:KGEnv", load_tasks="agentlm.envs.kg.env:load_tasks", group="held_in",
    paper_task="KG", metric=Metric("answer F1 x 100", "agentlm.envs.kg.env:aggregate"),
    oracle="agentlm.envs.kg.env:GoldActionOracle",
    action_format=ActionFormat(r"^(Action|Final Answer)\s*:", thought_prefix="Thought: "),
    options={"sparql_url": "", "ontology_dir": "", "prompt_file": None, "gold_check": True},
    requires=("rdflib",), split="std",
    task_formats="AgentBench KG JSON (std.json, dev.json, kg_rl_all.json) with ontology/ beside it",
    note="embedded graph from the items' own facts unless sparql_url points at Freebase (docs/envs/kg.md)",
    description="AgentBench Knowledge Graph (held in): Freebase questions through KB tools, answer F1")
