"""The registered Mixture used the way seqio/t5x users call it: seqio's defaults, the Mixture's rates, the
project's FeatureConverter matching the trainer's batches, and the docs/seqio.md recipe run as written."""
import collections
import json
import pathlib
import re

import numpy as np
import pytest

from agentlm.data.config import default_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEQ_LEN = 128


def _agent_rows(task: str, n: int):
    for i in range(n):
        yield {"id": f"{task}_{i}", "conversations": [
            {"from": "human", "value": f"Task {task} number {i}: count to {i % 7 + 2}."},
            {"from": "gpt", "value": "Ok.", "loss": False},
            {"from": "human", "value": "Go."},
            {"from": "gpt", "value": "Think: easy.\nAct: " + " ".join(str(k) for k in range(1, i % 7 + 3)),
             "loss": True}]}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Agent and general data the project makes itself (word games, toy trajectories) and a BPE tokenizer."""
    from data_pipeline import word_games

    root = tmp_path_factory.mktemp("seqio_toy")
    general, _ = word_games.write_general(root, n_train=400, n_eval=4, seed=3)
    agent_dir = root / "agent"
    agent_dir.mkdir()
    for task, n in (("toya", 150), ("toyb", 90)):
        (agent_dir / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _agent_rows(task, n)))
    texts = word_games.conversation_texts([general, *agent_dir.glob("*.jsonl")])
    tokenizer = word_games.train_tokenizer(texts, 400, root / "tokenizer")
    return default_config(name="seqio_interop_toy", agent_paths=(str(agent_dir),), general_paths=(str(general),),
                          tokenizer=str(tokenizer), cache_dir=str(root / "tfds"))


def _register(config, eta):
    from agentlm.data import tasks

    config = config.copy_and_resolve_references()
    config.eta = eta
    tasks.register(config, verbose=False)
    return config


@pytest.mark.parametrize("eta", [0.0, 0.2, 1.0])
def test_get_dataset_with_seqio_defaults_samples_at_eta(toy, eta):
    import seqio

    config = _register(toy, eta)
    mixture = seqio.get_mixture_or_task(config.name)
    ds = mixture.get_dataset(sequence_length=None, split="train", shuffle=True, seed=None,
                             passthrough_features=["id"])
    n = 10_000
    kinds = collections.Counter(ex["id"].startswith(b"toy") for ex in ds.take(n).as_numpy_iterator())
    assert sum(kinds.values()) == n        # num_epochs=None: the mixture repeats its small Tasks
    assert abs(kinds[True] / n - eta) <= 0.01, kinds


def test_shuffle_changes_order_with_the_seed(toy):
    import seqio

    config = _register(toy, 0.5)
    task = seqio.get_mixture_or_task("agent_toya")

    def first(shuffle, seed=None):
        return [tuple(ex["targets"]) for ex in task.get_dataset(None, shuffle=shuffle, seed=seed).take(20)
                .as_numpy_iterator()]

    ordered = first(False)
    assert len(set(ordered)) == 20
    assert first(True, 1) == first(True, 1)
    assert first(True, 1) != first(True, 2) and first(True, 1) != ordered


def _segments(rows: dict) -> dict:
    """token tuple of each packed conversation -> (targets, positions, loss weights) as tuples."""
    out = {}
    for r in range(rows["inputs"].shape[0]):
        seg = rows["segment_ids"][r]
        for s in set(seg.tolist()) - {0}:
            at = seg == s
            out[tuple(rows["inputs"][r][at])] = (tuple(rows["targets"][r][at]), tuple(rows["positions"][r][at]),
                                                 tuple(rows["loss_weights"][r][at]))
            assert rows["positions"][r][at][0] == 0 and np.all(np.diff(np.flatnonzero(at)) == 1)
    return out


def test_converter_rows_match_the_trainer_batches(toy):
    import seqio

    from agentlm.data import pipeline, tasks

    config = _register(toy, 0.5)
    trainer = pipeline.make_batch_iterator(config, batch_size=8, seq_len=SEQ_LEN, seed=0, verbose=False)
    from_trainer = {}
    for _ in range(12):
        from_trainer.update(_segments(next(trainer)))
    from_seqio = {}
    for name in ("agent_toya", "agent_toyb", "general_train"):
        ds = seqio.get_dataset(name, task_feature_lengths={"targets": SEQ_LEN, "loss_mask": SEQ_LEN},
                               feature_converter=tasks.PackedConversationConverter(), dataset_split="train",
                               shuffle=False, num_epochs=1, trim_output_features=False)
        for row in ds.as_numpy_iterator():
            from_seqio.update(_segments({k: v[None] for k, v in row.items()}))
    assert len(from_trainer) > 80
    missing = set(from_trainer) - set(from_seqio)
    assert not missing, f"{len(missing)} trainer conversations never came out of the seqio path"
    for tokens, content in from_trainer.items():
        assert from_seqio[tokens] == content


def test_converter_refuses_examples_seqio_cut_mid_turn(toy):
    import seqio

    from agentlm.data import tasks

    _register(toy, 0.5)
    ds = seqio.get_dataset("agent_toya", task_feature_lengths={"targets": 24, "loss_mask": 24},
                           feature_converter=tasks.PackedConversationConverter(), shuffle=False, num_epochs=1)
    import tensorflow as tf

    # raised inside tf.data's generator, so it reaches the caller as tf's InvalidArgumentError with our message
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="trim_output_features=False"):
        next(ds.as_numpy_iterator())


def test_docs_recipe_runs(toy, monkeypatch, tmp_path):
    """The python block of docs/seqio.md, run as written with the toy data's config file."""
    text = (ROOT / "docs" / "seqio.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    config_file = tmp_path / "toy_mixture.py"
    config_file.write_text(
        "from agentlm.data.config import default_config\n\n\ndef get_config():\n"
        f"    return default_config(name='seqio_docs_toy', agent_paths={tuple(toy.agent_paths)!r}, "
        f"general_paths={tuple(toy.general_paths)!r}, tokenizer={toy.tokenizer!r}, cache_dir={toy.cache_dir!r})\n")
    code = code.replace('"configs/mixture/agenttuning.py"', repr(str(config_file))).replace("4096", str(SEQ_LEN))
    scope: dict = {}
    exec(compile(code, "docs/seqio.md", "exec"), scope)
    row = scope["row"]
    assert set(row) == {"inputs", "targets", "positions", "segment_ids", "loss_weights"}
    assert row["inputs"].shape == (SEQ_LEN,) and row["segment_ids"].max() >= 1 and row["loss_weights"].sum() > 0


def test_partial_reads_print_no_cache_warning(toy, tmp_path):
    """seqio's in-memory cache of a partly read Task made tf.data warn at every early stop; the Tasks do not
    mem-cache, so nothing is discarded and nothing is printed (TensorFlow logs from C++, hence a subprocess)."""
    import subprocess
    import sys

    script = tmp_path / "partial.py"
    script.write_text(
        "import seqio\nfrom agentlm.data import tasks\nfrom agentlm.data.config import default_config\n"
        f"c = default_config(name='seqio_warn_toy', agent_paths={tuple(toy.agent_paths)!r}, "
        f"general_paths={tuple(toy.general_paths)!r}, tokenizer={toy.tokenizer!r}, cache_dir={toy.cache_dir!r})\n"
        "tasks.register(c, verbose=False)\n"
        "for seed in range(3):\n"
        "    ds = seqio.get_mixture_or_task(c.name).get_dataset(sequence_length=None, split='train', seed=seed)\n"
        "    assert len(list(ds.take(5).as_numpy_iterator())) == 5\n"
        "    ds = seqio.get_mixture_or_task('agent_toya').get_dataset(None, shuffle=False)\n"
        "    assert len(list(ds.take(5).as_numpy_iterator())) == 5\n")
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "did not fully read" not in done.stderr
