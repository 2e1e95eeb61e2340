"""agentlm.eval.agent on the KG and WebShop tasks: the oracles through the evaluation harness score with the
paper's metrics and count in the held-in overall with the paper's normalisers; a task whose data is absent is
reported as not run (WebShop without its official files), never as a crash or a zero."""
import pytest

pytest.importorskip("rdflib")
pytest.importorskip("bm25s")

from agentlm.configfile import load_config_file  # noqa: E402
from agentlm.eval import agent, report  # noqa: E402
from tests.conftest import ROOT, shared_path  # noqa: E402
from tests.envs.webshop_catalog import write_catalog  # noqa: E402


def _config(tmp_path, tasks):
    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.update(model="oracle", tasks=tasks, out=str(tmp_path / "run"), workers=2)
    return config


def test_kg_and_webshop_columns_with_paper_metrics(tmp_path):
    config = _config(tmp_path, "kg,webshop")
    config.kg.data_file = str(shared_path("data", "kg", "dev.json"))
    config.webshop.data_file = f"{write_catalog(tmp_path / 'webshop')}::0:"
    config.webshop.spacy_model = ""
    summary = agent.run(config)
    kg, ws = summary["tasks"]["kg"], summary["tasks"]["webshop"]
    assert kg["metric"] == "answer F1 x 100" and kg["score"] == 100.0
    assert kg["scored"] == 18 and kg["unscorable"] == 2  # two gold programs break AgentBench's rules
    assert ws["metric"] == "mean reward x 100" and ws["score"] == 100.0 and ws["n"] == 6
    held_in = summary["overall"]["held_in"]
    assert held_in["tasks"] == ["WebShop", "KG"]
    assert held_in["overall"] == pytest.approx((100 / 27.9 + 100 / 15.7) / 2)
    text = open(report.write_model_report(config.out)["markdown"]).read()
    assert "| kg (KG) | answer F1 x 100 | 18 | 100.00 |" in text
    assert "| webshop (WebShop) | mean reward x 100 | 6 | 100.00 |" in text


def test_missing_webshop_files_are_reported_not_run(tmp_path):
    config = _config(tmp_path, "webshop,kg")
    config.kg.data_file = str(shared_path("data", "kg", "dev.json"))
    config.kg.limit = 3
    summary = agent.run(config)  # config.webshop.data_file is empty: WebShop's files are not here
    ws = summary["tasks"]["webshop"]
    assert ws["score"] is None and "needs the official WebShop data files" in ws["skipped"]
    assert summary["tasks"]["kg"]["n"] == 3 and summary["overall"]["held_in"]["tasks"] == ["KG"]
    config.webshop.data_file = str(tmp_path / "no_such_dir")
    assert "no_such_dir does not exist" in agent.run(config)["tasks"]["webshop"]["skipped"]
    text = open(report.write_model_report(config.out)["markdown"]).read()
    assert "| NOT RUN (WebShop) | not run: " in text
    assert "no_such_dir does not exist (needs the official WebShop" in text
