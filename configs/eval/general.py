r"""General-ability benchmarks (the paper's MMLU, HumanEval, GSM8K, MT-Bench) for one model.

    python -m agentlm.eval.general --config configs/eval/general.py \
        --config.model=http://localhost:8000/v1 --config.data_root=/path/to/general_eval

Every field, its default and its meaning is in agentlm/eval/general_config.py (the default `python -m
agentlm.eval.general` uses without --config). `model` is an OpenAI-compatible base URL or a checkpoint directory
(then `tokenizer` is needed); `data_root` holds mmlu/{dev,test}/, gsm8k/test.jsonl, humaneval/HumanEval.jsonl.gz
and mt_bench/. A limit of 0 means the whole benchmark.
"""
from agentlm.eval.general_config import default_config


def get_config():
    c = default_config()
    # Edit here, e.g. c.benchmarks = "mmlu,gsm8k" or c.mmlu.n_shots = 0.
    return c
