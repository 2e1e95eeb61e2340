"""Llama-2 in Flax: config presets, the module, and helpers to create or shape parameters on a mesh."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from agentlm import sharding
from agentlm.model.config import PRESETS, LlamaConfig, get_config
from agentlm.model.llama import CACHE_LOGICAL, Llama, init_cache

__all__ = ["LlamaConfig", "Llama", "PRESETS", "get_config", "init_cache", "abstract_params", "param_shardings",
           "init_params", "apply", "cache_shardings"]


def _dummy_tokens():
    return jnp.zeros((1, 1), jnp.int32)


def _init_variables(cfg: LlamaConfig, key):
    """Llama.init on a one-token input (with a one-patch image for vision models, so their params exist)."""
    if cfg.vision is None:
        return Llama(cfg).init(key, _dummy_tokens())
    return Llama(cfg).init(key, _dummy_tokens(), image_patches=jnp.zeros((1, 1, cfg.vision.patch_dim), jnp.uint8),
                           image_mask=jnp.ones((1, 1), jnp.int32))


def abstract_params(cfg: LlamaConfig):
    """Boxed (nn.Partitioned) ShapeDtypeStructs of the parameter tree; no memory is allocated."""
    return jax.eval_shape(lambda: _init_variables(cfg, jax.random.key(0)))["params"]


def param_shardings(cfg: LlamaConfig, mesh, rules=sharding.DEFAULT_RULES):
    return sharding.param_shardings(abstract_params(cfg), mesh, rules)


def param_logical_axes(cfg: LlamaConfig):
    return nn.get_partition_spec(abstract_params(cfg))


@functools.lru_cache(maxsize=16)
def _compiled_init(cfg: LlamaConfig, mesh, rules):
    # Cached per (config, mesh, rules): compiling the initialisers (threefry per parameter) costs seconds on
    # CPU, and tests/notebooks call init_params for the same config many times.
    init = lambda key: nn.unbox(_init_variables(cfg, key)["params"])
    if mesh is None:
        return jax.jit(init)
    return jax.jit(init, out_shardings=param_shardings(cfg, mesh, rules))


def init_params(cfg: LlamaConfig, rng, mesh=None, rules=sharding.DEFAULT_RULES):
    """Random parameters, created directly in their sharding (never materialised whole on one device)."""
    return _compiled_init(cfg, mesh, sharding.rules_from_config(rules))(rng)


def apply(cfg: LlamaConfig, params, tokens, positions=None, segment_ids=None, cache=None, image_patches=None,
          image_mask=None):
    """Forward pass; returns (logits, cache). Call inside `sharding.activate(mesh)` for sharded runs.
    Vision models take `image_patches`/`image_mask` aligned with the tokens (agentlm.model.vision)."""
    return Llama(cfg).apply({"params": params}, tokens, positions, segment_ids, cache, image_patches=image_patches,
                            image_mask=image_mask)


def cache_shardings(mesh, rules=sharding.DEFAULT_RULES):
    return {k: sharding.logical_sharding(mesh, v, rules) for k, v in CACHE_LOGICAL.items()}
