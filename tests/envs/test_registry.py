"""The environment registry as its consumers see it: every built-in environment is one entry with the paper's
metric on the percent scale, options typed from their declared defaults, and clear errors for what is unknown or
missing."""
import pytest

from agentlm.envs import db, household, miniwob, os_env, registry, sciworld
from agentlm.envs.base import Episode, Outcome, Task
from agentlm.envs.spec import EnvSpec, MissingDependency
from agentlm.eval import paper


def _ep(task_id, reward, outcome=None, **info):
    outcome = outcome or (Outcome.SUCCESS if reward >= 1 else Outcome.WRONG_ANSWER)
    return Episode(task_id, "x", [], reward, outcome, 1, info)


def test_builtin_entries_groups_and_paper_rows():
    specs = registry.specs()
    assert {"db", "os", "household", "sciworld", "miniwob", "back_office", "triage"} <= set(specs)
    assert {n: s.paper_task for n, s in specs.items() if s.group in ("held_in", "held_out")}.items() >= {
        "db": "DB", "os": "OS", "household": "ALFWorld", "sciworld": "SciWorld", "miniwob": "MiniWoB++"}.items()
    assert specs["back_office"].group == specs["triage"].group == "new_domain"
    assert paper.TASK_TO_PAPER["household"] == "ALFWorld" and "ALFWorld" in paper.STAND_INS["household"]
    assert paper.TASK_TO_PAPER["triage"] == "triage" and paper.TASK_TO_PAPER["mmlu"] == "MMLU"
    with pytest.raises(ValueError, match="unknown environment 'mind2web'.*registered: back_office"):
        registry.get("mind2web")


def test_every_metric_is_on_the_percent_scale_and_sets_unscorable_apart():
    tasks = [Task(f"t{i}", "x", {"type": [kind], "kind": "coin", "task": "click"}) for i, kind in
             enumerate(["counting", "INSERT", "UPDATE", "other"])]
    episodes = [_ep("t0", 1.0), _ep("t1", 1.0), _ep("t2", 0.0), _ep("t3", 0.0),
                _ep("t9", 0.0, Outcome.UNSCORABLE)]
    got = db.aggregate(episodes, tasks)  # SELECT-like 1/2, INSERT 1, UPDATE 0: mean of the three kinds
    assert got["score"] == pytest.approx(100 * (0.5 + 1 + 0) / 3) and got["unscorable"] == 1 and got["scored"] == 4
    assert os_env.aggregate(episodes, tasks)["score"] == 50.0
    assert household.aggregate(episodes, tasks)["score"] == 50.0
    assert sciworld.aggregate([_ep("t0", 0.5), _ep("t1", 1.0)], tasks)["score"] == 75.0
    assert miniwob.aggregate([_ep("t0", 1.0, success=True), _ep("t1", 0.4, success=False)], tasks)["score"] == 50.0
    for name in ("db", "os", "household"):
        assert registry.get(name).score(episodes, tasks)["score"] <= 100.0


def test_options_sections_and_round_limits():
    spec = registry.get("db")
    section = spec.section_defaults()
    assert section["backend"] == "sqlite" and section["prompt_file"] == "" and section["mode"] == "label"
    assert {"data_file", "split", "limit", "max_rounds"} <= set(section)
    assert spec.options_from({**section, "mode": "sql"}) == {**{k: section[k] for k in ("backend", "strict_tables",
                                                             "statement_timeout", "backend_options")}, "mode": "sql"}
    assert spec.parse_option("statement_timeout", "2") == 2.0 and spec.parse_option("mode", "sql") == "sql"
    assert registry.get("os").parse_option("show_work", "yes") is True
    with pytest.raises(ValueError, match="option statement_timeout='soon'"):
        spec.parse_option("statement_timeout", "soon")
    with pytest.raises(ValueError, match="unknown option"):
        spec.make_env(colour="red")
    env = spec.make_env(max_rounds=3, backend="sqlite")
    assert env.max_rounds == 3 and env.backend == "sqlite"
    assert spec.make_oracle(mode="sql", backend="sqlite").mode == "sql"  # each side takes its own options


class _Plain:
    max_rounds = 15

    def __init__(self, **_):
        pass


def test_missing_dependency_and_name_clashes():
    spec = EnvSpec(name="needs_things", env=_Plain, load_tasks=lambda s, sp: [], group="held_out",
                   requires=("no_such_module_xyz",), executables=("no-such-program-xyz",), install_hint="see docs")
    assert "no_such_module_xyz" in spec.problem() and "no-such-program-xyz" in spec.problem()
    with pytest.raises(MissingDependency, match="needs_things.*see docs"):
        spec.make_env()
    plain = EnvSpec(name="plain_rounds", env=_Plain, load_tasks=lambda s, sp: [], group="generator")
    assert plain.make_env(max_rounds=4).max_rounds == 4  # set on an environment whose constructor lacks it
    with pytest.raises(ValueError, match="give its items"):
        plain.tasks("")
    with pytest.raises(ValueError, match="'db' from test is already registered"):
        registry.register(EnvSpec(name="db", env=_Plain, load_tasks=lambda s, sp: [], group="held_in"),
                          origin="test")
    assert registry.register(registry.get("db")) is registry.get("db")  # the same spec again is a no-op


def test_a_real_task_outranks_its_stand_in_in_paper_names(monkeypatch):
    alfworld = EnvSpec(name="alfworld_test", env=_Plain, load_tasks=lambda s, sp: [], group="held_in",
                       paper_task="ALFWorld")
    monkeypatch.setitem(registry._SPECS, "alfworld_test", alfworld)
    assert paper.to_paper_names({"alfworld_test": 80.0, "household": 100.0}) == {"ALFWorld": 80.0}
    assert paper.to_paper_names({"household": 100.0}) == {"ALFWorld": 100.0}
