"""The toy agent world of the CPU demo and ratio sweep (data_pipeline.sources.toy_tasks): held-in DB and OS task
families short enough for a model of about a million parameters, played by the oracle teacher through the real
environments with short instruction prompts (configs/envs/toy_*_scaffold.json; the evaluation uses the same
files, so the model is evaluated with the prompts it was trained on). Seconds on 2 CPU cores.

    python -m data_pipeline.run --config configs/pipeline/toy_agent.py --config.out_dir=data/generated/toy
"""
from data_pipeline.defaults import ORACLE_OPTIONS, base_config, source

DB_PROMPT = "configs/envs/toy_db_scaffold.json"
OS_PROMPT = "configs/envs/toy_os_scaffold.json"


def get_config():
    c = base_config("toy_agent")
    c.stages = ("instructions", "rollout", "filter", "export")
    c.sources.toy_db = source("toy_tasks", "db", families=("db_count", "db_first"), n=300, seed=0,
                              env_kwargs={"prompt_file": DB_PROMPT}, oracle_kwargs=dict(ORACLE_OPTIONS["db"]))
    c.sources.toy_os = source("toy_tasks", "os", families=("os_count", "os_read"), n=300, seed=0,
                              env_kwargs={"prompt_file": OS_PROMPT},
                              oracle_kwargs={**ORACLE_OPTIONS["os"], "prompt_file": OS_PROMPT})
    c.offline_workers = 6  # the sandbox start-up, not the CPU, bounds an OS episode
    c.export.formats = ("jsonl",)
    return c
