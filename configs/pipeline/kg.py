"""AgentInstruct-style Knowledge Graph trajectories from AgentBench's training questions (kg_rl_all.json), with the
evaluation questions excluded. Offline by default: the oracle teacher replays each gold action sequence on the
embedded graph (agentlm.envs.kg), some go through CoT annotation instead; filtering keeps answer F1 = 1.

    python -m data_pipeline.run --config configs/pipeline/kg.py \\
        --config.sources.kg.path=/data/agentbench_kg/kg_rl_all.json \\
        --config.sources.kg.exclude=/data/agentbench_kg/dev.json,/data/agentbench_kg/std.json
    # against a Freebase endpoint instead of the embedded graph:
    ...  --config.sources.kg.env_kwargs.sparql_url=http://localhost:3001/sparql

The item file's directory must hold AgentBench's ontology/ (or set env_kwargs.ontology_dir).
"""
from data_pipeline.defaults import base_config, source

DATA = "data/agentbench/kg"  # AgentBench's data/knowledgegraph files


def get_config():
    c = base_config("kg")
    exclude = [f"{DATA}/dev.json", f"{DATA}/std.json"]
    c.sources.kg = source("kg_questions", "kg", path=f"{DATA}/kg_rl_all.json", exclude=exclude, n=0, seed=0)
    c.sources.kg_annotated = source("kg_questions", "kg", method="annotate", path=f"{DATA}/kg_rl_all.json",
                                    exclude=exclude, n=50, seed=1)
    return c
