"""TextWorld games in the cache: several processes (each with two worker threads) that start on an empty cache
and need the same games at once all win every game, each game is generated exactly once, and an entry a killed
build left behind is rebuilt, not played (issue 24: a cold cache with --workers 2 lost episodes)."""
import logging
import multiprocessing

import pytest

from agentlm import cache
from agentlm.envs import household, household_games
from agentlm.envs.loop import run_tasks

GAMES = [("coin", 1, 0), ("treasure", 1, 0), ("cooking", 1, 0)]


def _play_all(args):
    """One process of the test: counts its generations in `counter`, plays every game with two threads."""
    root, counter = args
    original = household_games.generate

    def counted(kind, level, seed, out_dir):
        with open(counter, "a") as f:  # one short O_APPEND write per build: lines from processes never mix
            f.write(f"{kind}-L{level}-S{seed}\n")
        original(kind, level, seed, out_dir)

    household_games.generate = counted
    tasks = [household.make_task(*g) for g in GAMES]
    episodes = run_tasks(lambda: household.HouseholdEnv(game_dir=root), household.WalkthroughOracle(game_dir=root),
                         tasks, workers=2, progress=False)
    return [(e.task_id, e.outcome.value, e.info.get("error")) for e in episodes]


@pytest.mark.slow
def test_processes_on_an_empty_cache_each_game_built_once(tmp_path):
    root, counter = tmp_path / "textworld", tmp_path / "builds.txt"
    n = 3
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        results = pool.map(_play_all, [(str(root), str(counter))] * n)
    expected = [(household.make_task(*g).id, "success", None) for g in GAMES]
    assert results == [expected] * n
    assert sorted(counter.read_text().split()) == sorted(f"{k}-L{lv}-S{s}" for k, lv, s in GAMES)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(
        f"{k}-L{lv}-S{s}" for k, lv, s in GAMES)
    assert not [p for p in root.iterdir() if ".tmp-" in p.name or ".broken-" in p.name]


def test_broken_game_entries_are_rebuilt(tmp_path, caplog):
    entry = household_games.game_dir("coin", 1, 0, tmp_path)
    good = household_games.walkthrough("coin", 1, 0, tmp_path)
    assert good and cache.is_complete(entry, household_games._entry_ok)

    (entry / ".complete").unlink()  # a build killed before it finished: never played
    caplog.set_level(logging.WARNING)
    env = household.HouseholdEnv(game_dir=str(tmp_path))
    assert "Your task is to:" in env.reset(household.make_task("coin", 1, 0))[-1]["value"]
    env.close()
    assert "rebuilding" in caplog.text and "coin game, level 1, seed 0" in caplog.text
    assert household_games.walkthrough("coin", 1, 0, tmp_path) == good

    (entry / household_games.GAME).write_bytes(b"")  # marked complete, but the game file is empty
    assert not cache.is_complete(entry, household_games._entry_ok)


def test_cache_location_and_bad_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLM_CACHE", str(tmp_path / "c"))
    assert household_games.cache_dir() == tmp_path / "c" / "textworld"
    with pytest.raises(ValueError, match="level must be in 1..3"):
        household_games.game_dir("cooking", 7, 0)
    assert not (tmp_path / "c").exists()  # a bad spec builds nothing
