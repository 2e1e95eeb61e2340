"""The optional vision path: sharded == unsharded on simulated 8-device meshes, no effect without images, params
shard/convert/checkpoint like the text model's, and the config round-trips (JSON and HF config.json)."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from agentlm import model, sharding
from agentlm.model.config import LlamaConfig, VisionConfig
from agentlm.model.vision import patch_index

MESHES = [(8, 1, 1), (1, 8, 1), (1, 2, 4), (2, 2, 2)]
VISION = VisionConfig(patch_size=4, max_patches=32, encoder_layers=2, encoder_mlp=64)


def _cfg(**kw) -> LlamaConfig:
    return model.get_config("tiny").replace(vision=VISION, **kw)


def _batch(cfg, seed=0):
    """Two packed segments per row, the first with an image run of 6 patches, the second with 3."""
    rng = np.random.RandomState(seed)
    tokens = rng.randint(0, cfg.vocab_size, (8, 16)).astype(np.int32)
    segs = np.repeat([[1] * 10 + [2] * 4 + [0] * 2], 8, axis=0).astype(np.int32)
    pos = np.repeat([list(range(10)) + list(range(4)) + [0, 0]], 8, axis=0).astype(np.int32)
    mask = np.zeros((8, 16), np.int32)
    mask[:, 2:8] = 1
    mask[:, 11:14] = 1
    patches = rng.randint(0, 256, (8, 16, cfg.vision.patch_dim)).astype(np.uint8) * mask[..., None].astype(np.uint8)
    return tokens, pos, segs, patches, mask


def _forward(cfg, params, tokens, pos, segs, patches=None, mask=None):
    fn = jax.jit(lambda p, *a: model.apply(cfg, p, *a[:3], image_patches=a[3], image_mask=a[4])[0])
    return fn(params, tokens, pos, segs, patches, mask)


@pytest.fixture(scope="module")
def reference():
    cfg = _cfg()
    params = model.init_params(cfg, jax.random.key(1))
    batch = _batch(cfg)
    return cfg, params, batch, np.asarray(_forward(cfg, params, *batch))


def test_patch_index_restarts_per_run():
    mask = np.array([[0, 1, 1, 1, 0, 1, 1, 0]])
    assert patch_index(mask).tolist() == [[0, 0, 1, 2, 0, 0, 1, 0]]


def test_param_count_and_logical_axes(reference):
    cfg, params, _, _ = reference
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()
    axes = model.param_logical_axes(cfg)["vision"]
    assert tuple(axes["patch_proj"]["kernel"]) == ("patch", "embed")
    assert tuple(axes["blocks"]["mlp"]["gate_proj"]["kernel"]) == ("layers", "embed", "mlp")


@pytest.mark.parametrize("shape", MESHES, ids=lambda s: "data{}_fsdp{}_tensor{}".format(*s))
def test_sharded_forward_with_images_equals_single_device(reference, shape):
    cfg, params, batch, single = reference
    mesh = sharding.make_mesh(dict(zip(sharding.MESH_AXES, shape)))
    sharded = jax.device_put(params, model.param_shardings(cfg, mesh))
    gate = sharded["vision"]["blocks"]["mlp"]["gate_proj"]["kernel"]
    assert gate.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor")
    batch = [jax.device_put(x, sharding.batch_sharding(mesh, ndim=x.ndim)) for x in batch]
    with sharding.activate(mesh):
        logits = _forward(cfg, sharded, *batch)
    assert float(np.max(np.abs(np.asarray(logits) - single))) <= 1e-5


def test_images_change_only_what_they_can_see(reference):
    """Patches at placeholders change the logits from there on within their segment, never before or elsewhere;
    with no patches (or an all-zero mask) the vision model is the text model with the same weights."""
    cfg, params, (tokens, pos, segs, patches, mask), with_images = reference
    text_cfg = cfg.replace(vision=None)
    text_params = {k: v for k, v in params.items() if k != "vision"}
    text = np.asarray(jax.jit(lambda p, *a: model.apply(text_cfg, p, *a)[0])(text_params, tokens, pos, segs))
    np.testing.assert_array_equal(np.asarray(_forward(cfg, params, tokens, pos, segs, patches, mask * 0)), text)
    np.testing.assert_array_equal(np.asarray(model.apply(cfg, params, tokens, pos, segs)[0]), text)
    diff = np.abs(with_images - text).max(axis=(0, 2))
    assert (diff[:2] == 0).all() and (diff[2:8] > 0).all() and (diff[10:11] == 0).all() and (diff[11:14] > 0).all()
    with pytest.raises(ValueError, match="text-only model"):
        model.apply(text_cfg, text_params, tokens, pos, segs, image_patches=patches, image_mask=mask)


def test_config_round_trips_json_and_hf(tmp_path):
    cfg = _cfg()
    cfg.to_json(tmp_path / "c.json")
    assert LlamaConfig.from_json(tmp_path / "c.json") == cfg
    assert LlamaConfig.from_hf(cfg.to_hf()) == cfg.replace(max_position_embeddings=cfg.max_position_embeddings)
    assert "agentlm_vision" not in model.get_config("tiny").to_hf()
    with pytest.raises(ValueError, match="unknown VisionConfig fields"):
        LlamaConfig(vision={"patch": 3})


def test_hf_export_import_and_orbax_round_trip(reference, tmp_path):
    from agentlm import checkpoint

    cfg, params, batch, single = reference
    checkpoint.save_hf(cfg, params, tmp_path / "hf")
    loaded_cfg, loaded = checkpoint.load_hf(tmp_path / "hf")
    assert loaded_cfg.vision == cfg.vision
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    checkpoint.save(tmp_path / "orbax", cfg, jax.device_put(params, model.param_shardings(cfg, mesh)))
    restored_cfg, restored = checkpoint.load(tmp_path / "orbax")
    assert restored_cfg == cfg
    np.testing.assert_array_equal(np.asarray(_forward(cfg, jax.device_get(restored), *batch)), single)


def test_remat_policy_gives_the_same_loss_and_grads(reference):
    """The vision blocks are rematerialised with the decoder's policy: same loss and gradients as without."""
    cfg, params, (tokens, pos, segs, patches, mask), _ = reference

    def loss(c):
        def f(p):
            logits, _ = model.apply(c, p, tokens[:2], pos[:2], segs[:2], image_patches=patches[:2],
                                    image_mask=mask[:2])
            return (logits ** 2).mean()
        return jax.jit(jax.value_and_grad(f))(params)

    (l0, g0), (l1, g1) = loss(cfg), loss(cfg.replace(remat_policy="full"))
    assert abs(float(l0) - float(l1)) <= 1e-6
    vision0, vision1 = g0["vision"], g1["vision"]
    for a, b in zip(jax.tree.leaves(vision0), jax.tree.leaves(vision1)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    assert float(np.abs(np.asarray(vision0["patch_proj"]["kernel"])).sum()) > 0


def test_patch_norm_adds_contrast_and_leaves_flat_patches_alone(reference):
    """patch_norm (same parameters) changes what a patch with contrast embeds to, not what a flat one does, and an
    old config (no patch_norm field) reads as off."""
    cfg, params, (tokens, pos, segs, patches, mask), logits = reference
    normed = cfg.replace(vision=dataclasses.replace(VISION, patch_norm=True))
    flat = (np.ones_like(patches) * 200 * mask[..., None]).astype(np.uint8)
    np.testing.assert_allclose(_forward(normed, params, tokens, pos, segs, flat, mask),
                               _forward(cfg, params, tokens, pos, segs, flat, mask), atol=1e-5)
    assert not np.allclose(_forward(normed, params, tokens, pos, segs, patches, mask), logits, atol=1e-3)
    old = {k: v for k, v in dataclasses.asdict(VISION).items() if k != "patch_norm"}
    assert LlamaConfig(vision=old).vision.patch_norm is False
    assert LlamaConfig.from_hf(normed.to_hf()).vision.patch_norm is True
