"""The one table that relates our parameter tree to Hugging Face `LlamaForCausalLM` tensor names.

Each entry says how an HF tensor (or, for scanned layers, one HF tensor per layer) becomes our array:
reshape the HF matrix into an "expanded" shape, then transpose. Both directions and shard-wise reading
are derived from that one description, so the mapping cannot drift between import and export.
HF's q/k projections are already in the rotate-half layout our rotary embedding uses: no permutation.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from agentlm.model.config import LlamaConfig

# Non-parameter buffers that older HF exports carry; they hold nothing we need (recomputed from rope_theta).
IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)


@dataclasses.dataclass(frozen=True)
class TensorMap:
    """Our parameter `path` <-> HF tensor `hf_name` (with `{i}` = layer index when `stacked`).

    ours(layer) = hf.reshape(expanded).transpose(perm); `groups[j]` lists which expanded axes make up
    HF axis j (row-major), so a slice of our array maps back to a contiguous range of HF rows/columns.
    """

    path: tuple[str, ...]
    hf_name: str
    hf_shape: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]  # expanded sizes per HF axis
    perm: tuple[int, ...]
    stacked: bool
    num_layers: int

    @property
    def expanded(self) -> tuple[int, ...]:
        return tuple(s for g in self.groups for s in g)

    @property
    def layer_shape(self) -> tuple[int, ...]:
        return tuple(self.expanded[p] for p in self.perm)

    @property
    def shape(self) -> tuple[int, ...]:
        return ((self.num_layers,) if self.stacked else ()) + self.layer_shape

    @property
    def key(self) -> str:
        return "/".join(self.path)

    def hf_names(self) -> list[str]:
        return [self.hf_name.format(i=i) for i in range(self.num_layers)] if self.stacked else [self.hf_name]

    def to_ours(self, hf: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(hf.reshape(self.expanded).transpose(self.perm))

    def to_hf(self, ours_layer: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(ours_layer.transpose(np.argsort(self.perm)).reshape(self.hf_shape))

    def read_block(self, get_slice, ours_index: tuple[slice, ...]) -> np.ndarray:
        """Our array restricted to `ours_index` (one layer's axes), reading only the HF rows/columns it needs.

        `get_slice(hf_slices)` returns the HF tensor restricted to a tuple of slices.
        """
        exp_slices = [slice(None)] * len(self.expanded)
        for our_axis, sl in enumerate(ours_index):
            exp_slices[self.perm[our_axis]] = sl
        hf_slices, inner, axis = [], [], 0
        for group in self.groups:
            outer = exp_slices[axis]
            o0, o1, _ = outer.indices(group[0])
            block = math.prod(group[1:])
            hf_slices.append(slice(o0 * block, o1 * block))
            inner.append(slice(None))
            inner.extend(exp_slices[axis + 1: axis + len(group)])
            axis += len(group)
        chunk = np.asarray(get_slice(tuple(hf_slices)))
        sub_shape = []
        for j, group in enumerate(self.groups):
            sub_shape.extend([chunk.shape[j] // math.prod(group[1:])] + list(group[1:]))
        chunk = chunk.reshape(sub_shape)[tuple(inner)]
        return np.ascontiguousarray(chunk.transpose(self.perm))


def tensor_maps(cfg: LlamaConfig) -> list[TensorMap]:
    """Every parameter of `cfg`'s model with its HF counterpart, in HF file order."""
    e, m, v, d = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.head_dim
    h, k, n = cfg.num_heads, cfg.num_kv_heads, cfg.num_layers

    def layer(path, name, hf_shape, groups, perm):
        return TensorMap(("layers",) + path, f"model.layers.{{i}}.{name}", hf_shape, groups, perm, True, n)

    def single(path, name, hf_shape, groups, perm):
        return TensorMap(path, name, hf_shape, groups, perm, False, n)

    maps = [single(("embed_tokens", "embedding"), "model.embed_tokens.weight", (v, e), ((v,), (e,)), (0, 1))]
    for proj, heads in (("q_proj", h), ("k_proj", k), ("v_proj", k)):
        # HF [heads*D, E] -> expanded [heads, D, E] -> ours [E, heads, D]
        maps.append(layer(("self_attn", proj, "kernel"), f"self_attn.{proj}.weight", (heads * d, e),
                          ((heads, d), (e,)), (2, 0, 1)))
    # HF [E, H*D] -> expanded [E, H, D] -> ours [H, D, E]
    maps.append(layer(("self_attn", "o_proj", "kernel"), "self_attn.o_proj.weight", (e, h * d), ((e,), (h, d)),
                      (1, 2, 0)))
    for proj in ("gate_proj", "up_proj"):  # HF [M, E] -> ours [E, M]
        maps.append(layer(("mlp", proj, "kernel"), f"mlp.{proj}.weight", (m, e), ((m,), (e,)), (1, 0)))
    maps.append(layer(("mlp", "down_proj", "kernel"), "mlp.down_proj.weight", (e, m), ((e,), (m,)), (1, 0)))
    for norm in ("input_layernorm", "post_attention_layernorm"):
        maps.append(layer((norm, "scale"), f"{norm}.weight", (e,), ((e,),), (0,)))
    maps.append(single(("norm", "scale"), "model.norm.weight", (e,), ((e,),), (0,)))
    if not cfg.tie_word_embeddings:  # HF [V, E] -> ours [E, V]
        maps.append(single(("lm_head", "kernel"), "lm_head.weight", (v, e), ((v,), (e,)), (1, 0)))
    return maps + vision_maps(cfg)


def vision_maps(cfg: LlamaConfig) -> list[TensorMap]:
    """The vision path's tensors (agentlm.model.vision), under `vision.` names in torch Linear layout [out, in].
    HF's LlamaForCausalLM has no such tensors: exported files carry them beside the Llama ones."""
    vc = cfg.vision
    if vc is None:
        return []
    e, p, n = cfg.hidden_size, vc.patch_dim, vc.encoder_layers
    m = vc.encoder_mlp or cfg.intermediate_size
    maps = [TensorMap(("vision", "patch_proj", "kernel"), "vision.patch_proj.weight", (e, p), ((e,), (p,)), (1, 0),
                      False, n),
            TensorMap(("vision", "patch_pos"), "vision.patch_pos.weight", (vc.max_patches, e),
                      ((vc.max_patches,), (e,)), (0, 1), False, n)]
    if n:
        block = lambda path, name, hf_shape, groups, perm: TensorMap(
            ("vision", "blocks") + path, f"vision.blocks.{{i}}.{name}", hf_shape, groups, perm, True, n)
        for proj in ("gate_proj", "up_proj"):
            maps.append(block(("mlp", proj, "kernel"), f"mlp.{proj}.weight", (m, e), ((m,), (e,)), (1, 0)))
        maps.append(block(("mlp", "down_proj", "kernel"), "mlp.down_proj.weight", (e, m), ((e,), (m,)), (1, 0)))
        maps.append(block(("norm", "scale"), "norm.weight", (e,), ((e,),), (0,)))
    return maps


def expected_hf_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    return {name: tm.hf_shape for tm in tensor_maps(cfg) for name in tm.hf_names()}


def get_path(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def set_path(tree: dict, path, value) -> None:
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value
