r"""General-ability evaluation: MMLU 5-shot, GSM8K 8-shot CoT, HumanEval pass@1, MT-Bench, on local files.

    python -m agentlm.eval.general --model http://localhost:8000/v1 --config.data_root=/data/general_eval \
        --config.mt_bench.judge_url=https://judge/v1 --out eval_runs/agentlm-7b

Each benchmark writes <out>/general/<name>/ (per-item records, resumable, and summary.json); the run then writes
<out>/general/summary.json and refreshes the model's report (agentlm.eval.report). Which implementation each
benchmark uses and why (ours, not lm-evaluation-harness) is explained in the README's evaluation section.
"""
from __future__ import annotations

import json
import logging
import pathlib
import time

from absl import app, flags

from agentlm.eval import cli, general_config, gsm8k, humaneval, mmlu, mt_bench
from agentlm.eval.lm import EvalModel, make_model
from agentlm.eval.records import write_json

BENCHMARKS = general_config.BENCHMARKS
log = logging.getLogger(__name__)


def _path(config, explicit: str, default_under_root: str, what: str) -> pathlib.Path:
    if explicit:
        path = pathlib.Path(explicit)
    elif config.data_root:
        path = pathlib.Path(config.data_root) / default_under_root
    else:
        raise ValueError(f"{what}: set config.data_root or the benchmark's own path")
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    return path


def parse_benchmarks(spec: str) -> list[str]:
    names = [b.strip() for b in spec.split(",") if b.strip()]
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown or not names:
        raise ValueError(f"unknown benchmark(s) {unknown or spec!r}; choose from {', '.join(BENCHMARKS)}")
    return names


def run_benchmark(name: str, model: EvalModel, config, out_dir: pathlib.Path) -> dict:
    bench_dir = out_dir / name
    if name == "mmlu":
        c = config.mmlu
        subjects = [s.strip() for s in c.subjects.split(",") if s.strip()] or None
        return mmlu.evaluate(model, _path(config, c.data_dir, "mmlu", "mmlu"), bench_dir / "samples.jsonl",
                             n_shots=c.n_shots, method=c.method, subject_filter=subjects,
                             limit_per_subject=c.limit_per_subject or None)
    if name == "gsm8k":
        c = config.gsm8k
        return gsm8k.evaluate(model, _path(config, c.data_file, "gsm8k/test.jsonl", "gsm8k"),
                              bench_dir / "samples.jsonl", n_shots=c.n_shots, max_tokens=c.max_tokens,
                              limit=c.limit or None)
    if name == "humaneval":
        c = config.humaneval
        return humaneval.evaluate(model, _path(config, c.data_file, "humaneval/HumanEval.jsonl.gz", "humaneval"),
                                  bench_dir / "samples.jsonl", max_tokens=c.max_tokens, limit=c.limit or None,
                                  workers=c.workers, timeout_s=c.timeout_s, backend=c.sandbox)
    if name == "mt_bench":
        c = config.mt_bench
        if not c.judge_url:
            raise ValueError("mt_bench needs a judge: set config.mt_bench.judge_url (an OpenAI-compatible /v1 URL)")
        judge = mt_bench.Judge(c.judge_url, c.judge_model, c.judge_api_key or None, concurrency=config.concurrency)
        return mt_bench.evaluate(model, judge, _path(config, c.data_dir, "mt_bench", "mt_bench"), bench_dir,
                                 max_tokens=c.max_tokens, limit=c.limit or None, reference_model=c.reference_model)
    raise ValueError(f"unknown benchmark {name!r}")


def run(config, model: EvalModel | None = None) -> dict:
    """Runs the configured benchmarks; returns (and writes) {"model", "benchmarks": {name: summary}}."""
    names = parse_benchmarks(config.benchmarks)
    if model is None:
        if not config.model:
            raise ValueError("set --model (endpoint URL or checkpoint directory)")
        model = make_model(config.model, model_name=config.model_name or None, api_key=config.api_key or None,
                           tokenizer=config.tokenizer or None, template=config.template,
                           concurrency=config.concurrency, batch_size=config.batch_size)
    out_dir = pathlib.Path(config.out) / "general"
    summaries = {}
    for name in names:
        start = time.time()
        summary = run_benchmark(name, model, config, out_dir)
        summary["seconds"] = round(time.time() - start, 1)
        write_json(out_dir / name / "summary.json", summary)
        summaries[name] = summary
        log.info("%s: %.2f (n=%d)", name, summary["score"], summary["n"])
    previous = {}
    if (out_dir / "summary.json").exists():  # keep benchmarks run in earlier invocations
        previous = json.loads((out_dir / "summary.json").read_text()).get("benchmarks", {})
    result = {"model": getattr(model, "name", config.model), "benchmarks": {**previous, **summaries}}
    write_json(out_dir / "summary.json", result)
    return result


def _define_flags():
    # Defined only when run as a program, so importing this module (tests, notebooks) registers no global flags.
    config = cli.define_config(general_config.__file__)
    flags.DEFINE_string("model", None, "endpoint base URL (.../v1) or checkpoint directory; overrides config.model")
    flags.DEFINE_string("out", None, "output directory; overrides config.out")
    flags.DEFINE_string("benchmarks", None, f"comma-separated subset of {','.join(BENCHMARKS)}")
    flags.DEFINE_string("data_root", None, "directory holding mmlu/, gsm8k/, humaneval/, mt_bench/")
    return config


def main(config_flag):
    config = config_flag.value
    cli.apply_short_flags(config, {"model": "model", "out": "out", "benchmarks": "benchmarks",
                                   "data_root": "data_root"})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    result = run(config)
    from agentlm.eval import report

    paths = report.write_model_report(config.out)
    for name, s in result["benchmarks"].items():
        print(f"{name:10s} {s['score']:7.2f}  (n={s['n']})")
    print(f"report: {paths['markdown']}")


if __name__ == "__main__":
    _config_flag = _define_flags()
    app.run(lambda argv: main(_config_flag) if len(argv) == 1 else
            app.usage(shorthelp=True, detailed_error=f"unexpected arguments {argv[1:]}", exitcode=2))
