"""The trainer on image rows: the mixture's own iterator carries image_mask / image_patches, the step passes them
to a vision model sharded over an 8-device mesh, the loss falls, and a checkpointed run resumes exactly."""
import json
import shutil

import numpy as np
import pytest

from agentlm.data import images
from agentlm.train import loop
from agentlm.train.config import ConfigError, default_config, validate
from tests.conftest import shared_path

PATCH = 8


def _rows(directory):
    """Screens whose colour decides the answer: only a model that reads the patches can lower the loss."""
    directory.mkdir()
    rows = []
    for i in range(32):
        colour = i % 4
        data = images.encode_png(np.full((16, 16, 3), 60 * colour, np.uint8))
        (directory / f"s{i}.png").write_bytes(data)
        rows.append({"id": f"shot_{i}", "conversations": [
            {"from": "human", "value": [{"type": "text", "text": "Which colour?"},
                                        {"type": "image", "path": f"s{i}.png", "sha256": images.sha256(data)}]},
            {"from": "gpt", "value": f"Act: click {7 * colour},{9 - colour}", "loss": True}]})
    (directory / "shots.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _config(tmp_path, steps, run="run"):
    general = tmp_path / "general"
    if not general.exists():
        _rows(tmp_path / "agent")
        general.mkdir()
        (general / "chat.jsonl").write_text("".join(json.dumps({"id": f"g{i}", "conversations": [
            {"from": "human", "value": f"Say {i}."}, {"from": "gpt", "value": f"{i} {i}"}]}) + "\n"
            for i in range(16)))
    c = default_config()
    c.run_dir = str(tmp_path / run)
    c.model.vision.patch_size, c.model.vision.max_patches = PATCH, 16
    c.data.source = "mixture"
    c.data.global_batch_size, c.data.seq_len = 8, 128
    m = c.data.mixture
    m.name, m.eta, m.system = "vision_train_test", 0.75, ""
    m.agent_paths, m.general_paths = [str(tmp_path / "agent")], [str(general)]
    m.tokenizer = str(shared_path("models", "stories260K-hf", "tokenizer.model"))
    m.image_patch, m.cache_dir = PATCH, str(tmp_path / "tfds")
    c.train.steps, c.optimizer.warmup_steps, c.optimizer.lr = steps, 2, 1e-2
    c.checkpoint.every, c.checkpoint.async_save = 10, False
    c.log.every, c.log.progress, c.log.tensorboard, c.log.eval_batches = 1, False, False, 0
    c.log.peak_flops_per_device = 1e11
    return c


@pytest.mark.slow  # two short training runs with tfds preparation: about a minute on a busy 2-core machine
def test_vision_run_learns_from_image_rows_and_resumes(tmp_path):
    batch = next(iter(_sources(_config(tmp_path, 5))))
    assert batch["image_patches"].shape == (8, 128, PATCH * PATCH * 3) and batch["image_mask"].sum() > 0
    assert not batch["loss_weights"][batch["image_mask"] == 1].any()

    full = loop.train(_config(tmp_path, 30, "full"))
    losses = [h["loss"] for h in full["history"] if "loss" in h]
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    # as if interrupted after the checkpoint of step 20: resuming replays steps 21..30 exactly (state and data)
    shutil.copytree(tmp_path / "full", tmp_path / "split")
    shutil.rmtree(tmp_path / "split" / "checkpoints" / "30")
    resumed = loop.train(_config(tmp_path, 30, "split"))
    tail = {h["step"]: h["loss"] for h in resumed["history"] if "loss" in h}
    assert sorted(tail) == list(range(21, 31))
    np.testing.assert_allclose([tail[s] for s in range(21, 31)], losses[20:30], rtol=1e-5)


def _sources(config):
    from agentlm.data.pipeline import make_batch_iterator

    return make_batch_iterator(config.data.mixture, config.data.global_batch_size, config.data.seq_len,
                               verbose=False)


def test_vision_model_and_mixture_must_agree(tmp_path):
    c = _config(tmp_path, 5)
    c.data.mixture.image_patch = 0
    with pytest.raises(ConfigError, match="image_patch"):
        validate(c)
    c = _config(tmp_path, 5)
    c.model.vision.patch_size = 0          # a text model on an image mixture
    with pytest.raises(ConfigError, match="image_patch"):
        validate(c)
