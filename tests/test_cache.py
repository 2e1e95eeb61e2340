"""agentlm.cache: concurrent builders build an entry once; broken entries are rebuilt, never read."""
import multiprocessing
import pathlib
import time

import pytest

from agentlm import cache


def _build_dir(args):
    root, counter = args
    def build(tmp: pathlib.Path):
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.3)  # long enough that every worker arrives while the first one builds
        (tmp / "payload").write_text("ok")
    path = cache.build_once(pathlib.Path(root) / "entry", build, directory=True)
    return (path / "payload").read_text()


def test_processes_build_a_directory_entry_once(tmp_path):
    counter = tmp_path / "builds"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_build_dir, [(str(tmp_path), str(counter))] * 4)
    assert results == ["ok"] * 4
    assert counter.read_text() == "x"


def test_partial_directory_entry_is_rebuilt(tmp_path, caplog):
    broken = tmp_path / "entry"
    broken.mkdir()
    (broken / "payload").write_text("half")  # no completion marker: a crashed build
    path = cache.build_once(broken, lambda tmp: (tmp / "payload").write_text("whole"), directory=True)
    assert (path / "payload").read_text() == "whole"
    assert "rebuilding" in caplog.text


def test_file_entry_with_validation_and_failed_build(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("{trunc")
    valid = lambda p: p.read_text().endswith("}")
    cache.build_once(path, lambda tmp: tmp.write_text('{"a": 1}'), directory=False, valid=valid)
    assert path.read_text() == '{"a": 1}'

    def failing(tmp):
        tmp.write_text("partial")
        raise OSError("disk full")
    with pytest.raises(OSError):
        cache.build_once(tmp_path / "g.json", failing, directory=False)
    assert not (tmp_path / "g.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".g.json.tmp")] == []


def test_write_atomic(tmp_path):
    cache.write_atomic(tmp_path / "a" / "x.txt", "hello")
    assert (tmp_path / "a" / "x.txt").read_text() == "hello"


def test_threads_of_one_process_build_an_entry_once(tmp_path):
    """The loop's worker threads ask for the same missing entry together (two episodes of one game)."""
    import concurrent.futures
    import threading

    builds = []
    started = threading.Barrier(4)

    def build(tmp: pathlib.Path):
        builds.append(1)
        time.sleep(0.3)
        (tmp / "payload").write_text("ok")

    def worker(_):
        started.wait()
        return (cache.build_once(tmp_path / "entry", build, directory=True) / "payload").read_text()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(worker, range(4))) == ["ok"] * 4
    assert builds == [1]
