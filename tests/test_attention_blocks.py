"""The trainer's faster CPU paths change nothing but speed: attention_impl="causal_blocks" equals "dot" on packed
training rows, the custom attention VJP equals autodiff of the softmax, and an unrolled layer stack equals the scan."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentlm import model


def _packed_batch(vocab: int):
    rng = np.random.RandomState(5)
    tokens = jnp.asarray(rng.randint(0, vocab, (2, 32)), jnp.int32)
    segs = jnp.asarray([[1] * 20 + [2] * 10 + [0] * 2, [1] * 7 + [2] * 25], jnp.int32)
    pos = jnp.asarray([list(range(20)) + list(range(10)) + [0, 0], list(range(7)) + list(range(25))], jnp.int32)
    return tokens, pos, segs


def test_causal_blocks_equal_dot_logits_and_grads():
    cfg = model.get_config("tiny")
    blocks = cfg.replace(attention_impl="causal_blocks", attention_chunk=8)
    params = model.init_params(cfg, jax.random.key(0))
    tokens, pos, segs = _packed_batch(cfg.vocab_size)

    def loss(c, p):
        logits, _ = model.apply(c, p, tokens, pos, segs)
        return (jax.nn.logsumexp(logits, -1) * (segs > 0)).sum(), logits

    (l_dot, lg_dot), g_dot = jax.value_and_grad(lambda p: loss(cfg, p), has_aux=True)(params)
    (l_blk, lg_blk), g_blk = jax.value_and_grad(lambda p: loss(blocks, p), has_aux=True)(params)
    valid = np.asarray(segs > 0)
    assert float(jnp.abs(lg_dot - lg_blk).max(-1)[valid].max()) <= 1e-5
    assert abs(float(l_dot - l_blk)) <= 1e-3
    for a, b in zip(jax.tree.leaves(g_dot), jax.tree.leaves(g_blk)):
        assert float(jnp.abs(a - b).max()) <= 1e-4 * max(1.0, float(jnp.abs(a).max()))


def test_causal_blocks_with_cache_uses_the_full_mask():
    """With a KV cache (slots are not positions), the block skip is off: decoding matches "dot"."""
    cfg = model.get_config("tiny")
    blocks = cfg.replace(attention_impl="causal_blocks", attention_chunk=4)
    params = model.init_params(cfg, jax.random.key(1))
    tokens, pos, segs = _packed_batch(cfg.vocab_size)
    outs = []
    for c in (cfg, blocks):
        cache = model.init_cache(c, batch=2, max_len=32)
        logits, _ = model.apply(c, params, tokens[:, :16], pos[:, :16], segs[:, :16], cache=cache)
        outs.append(logits)
    assert float(jnp.abs(outs[0] - outs[1]).max()) <= 1e-5


def test_unknown_attention_impl_is_rejected():
    with pytest.raises(ValueError, match="attention_impl"):
        model.get_config("tiny", attention_impl="flash")


def _softmax_attention(q, k, v, mask):
    """The textbook formula, differentiated by jax: the reference for dot_attention's custom VJP."""
    b, t, hq, d = q.shape
    hkv = k.shape[2]
    s = jnp.einsum("btkgd,bskd->bkgts", q.reshape(b, t, hkv, hq // hkv, d), k) * d ** -0.5
    p = jax.nn.softmax(jnp.where(mask[:, None, None], s, -1e30), axis=-1)
    return jnp.einsum("bkgts,bskd->btkgd", p, v).reshape(b, t, hq, d)


def test_dot_attention_custom_vjp_matches_autodiff_of_softmax():
    """GQA, packed segments and a padding tail (rows with nothing to attend to, whose gradient must not leak
    into the keys through the masked scores)."""
    from agentlm.model import llama

    rng = np.random.default_rng(0)
    b, t, hq, hkv, d = 2, 16, 4, 2, 8
    q, k, v, w = (jnp.asarray(rng.standard_normal(s), jnp.float32)
                  for s in ((b, t, hq, d), (b, t, hkv, d), (b, t, hkv, d), (b, t, hq, d)))
    segs = jnp.asarray([[1] * 6 + [2] * 7 + [0] * 3, [1] * 16])
    pos = jnp.asarray([list(range(6)) + list(range(7)) + [0] * 3, list(range(16))])
    mask = llama.attention_mask(segs, pos, segs, pos)
    outs, grads = [], []
    for fn in (_softmax_attention, llama.dot_attention):
        out, vjp = jax.vjp(lambda q, k, v, fn=fn: fn(q, k, v, mask), q, k, v)
        outs.append(out)
        grads.append(vjp(w))
    assert float(jnp.abs(outs[0] - outs[1]).max()) <= 1e-5
    for name, a, b_ in zip("qkv", *grads):
        assert float(jnp.abs(a - b_).max()) <= 1e-5, name
    assert float(jnp.abs(grads[1][0][0, 13:]).max()) == 0.0  # padding queries get no gradient


def test_unrolled_layer_stack_equals_the_scanned_one():
    """scan_unroll changes how the layer loop is compiled, never the parameters or the maths."""
    cfg = model.get_config("tiny", num_layers=3)
    unrolled = cfg.replace(scan_unroll=3)
    params = model.init_params(cfg, jax.random.key(2))
    tokens, pos, segs = _packed_batch(cfg.vocab_size)

    def loss(c, p):
        logits, _ = model.apply(c, p, tokens, pos, segs)
        return (jax.nn.logsumexp(logits, -1) * (segs > 0)).sum()

    (l0, g0), (l1, g1) = (jax.value_and_grad(lambda p, c=c: loss(c, p))(params) for c in (cfg, unrolled))
    assert abs(float(l0 - l1)) <= 1e-4
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        assert float(jnp.abs(a - b).max()) <= 1e-5 * max(1.0, float(jnp.abs(a).max()))
    with pytest.raises(ValueError, match="scan_unroll"):
        cfg.replace(scan_unroll=0)
