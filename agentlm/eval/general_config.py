"""The general-benchmark evaluation's default config, in code, so an installed package evaluates without a
checkout; configs/eval/general.py starts from it and is the file users edit.

`model` is an OpenAI-compatible base URL or a checkpoint directory (then `tokenizer` is needed). Data paths are
explicit: `data_root` holds mmlu/{dev,test}/, gsm8k/test.jsonl, humaneval/HumanEval.jsonl.gz and mt_bench/; any
per-benchmark path overrides it. A limit of 0 means the whole benchmark.
"""
from __future__ import annotations

from ml_collections import ConfigDict

BENCHMARKS = ("mmlu", "gsm8k", "humaneval", "mt_bench")  # the paper's general benchmarks, in report order


def default_config() -> ConfigDict:
    c = ConfigDict()
    c.model = ""  # endpoint base URL (http://host:port/v1) or checkpoint directory
    c.model_name = ""  # the served model's name; empty = the first one /v1/models lists
    c.api_key = ""
    c.tokenizer = ""  # checkpoint evaluation only: tokenizer.model / tokenizer.json (or a directory with one)
    c.template = "llama2"
    c.concurrency = 8  # parallel requests to an endpoint (the server batches them)
    c.batch_size = 8  # rows per in-process generate/score call
    c.out = "eval_runs/model"  # results go to <out>/general/<benchmark>/
    c.benchmarks = ",".join(BENCHMARKS)
    c.data_root = ""

    c.mmlu = ConfigDict(dict(data_dir="", n_shots=5, method="loglikelihood", subjects="", limit_per_subject=0))
    c.gsm8k = ConfigDict(dict(data_file="", n_shots=8, max_tokens=256, limit=0))
    c.humaneval = ConfigDict(dict(data_file="", max_tokens=512, limit=0, workers=2, timeout_s=10.0, sandbox="auto"))
    c.mt_bench = ConfigDict(dict(data_dir="", judge_url="", judge_model="gpt-4", judge_api_key="", max_tokens=1024,
                                 limit=0, reference_model="gpt-4"))
    return c


def get_config() -> ConfigDict:
    return default_config()
