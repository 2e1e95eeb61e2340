"""The teacher's response cache: processes sharing one cache file all succeed and see each other's replies, and
a damaged cache (garbage, a truncated file, a row that is not JSON) is logged and replaced, never read."""
import logging
import multiprocessing
import sqlite3

import pytest

from data_pipeline.cache import ResponseCache, request_key


def _writer(args):
    """One process: opens the shared cache, writes its own replies and a common one, reads all of its own back."""
    path, worker, n = args
    cache = ResponseCache(path)
    try:
        for i in range(n):
            req = {"worker": worker, "i": i}
            cache.put(request_key(req), req, {"reply": f"{worker}-{i}"})
        cache.put(request_key({"common": 1}), {"common": 1}, {"reply": "same"})
        return [cache.get(request_key({"worker": worker, "i": i}))["reply"] for i in range(n)]
    finally:
        cache.close()


def test_processes_share_one_cache(tmp_path):
    path, n, workers = str(tmp_path / "teacher_cache.sqlite"), 20, 4
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_writer, [(path, w, n) for w in range(workers)])
    assert results == [[f"{w}-{i}" for i in range(n)] for w in range(workers)]
    cache = ResponseCache(path)
    assert len(cache) == workers * n + 1 and cache.get(request_key({"common": 1})) == {"reply": "same"}
    cache.close()


def _filled(path, n=200):
    cache = ResponseCache(path)
    for i in range(n):
        cache.put(request_key({"i": i}), {"i": i}, {"reply": "x" * 200 + str(i)})
    cache.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_cache_file_is_moved_aside_and_replaced(tmp_path, caplog, damage):
    path = tmp_path / "teacher_cache.sqlite"
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    else:
        _filled(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    caplog.set_level(logging.WARNING)
    cache = ResponseCache(path)
    assert "unreadable" in caplog.text and str(path) in caplog.text
    assert len(cache) == 0 and cache.get(request_key({"i": 1})) is None
    cache.put(request_key({"i": 1}), {"i": 1}, {"reply": "fresh"})
    assert cache.get(request_key({"i": 1})) == {"reply": "fresh"}
    cache.close()
    (aside,) = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert aside.stat().st_size > 0  # the damaged file is kept for inspection, not deleted


def test_sound_cache_is_reused_and_bad_row_is_asked_again(tmp_path, caplog):
    path = tmp_path / "teacher_cache.sqlite"
    _filled(path, n=3)
    db = sqlite3.connect(str(path))
    db.execute("UPDATE responses SET response = ? WHERE key = ?", ('{"reply": "cut sho', request_key({"i": 2})))
    db.commit()
    db.close()
    caplog.set_level(logging.WARNING)
    cache = ResponseCache(path)
    assert "unreadable" not in caplog.text and len(cache) == 3
    assert cache.get(request_key({"i": 0}))["reply"].endswith("0")
    assert cache.get(request_key({"i": 2})) is None
    assert "not valid JSON" in caplog.text and len(cache) == 2
    cache.close()
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
