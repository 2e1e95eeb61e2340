"""`eval.agent --protocol function_calling` against OpenAI-compatible endpoints.

The must-show check: the tool-domain oracle served behind agentlm's own server (the real FastAPI app, chat
template, tool rendering and tool_calls parsing; only the model is the oracle) scores the same under the text
protocol and under function calling, and the model is shown token-for-token the same prompts either way (the
function-calling request is rendered as training rendered the text format). Then the same eval against another
server (data_pipeline's fake OpenAI server, whose oracle answers with native tool_calls), and the in-process
oracle over function calling.
"""
from __future__ import annotations

import collections

import pytest

from agentlm.configfile import load_config_file
from agentlm.eval import agent
from tests.conftest import ROOT, shared_path

TASKS = "triage,back_office"
LIMIT = 6


def _config(model: str, out, protocol: str):
    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.update(model=model, tasks=TASKS, out=str(out), workers=2, protocol=protocol)
    config.triage.limit = config.back_office.limit = LIMIT
    return config


@pytest.fixture(scope="module")
def items():
    config = _config("oracle", "unused", "text")
    return [t for name in TASKS.split(",") for t in agent.load_items(name, config)]


@pytest.fixture(scope="module")
def served_oracle(items):
    from agentlm.data.tokenizer import load_tokenizer
    from agentlm.infer import OpenAIServer
    from tests.eval.oracle_engine import OracleEngine

    tok = load_tokenizer(shared_path("tokenizers", "llama2", "tokenizer.model"))
    engine = OracleEngine(tok, items)
    with OpenAIServer(engine, "oracle-lm", port=0) as server:
        yield engine, server


def _scores(summary) -> dict:
    return {t: (s["score"], s["n"], s["outcomes"]) for t, s in summary["tasks"].items()}


def test_function_calling_scores_equal_text_with_the_oracle_behind_agentlm_server(served_oracle, tmp_path):
    engine, server = served_oracle
    text = agent.run(_config(server.url, tmp_path / "text", "text"))
    prompts_text = collections.Counter(engine.prompts)
    engine.prompts.clear()
    fc = agent.run(_config(server.url, tmp_path / "fc", "function_calling"))
    prompts_fc = collections.Counter(engine.prompts)
    assert _scores(fc) == _scores(text)
    assert all(s["score"] == 100.0 and s["n"] == LIMIT for s in text["tasks"].values())
    assert fc["protocol"] == "function_calling" and fc["tasks"]["triage"]["protocol"] == "function_calling"
    # the model saw exactly the same token ids under both protocols: tools= and tool messages rendered as the
    # text format the model was trained on
    assert prompts_fc == prompts_text and sum(prompts_fc.values()) > 2 * LIMIT
    # transcripts of both protocols are kept apart (a rerun never resumes one protocol's run with the other)
    assert (tmp_path / "fc" / "agent" / "triage.function_calling" / "episodes.jsonl").is_file()


def test_function_calling_against_another_endpoint_with_native_tool_calls(items, tmp_path):
    from agentlm.envs.tools import FunctionCallingOracle
    from data_pipeline.testing.fake_openai import FakeOpenAIServer

    oracle = FunctionCallingOracle(items)
    with FakeOpenAIServer(oracle) as srv:
        fc = agent.run(_config(srv.base_url, tmp_path / "fake", "function_calling"))
    assert all(s["score"] == 100.0 and s["n"] == LIMIT for s in fc["tasks"].values())
    used = [r for r in oracle.requests if r["tool"] is not None]
    assert used and all(r["tools"] for r in oracle.requests)  # every request carried tools=


def test_in_process_oracle_over_function_calling_and_refusals(tmp_path):
    fc = agent.run(_config("oracle", tmp_path / "oracle", "function_calling"))
    assert all(s["score"] == 100.0 for s in fc["tasks"].values())
    with pytest.raises(ValueError, match="not a tool-use domain"):
        agent.make_agent(_config("oracle", tmp_path, "function_calling"), "db")
    with pytest.raises(ValueError, match="--protocol"):
        agent.run(_config("oracle", tmp_path, "telepathy"))
