"""Defaults every pipeline config starts from (configs/pipeline/*.py call `base_config()` and change what they
need). Kept in the package so a config file stays a short list of differences."""
from __future__ import annotations

import ml_collections


# The pipeline's oracle choices for training data (options of the registered oracles): the DB oracle answers with
# what the gold SQL returned, so observation and answer agree; the OS oracle runs the solution script and answers
# with its output, so the trajectory shows the shell use. A source's `oracle_kwargs` override them.
ORACLE_OPTIONS = {"db": {"mode": "sql"}, "os": {"show_work": True}}


def source(kind: str, env: str, method: str = "rollout", **kw) -> ml_collections.ConfigDict:
    """One instruction source. `method`: 'rollout' (the teacher plays the task) or 'annotate' (gold actions,
    teacher-written thoughts). `env` is a registered environment (agentlm.envs.registry; a config's `env_modules`
    registers more); `env_kwargs` are its options, `oracle_kwargs` its oracle's; `env_factory`/`oracle`
    ("module:Class") replace the registered ones."""
    fields = dict(kind=kind, env=env, method=method, enabled=True, seed=0, max_rounds=0, env_factory="", oracle="",
                  env_kwargs={}, oracle_kwargs=dict(ORACLE_OPTIONS.get(env, {})))
    fields.update(kw)
    return ml_collections.ConfigDict(fields)


def base_config(name: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = name
    c.out_dir = f"data/generated/{name}"
    c.env_modules = []  # modules (or "module:attr") whose EnvSpecs the run registers, for environments outside agentlm
    c.stages = ("instructions", "rollout", "annotate", "filter", "export")
    c.progress = True
    c.fsync = True
    c.offline_workers = 2  # parallel episodes with the oracle teacher

    c.teacher = ml_collections.ConfigDict(dict(
        kind="auto",  # auto: openai if an endpoint is configured (here or OPENAI_BASE_URL/OPENAI_API_KEY), else oracle
        base_url="", model="gpt-4", api_key="", api_key_env="OPENAI_API_KEY",
        concurrency=4, timeout_s=60.0, max_retries=6, backoff_base_s=1.0, backoff_max_s=60.0,
        content_retries=2, temperature=0.0, max_tokens=512, system="", seed=0,
        use_cache=True, cache_path="",
        price_in_per_1k=0.03, price_out_per_1k=0.06,  # USD, GPT-4 (8k) list prices; set for your endpoint
    ))
    c.self_instruct = ml_collections.ConfigDict(dict(
        temperature=0.8, max_tokens=900, rouge_threshold=0.7, n_examples=3, batch=8))
    c.annotate = ml_collections.ConfigDict(dict(max_history_chars=6000))
    c.filter = ml_collections.ConfigDict(dict(
        thresholds={"default": 1.0, "sciworld": 0.7},  # keep r = 1; partial-credit tasks get a lower bar
        max_seq_len=4096, template="llama2", tokenizer="", chars_per_token=3.5))
    c.budget = ml_collections.ConfigDict(dict(max_tasks=0, max_tokens=0, max_cost_usd=0.0, max_wall_s=0.0))
    c.export = ml_collections.ConfigDict(dict(formats=("jsonl", "parquet")))
    c.sources = ml_collections.ConfigDict()
    return c
