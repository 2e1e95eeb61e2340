"""The general-benchmark runner end to end against an OpenAI-compatible endpoint, then the reports."""
import json
import subprocess
import sys

import pytest

from agentlm.configfile import load_config_file
from agentlm.eval import general, report
from agentlm.eval.lm import EndpointModel
from tests.conftest import ROOT, shared_path
from tests.eval.openai_stub import StubServer


def _complete(body):
    prompt = body["prompt"]
    if "def " in prompt and '"""' in prompt:  # HumanEval: a body that is wrong for almost every problem
        return "    return None\n"
    return " The answer is 18.\n\nQuestion: ignored"  # GSM8K: right for the first test question only


def _config(tmp_path):
    c = load_config_file(ROOT / "configs" / "eval" / "general.py")
    c.out = str(tmp_path / "run")
    c.data_root = str(shared_path("data", "general_eval"))
    c.mmlu.subjects, c.mmlu.limit_per_subject = "anatomy", 3
    c.gsm8k.limit, c.humaneval.limit, c.mt_bench.limit = 4, 4, 3
    return c


def test_general_run_through_endpoint_and_reports(tmp_path):
    c = _config(tmp_path)
    with StubServer(complete=_complete, chat=lambda b: "Sure.") as model_srv, \
            StubServer(chat=lambda b: "Rating: [[6]]") as judge_srv:
        c.mt_bench.judge_url, c.mt_bench.judge_model = judge_srv.url, "judge"
        result = general.run(c, model=EndpointModel(model_srv.url))
    b = result["benchmarks"]
    assert b["gsm8k"]["score"] == 25.0 and b["gsm8k"]["n"] == 4  # Janet's ducks: 18
    assert b["humaneval"]["n"] == 4 and b["humaneval"]["score"] == 0.0
    assert b["mt_bench"]["score"] == 6.0 and b["mt_bench"]["n"] == 6
    # The toy server's log-likelihood falls with position: " A" (the earliest) always wins. Gold letters decide.
    golds = [json.loads(x)["answer"] for x in
             (tmp_path / "run" / "general" / "mmlu" / "samples.jsonl").read_text().splitlines()]
    assert b["mmlu"]["n"] == 3 and b["mmlu"]["score"] == pytest.approx(100.0 * golds.count("A") / 3)

    paths = report.write_model_report(c.out)
    md = open(paths["markdown"]).read()
    assert "| mt_bench (MT-Bench) |" in md and "general overall" in md
    data = json.loads(open(paths["json"]).read())
    assert data["overall"]["general"]["complete"] is True
    expected = (b["mmlu"]["score"] / 58.1 + 0.0 / 35.3 + 25.0 / 53.7 + 6.0 / 8.13) / 4
    assert data["overall"]["general"]["overall"] == pytest.approx(expected)

    cmp_paths = report.write_comparison([c.out, c.out], tmp_path / "cmp")
    cmp = json.loads(open(cmp_paths["json"]).read())
    assert list(cmp["columns"])[:2] == ["stub-model", "stub-model (2)"]
    assert cmp["columns"]["paper: AgentLM-70B"]["overall"]["general"] == 0.96
    assert "| GSM8K | 25.00 | 25.00 |" in open(cmp_paths["markdown"]).read()


def test_missing_paths_and_bad_benchmark_names(tmp_path):
    c = _config(tmp_path)
    c.data_root = ""
    with pytest.raises(ValueError, match="config.data_root"):
        general.run_benchmark("gsm8k", None, c, tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        general.parse_benchmarks("mmlu,arc")
    c.benchmarks = "mt_bench"
    with pytest.raises(ValueError, match="judge_url"):
        general.run_benchmark("mt_bench", None, c, tmp_path)


def test_command_lines_have_help():
    for module in ("agentlm.eval.general", "agentlm.eval.agent", "agentlm.eval.report"):
        r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode in (0, 1), r.stderr  # absl's --help exits 1 after printing the usage
        assert ("--model" in r.stdout and "--config" in r.stdout) or "compare" in r.stdout, r.stdout + r.stderr
