"""The optional vision path: image patches -> Llama embedding space, at the image placeholder positions.

Fuyu's arrangement: no separate image tower in front of the decoder. Each patch (p x p x 3 uint8 pixels, as the
data pipeline packs them, aligned with the tokens) is scaled to [-1, 1], projected linearly into the embedding
width (with `patch_norm`, after adding the patch's own normalised contrast), given a learned embedding of
its index within its image (the decoder's own RoPE positions then order the
images among the text), and optionally refined by `encoder_layers` residual SwiGLU blocks applied per patch
(the decoder's attention mixes patches with each other and with the text). The result replaces the token
embedding wherever `image_mask` is 1; elsewhere the token embedding is untouched.

The blocks reuse the decoder's RMSNorm and MLP modules and are stacked, scanned and rematerialised the same way,
so their weights carry the same logical axes ("embed", "mlp") and shard by the same rules. The projection's input
axis is "patch" and the index table's rows "image_patches" (both replicated by default: they are small).

Pretrained encoders: `VisionConfig` fields describe only this projection path. A converted CLIP/SigLIP patch
embedding fits `patch_proj` when its patch size and width match (agentlm.checkpoint names the tensors); a
deeper pretrained tower is a different encoder and is not implemented here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from agentlm.model.config import LlamaConfig, VisionConfig  # noqa: F401  (VisionConfig: re-exported)
from agentlm.model.llama import MLP, Einsum, RMSNorm, _init, remat_policy


def patch_index(image_mask: jax.Array) -> jax.Array:
    """[B, T] index of each placeholder within its run of consecutive placeholders (0 elsewhere)."""
    m = image_mask > 0
    t = jnp.arange(m.shape[1], dtype=jnp.int32)[None]
    starts = m & ~jnp.pad(m, ((0, 0), (1, 0)))[:, :-1]
    run_start = jax.lax.cummax(jnp.where(starts, t, 0), axis=1)
    return jnp.where(m, t - run_start, 0)


class _Block(nn.Module):
    """One residual per-patch SwiGLU block (the decoder's modules), shaped for nn.scan."""

    cfg: LlamaConfig

    @nn.compact
    def __call__(self, x, _):
        x = nn.with_logical_constraint(x, ("batch", "length", "act_embed"))
        return x + MLP(self.cfg, name="mlp")(RMSNorm(self.cfg, name="norm")(x)), None


class VisionEmbed(nn.Module):
    """patches [B, T, patch_dim] uint8 (+ image_mask [B, T]) -> embeddings [B, T, E] in the compute dtype."""

    cfg: LlamaConfig    # with `vision` set

    @nn.compact
    def __call__(self, patches: jax.Array, image_mask: jax.Array) -> jax.Array:
        cfg, vc = self.cfg, self.cfg.vision
        if patches.shape[-1] != vc.patch_dim:
            raise ValueError(f"image patches have {patches.shape[-1]} values, the vision config expects "
                             f"{vc.patch_dim} ({vc.patch_size}x{vc.patch_size}x{vc.channels})")
        x = patches.astype(jnp.float32) * (2.0 / 255.0) - 1.0
        if vc.patch_norm:
            centred = x - x.mean(-1, keepdims=True)
            x = x + centred / (jnp.sqrt(jnp.mean(centred * centred, -1, keepdims=True)) + 0.1)
        x = nn.with_logical_constraint(x.astype(cfg.compute_dtype), ("batch", "length", None))
        x = Einsum(cfg, (vc.patch_dim, cfg.hidden_size), ("patch", "embed"), "btp,pe->bte", name="patch_proj")(x)
        table = self.param("patch_pos", _init(("image_patches", "embed")), (vc.max_patches, cfg.hidden_size),
                           cfg.weight_dtype)
        index = jnp.minimum(patch_index(image_mask), vc.max_patches - 1)
        x = x + jnp.take(table, index, axis=0).astype(cfg.compute_dtype)
        if vc.encoder_layers:
            block_cfg = cfg.replace(intermediate_size=vc.encoder_mlp or cfg.intermediate_size)
            block = _Block
            if cfg.remat_policy != "none":
                block = nn.remat(_Block, policy=remat_policy(cfg.remat_policy), prevent_cse=False)
            stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                            in_axes=nn.broadcast, length=vc.encoder_layers,
                            metadata_params={nn.PARTITION_NAME: "layers"})
            x, _ = stack(block_cfg, name="blocks")(x, None)
        return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))
