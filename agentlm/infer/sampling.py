"""Next-token selection for a batch whose rows each carry their own sampling settings.

Every row has its own temperature / top-k / top-p / seed so that requests with different settings can share
one batched decode (the server batches whatever arrives together). A row's random stream depends only on its
own seed and the decode step, never on which other rows share the batch, so a seeded request gives the same
text whether it ran alone or batched.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def filter_logits(logits: Array, temperature: Array, top_k: Array, top_p: Array) -> Array:
    """Temperature-scaled logits with everything outside each row's top-k / nucleus set to -inf.

    logits [B, V] float32; temperature, top_p [B] float32; top_k [B] int32 (0 = no top-k limit).
    The nucleus is the smallest set of most likely tokens whose probability reaches top_p (the most
    likely token is always kept), computed after the top-k cut, as in Hugging Face and vLLM.
    """
    vocab = logits.shape[-1]
    x = logits / jnp.maximum(temperature, 1e-6)[:, None]
    sorted_desc = -jnp.sort(-x, axis=-1)
    k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)
    kth = jnp.take_along_axis(sorted_desc, (k - 1)[:, None], axis=-1)
    x = jnp.where(x < kth, -jnp.inf, x)
    ranks = jnp.arange(vocab)[None, :]
    sorted_desc = jnp.where(ranks < k[:, None], sorted_desc, -jnp.inf)
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # probability mass strictly ahead of each rank
    keep = (before < top_p[:, None]) | (ranks == 0)
    n_keep = jnp.sum(keep, axis=-1)
    threshold = jnp.take_along_axis(sorted_desc, (n_keep - 1)[:, None], axis=-1)
    return jnp.where(x < threshold, -jnp.inf, x)


def argmax(x: Array) -> Array:
    """jnp.argmax over the last axis (first index of the maximum) as two plain reductions: XLA's CPU argmax is a
    variadic (value, index) reduce that took 0.78 ms on [8, 32000] against 0.31 ms for this, per decode step."""
    m = jnp.max(x, axis=-1, keepdims=True)
    iota = jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
    return jnp.min(jnp.where(x == m, iota, x.shape[-1]), axis=-1)


def row_keys(seeds: Array, step: Array) -> Array:
    """One PRNG key per row for this decode step, derived from the row's seed alone."""
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), step))(seeds)


def select_tokens(logits: Array, temperature: Array, top_k: Array, top_p: Array, seeds: Array,
                  step: Array) -> Array:
    """[B] int32 next tokens: argmax where temperature == 0, a sample from the filtered distribution elsewhere.

    The sort needed by top-k / top-p is skipped entirely when the whole batch is greedy.
    """
    greedy = argmax(logits)

    def sample(_):
        filtered = filter_logits(logits, temperature, top_k, top_p)
        drawn = jax.vmap(jax.random.categorical)(row_keys(seeds, step), filtered).astype(jnp.int32)
        return jnp.where(temperature > 0, drawn, greedy)

    return jax.lax.cond(jnp.any(temperature > 0), sample, lambda _: greedy, None)
