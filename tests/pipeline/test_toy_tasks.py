"""The toy world's task families (data_pipeline.sources.toy_tasks): reproducible items in the dbbench and
os_interaction layouts, new instances per seed, held-out wording disjoint from held-in, and every family solved by
its environment's oracle through the real environment (SQLite; the bwrap sandbox for OS) with the toy prompts."""
import json
import os
import pathlib

import pytest

from agentlm.envs import loop, registry
from agentlm.envs.base import Task
from agentlm.envs.os_sandbox import bwrap_available
from data_pipeline.sources import toy_tasks

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMPTS = {"db": ROOT / "configs/envs/toy_db_scaffold.json", "os": ROOT / "configs/envs/toy_os_scaffold.json"}
NO_BWRAP = bwrap_available()


def test_items_are_reproducible_and_new_per_seed():
    for family in toy_tasks.FAMILIES:
        assert toy_tasks.derive_items(family, 3, 5) == toy_tasks.derive_items(family, 3, 5)
        a, b = toy_tasks.derive_items(family, 0, 20), toy_tasks.derive_items(family, 1001, 20)
        assert a != b and len(a) == len(b) == 20


def test_held_out_wording_is_never_trained_on():
    held_in = {toy_tasks.derive_items(f, 0, 1)[0]["description"] for f in toy_tasks.HELD_IN}
    for family in toy_tasks.HELD_OUT:
        assert toy_tasks.derive_items(family, 0, 1)[0]["description"] not in held_in
    assert set(toy_tasks.HELD_IN) & set(toy_tasks.HELD_OUT) == set()


def _answer(item: dict) -> str:
    return item["label"][0] if "label" in item else item["evaluation"]["match"]


def test_answers_are_unknowable_without_reading_the_observation():
    """Answer spaces large enough that a constant (or a memorised training answer) is almost never right: the
    made-up names and words of 300 instances are nearly all distinct and new at another seed, and counts spread
    over 1..MAX_COUNT."""
    for family in ("db_first", "os_read"):
        train = [_answer(it) for it in toy_tasks.derive_items(family, 0, 300)]
        held = [_answer(it) for it in toy_tasks.derive_items(family, 1001, 20)]
        assert len(set(train)) >= 280, family
        assert len(set(held) - set(train)) >= 18, family
    for family in ("db_count", "os_count", "db_tally", "os_tally"):
        counts = [int(_answer(it)) for it in toy_tasks.derive_items(family, 0, 300)]
        assert min(counts) >= 1 and max(counts) <= toy_tasks.MAX_COUNT
        assert len(set(counts)) >= 0.8 * toy_tasks.MAX_COUNT and max(counts.count(c) for c in counts) <= 12
    item = toy_tasks.derive_items("db_count", 5, 1)[0]
    assert len(item["table"]["table_info"]["rows"]) == int(item["label"][0])


def test_unknown_family_and_env_mismatch_are_refused():
    with pytest.raises(ValueError, match="'db_lookup' is unknown"):
        toy_tasks.derive_items("db_lookup", 0, 1)
    from data_pipeline.defaults import source
    from data_pipeline.instructions import derive_toy_tasks

    with pytest.raises(ValueError, match="'os_read' is a os family, but the source's env is 'db'"):
        derive_toy_tasks("toy_db", source("toy_tasks", "db", families=("db_count", "os_read"), n=1))


def test_eval_item_files(tmp_path):
    paths = toy_tasks.write_eval_items(str(tmp_path), 1001, 4)
    assert set(paths) == set(toy_tasks.FAMILIES)
    rows = [json.loads(line) for line in pathlib.Path(paths["db_first"]).read_text().splitlines()]
    assert len(rows) == 4 and all(r["family"] == "db_first" and r["table"]["table_name"] == "items" for r in rows)


@pytest.mark.parametrize("family", list(toy_tasks.FAMILIES))
def test_oracle_solves_every_family_through_the_environment(family):
    env_name = toy_tasks.family_env(family)
    if env_name == "os" and NO_BWRAP is not None and not os.environ.get("CI"):
        pytest.skip(str(NO_BWRAP))
    spec = registry.get(env_name)
    prompt = str(PROMPTS[env_name])
    oracle_options = {"prompt_file": prompt, "show_work": True} if env_name == "os" else {"mode": "sql"}
    items = toy_tasks.derive_items(family, 7, 3)
    tasks = [Task(f"{family}_{i}", env_name, item, "test") for i, item in enumerate(items)]
    episodes = loop.run_tasks(spec.env_factory(prompt_file=prompt), spec.make_oracle(**oracle_options), tasks,
                              loop.LoopConfig(max_rounds=5), workers=1)
    assert [e.reward for e in episodes] == [1.0, 1.0, 1.0]
    assert all(e.rounds == 2 for e in episodes)  # one operation, one answer
    first = episodes[0].conversation
    assert first[0]["value"] == json.loads(pathlib.Path(prompt).read_text())["turns"][0]["value"]  # the toy prompt
