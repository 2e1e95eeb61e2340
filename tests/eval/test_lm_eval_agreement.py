"""lm-evaluation-harness (a test-only dependency) against agentlm's server: the task YAMLs in configs/lm_eval run
as a user would run them (`local-completions`, `tokenizer_backend=remote`) on the served stories260K model, and
give the same MMLU per-choice log-likelihoods and accuracy as agentlm.eval.mmlu on the same items, and the same
GSM8K generations as agentlm's in-process greedy decoding. Two independent implementations (lm-eval's prompt
building, token split and request path through the server; agentlm's prompt building and in-process scoring)
agreeing is the check that each is right.

lm-eval's remote tokenizer sends no BOS token, so agentlm's side scores with LocalModel(add_bos=False).
"""
from __future__ import annotations

import json

import pytest

from agentlm.eval import mmlu
from agentlm.eval.lm import LocalModel
from tests.conftest import ROOT, shared_path

SUBJECTS = ["anatomy", "virology"]
PER_SUBJECT = 4


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("lm_eval")
    from agentlm.data.tokenizer import load_tokenizer
    from agentlm.infer import InferenceEngine, OpenAIServer
    from agentlm.infer.serve import load_model

    model_dir = shared_path("models", "stories260K-hf")
    cfg, params = load_model(str(model_dir))
    tok = load_tokenizer(model_dir)
    engine = InferenceEngine(cfg, params, tok, batch_wait_s=0.02)
    with OpenAIServer(engine, "stories", port=0) as server:
        yield server, LocalModel(cfg, params, tok, add_bos=False, batch_size=8)
    engine.close()


def _lm_eval(server, task: str, metadata: dict, **kw) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="local-completions",
        model_args=f"model=stories,base_url={server.url}/completions,tokenizer_backend=remote,num_concurrent=4,"
                   "max_retries=1",
        tasks=[task], task_manager=TaskManager(include_path=str(ROOT / "configs" / "lm_eval"), metadata=metadata),
        log_samples=True, num_fewshot=0, **kw)


@pytest.mark.slow
def test_mmlu_loglikelihoods_and_accuracy_agree_with_agentlm(served, tmp_path):
    server, local = served
    data = shared_path("data", "general_eval", "mmlu")
    out = _lm_eval(server, "mmlu_local", {"data_dir": str(data), "subjects": SUBJECTS,
                                          "limit_per_subject": PER_SUBJECT})
    ours = mmlu.evaluate(local, data, tmp_path / "mmlu.jsonl", n_shots=0, subject_filter=SUBJECTS,
                         limit_per_subject=PER_SUBJECT)
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "mmlu.jsonl").read_text().splitlines())}
    theirs: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for sample in sorted(out["samples"]["mmlu_local"], key=lambda s: s["doc_id"]):
        subject = sample["doc"]["subject"].replace(" ", "_")
        k = seen.get(subject, 0)
        seen[subject] = k + 1
        theirs[f"{subject}/{k}"] = [float(r[0]) for r in sample["filtered_resps"]]
    assert sorted(theirs) == sorted(records) and len(records) == len(SUBJECTS) * PER_SUBJECT
    for key, lls in theirs.items():
        assert lls == pytest.approx(records[key]["loglikelihoods"], abs=1e-4), key
    assert out["results"]["mmlu_local"]["acc,none"] == pytest.approx(ours["score"] / 100)


@pytest.mark.slow
def test_gsm8k_generations_agree_with_agentlm(served):
    server, local = served
    data = shared_path("data", "general_eval", "gsm8k")
    out = _lm_eval(server, "gsm8k_local", {"data_dir": str(data), "limit": 3}, gen_kwargs="max_gen_toks=24")
    samples = sorted((s for s in out["samples"]["gsm8k_local"] if s["filter"] == "strict-match"),
                     key=lambda s: s["doc_id"])  # one sample per filter and item
    prompts = [s["arguments"][0][0] for s in samples]
    assert len(samples) == 3 and all(p.startswith("Question: ") and p.endswith("\nAnswer:") for p in prompts)
    ours = local.complete(prompts, max_tokens=24, stop=["Question:", "</s>", "\n\n"])
    assert [s["resps"][0][0] for s in samples] == ours
    assert "exact_match,strict-match" in out["results"]["gsm8k_local"]
