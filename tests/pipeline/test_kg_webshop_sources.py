"""data_pipeline sources for the KG and WebShop tasks: offline (oracle teacher and CoT annotation) runs whose
exported trajectories are AgentInstruct rows and load through the tfds builder; training questions never come
from the evaluation files or goals."""
import json

import pytest

pytest.importorskip("rdflib")
pytest.importorskip("bm25s")

from agentlm.configfile import load_config_file  # noqa: E402
from data_pipeline.defaults import base_config, source  # noqa: E402
from data_pipeline.export import to_agentinstruct  # noqa: E402
from data_pipeline.instructions import DERIVERS  # noqa: E402
from data_pipeline.run import run_stages  # noqa: E402
from tests.conftest import ROOT, shared_path  # noqa: E402
from tests.envs.webshop_catalog import write_catalog  # noqa: E402


def _exported(out, env):
    return [json.loads(x) for x in (out / "export" / "agentinstruct" / f"{env}.jsonl").read_text().splitlines()]


def _load(out, tmp_path):
    from agentlm.data import builders

    builder, report = builders.prepare("agent", [out / "export" / "agentinstruct"], tmp_path / "tfds", strict=True,
                                       verbose=False)
    assert sum(report.skipped.values()) == 0
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    return {s: sum(1 for _ in builder.as_dataset(split=s)) for s in manifest["counts"]}


def test_kg_training_questions_exclude_evaluation_items():
    kg = shared_path("data", "kg")
    src = source("kg_questions", "kg", path=str(kg / "kg_rl_all.json"), exclude=[str(kg / "dev.json")], n=0)
    tasks = DERIVERS["kg_questions"]("kg", src)
    dev = {item["qid"] for item in json.loads((kg / "dev.json").read_text())}
    assert len(tasks) == 1214 - 13 and not dev & {t.data["qid"] for t in tasks}


def test_pipeline_exports_kg_and_webshop_trajectories(tmp_path):
    kg = shared_path("data", "kg")
    train = tmp_path / "kg_train.json"  # the first 40 training questions: a small embedded graph, a quick test
    train.write_text(json.dumps(json.loads((kg / "kg_rl_all.json").read_text())[:40]))
    shop = write_catalog(tmp_path / "webshop")
    out = tmp_path / "run"
    c = base_config("kg_webshop_test")
    c.out_dir, c.progress, c.fsync = str(out), False, False
    kw = dict(path=str(train), exclude=[str(kg / "dev.json")], env_kwargs={"ontology_dir": str(kg / "ontology")})
    c.sources.kg = source("kg_questions", "kg", n=10, seed=0, **kw)
    c.sources.kg_annotated = source("kg_questions", "kg", method="annotate", n=3, seed=1, **kw)
    c.sources.webshop = source("webshop_goals", "webshop", path=f"{shop}::0:", allow_evaluated_goals=True,
                               env_kwargs={"spacy_model": ""})
    summary = run_stages(c)
    assert summary["rollout"]["done"] == 16
    rows = {env: _exported(out, env) for env in ("kg", "webshop")}
    assert len(rows["webshop"]) == 6  # every goal bought with reward 1
    assert 8 <= len(rows["kg"]) <= 13  # gold programs the embedded graph cannot answer are filtered out
    for env, exported in rows.items():
        assert all(to_agentinstruct(r) == r for r in exported)
        for r in exported:
            trained = [t["value"] for t in r["conversations"] if t["from"] == "gpt" and t["loss"]]
            assert trained and (env != "kg" or "Final Answer: #" in trained[-1])
            assert env != "webshop" or trained[-1].endswith("Action:\nclick[buy now]")
    assert _load(out, tmp_path) == {"kg": len(rows["kg"]), "webshop": 6}


def test_shipped_configs_name_training_data_only():
    kg = load_config_file(ROOT / "configs" / "pipeline" / "kg.py")
    assert kg.sources.kg.path.endswith("kg_rl_all.json") and any(p.endswith("dev.json") for p in kg.sources.kg.exclude)
    shop = load_config_file(ROOT / "configs" / "pipeline" / "webshop.py")
    assert "::" not in shop.sources.webshop.path and not shop.sources.webshop.allow_evaluated_goals
    with pytest.raises(ValueError, match="AgentBench evaluates"):
        DERIVERS["webshop_goals"]("w", source("webshop_goals", "webshop", path=f"{write_catalog_tmp()}::0:"))


def write_catalog_tmp():
    import tempfile
    return write_catalog(tempfile.mkdtemp())
