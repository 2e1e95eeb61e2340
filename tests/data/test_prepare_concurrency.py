"""builders.prepare under concurrency: processes that start together on an empty cache all get the whole
dataset and the copy is prepared once; a copy a killed preparation left behind is prepared again, not read."""
import json
import logging
import multiprocessing
import pathlib

import pytest


def _rows(n: int, prefix: str) -> str:
    return "".join(json.dumps({"id": f"{prefix}_{i}", "conversations": [
        {"from": "human", "value": f"question {i}", "loss": None},
        {"from": "gpt", "value": f"answer {i}", "loss": True}]}) + "\n" for i in range(n))


def _write_sources(root: pathlib.Path) -> list[str]:
    root.mkdir()
    (root / "os.jsonl").write_text(_rows(5, "os"))
    (root / "db.jsonl").write_text(_rows(3, "db"))
    return [str(root)]


def _prepare_and_read(args):
    """One process: counts its preparations in `counter`, then reads every split of the copy it got."""
    paths, cache_dir, counter = args
    from agentlm.data import builders

    original = builders.AgentInstruct.download_and_prepare

    def counted(self, *a, **k):
        with open(counter, "a") as f:
            f.write("prepared\n")
        return original(self, *a, **k)

    builders.AgentInstruct.download_and_prepare = counted
    builder, report = builders.prepare("agent", paths, cache_dir, strict=True, verbose=False)
    ids = {split: sorted(r["id"].decode() for r in builder.as_dataset(split=split).as_numpy_iterator())
           for split in sorted(builder.info.splits)}
    return ids, report.kept


@pytest.mark.slow
def test_processes_on_an_empty_cache_prepare_once(tmp_path):
    paths = _write_sources(tmp_path / "src")
    counter = tmp_path / "prepared.txt"
    n = 3
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        results = pool.map(_prepare_and_read, [(paths, str(tmp_path / "cache"), str(counter))] * n)
    ids = {"db": sorted(f"db_{i}" for i in range(3)), "os": sorted(f"os_{i}" for i in range(5))}
    assert [r[0] for r in results] == [ids] * n
    assert counter.read_text() == "prepared\n"
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name]  # no temporary copy left
    assert (entry / ".complete").is_file()


def test_a_partial_copy_is_prepared_again(tmp_path, caplog, capsys):
    from agentlm.data import builders

    paths = _write_sources(tmp_path / "src")
    builder, report = builders.prepare("agent", paths, tmp_path / "cache", verbose=False)
    entry = pathlib.Path(builder.data_dir).parents[1]
    (builders._report_path(entry, builders.AgentInstruct)).unlink()  # killed before the report was written
    caplog.set_level(logging.WARNING)
    again, report2 = builders.prepare("agent", paths, tmp_path / "cache", verbose=True)
    assert "rebuilding" in caplog.text and "prepared agent_instruct copy" in caplog.text
    assert report2.kept == report.kept
    assert sorted(again.info.splits) == ["db", "os"]
    assert "reused" not in capsys.readouterr().out  # it was prepared, not read back
    _, report3 = builders.prepare("agent", paths, tmp_path / "cache", verbose=True)
    assert report3.kept == report.kept and "reused" in capsys.readouterr().out
