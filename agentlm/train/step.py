"""The pure train step and the sharded state it updates.

`train_step(state, batch, rng) -> (state, metrics)` is the whole of one optimizer step on one screen.

Loss weighting: the loss is sum(token_loss * loss_weights) / sum(loss_weights), both sums over the WHOLE global
batch (every process, every accumulation microbatch). Each microbatch's weighted sum is divided by the global
weight total, and the microbatch gradients are added, so 4 x (B/4) accumulated equals one step on B exactly (up
to float summation order), and every trained token counts the same however conversations were packed into rows.

The rng argument is `fold_in(key(seed), step)`, recomputed from the checkpointed step on resume. The Llama model
has no dropout, so the step does not consume it today; it is part of the signature so that a stochastic
regulariser can be added without changing the loop, the resume logic or the checkpoint layout.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import NamedSharding

from agentlm import model, sharding
from agentlm.model import LlamaConfig, llama

BATCH_KEYS = ("inputs", "targets", "positions", "segment_ids", "loss_weights")
# vision models (cfg.vision set) also take these (agentlm.data.packing): image_mask [B, T] and the uint8
# image_patches [B, T, patch_dim], aligned with `inputs` and sharded like it along batch and length
IMAGE_KEYS = ("image_mask", "image_patches")


def batch_keys(cfg: LlamaConfig) -> tuple[str, ...]:
    return BATCH_KEYS + (IMAGE_KEYS if cfg.vision is not None else ())


def _images(batch) -> dict:
    """The model's image arguments from a batch (empty for text batches)."""
    return {k: batch[k] for k in IMAGE_KEYS if k in batch}


def token_losses(cfg: LlamaConfig, params, batch, loss_chunk: int = 0) -> jax.Array:
    """Per-token cross-entropy [B, T] in float32 (logits are float32 whatever the compute dtype).

    loss_chunk > 0 applies the vocabulary head to `loss_chunk` positions of every row at a time (a lax.map
    over position blocks, each block under jax.checkpoint), so neither the [B, T, V] logits nor their softmax
    are ever stored: a backward pass through it recomputes each block's logits (training uses
    `weighted_cross_entropy` instead, which needs no recomputation). At V = 32000 and E = 256 the head is
    ~half the step and its [B, T, V] buffers dominate the step's memory traffic (benchmarks/RESULTS.md).
    """
    if loss_chunk <= 0:
        logits, _ = model.apply(cfg, params, batch["inputs"], batch["positions"], batch["segment_ids"],
                                **_images(batch))
        log_z = jax.nn.logsumexp(logits, axis=-1)
        target_logit = jnp.take_along_axis(logits, batch["targets"][..., None], axis=-1)[..., 0]
        return log_z - target_logit
    hidden, _ = model.Llama(cfg).apply({"params": params}, batch["inputs"], batch["positions"],
                                       batch["segment_ids"], return_hidden=True, **_images(batch))
    return chunked_cross_entropy(cfg, hidden, llama.head_kernel(cfg, params), batch["targets"], loss_chunk)


def chunked_cross_entropy(cfg: LlamaConfig, hidden, kernel, targets, chunk: int) -> jax.Array:
    """Cross-entropy [B, T] of logits = hidden [B, T, E] @ kernel [E, V], `chunk` positions at a time.
    T need not divide by `chunk`: the last block is zero-padded and its padded losses are dropped."""
    t = hidden.shape[1]
    chunk = min(chunk, t)
    kernel = kernel.astype(cfg.compute_dtype)

    @jax.checkpoint
    def block_losses(h, tgt):
        return _block_loss(h.astype(cfg.compute_dtype), kernel, tgt)[2]

    losses = jax.lax.map(lambda xs: block_losses(*xs), (_blocks(hidden, chunk), _blocks(targets, chunk)))
    return _unblock(losses, t)


def _block_loss(h, kernel, targets):
    """(float32 logits [B, c, V], log Z [B, c], cross-entropy [B, c]) of one block of positions."""
    logits = jnp.einsum("bce,ev->bcv", h, kernel).astype(jnp.float32)
    logits = nn.with_logical_constraint(logits, ("batch", "length", "act_vocab"))
    log_z = jax.nn.logsumexp(logits, axis=-1)
    return logits, log_z, log_z - jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]


def _blocks(x, chunk: int):
    """[B, T, ...] -> [n, B, chunk, ...], zero-padding T up to a multiple of chunk. Each block keeps every row,
    so a batch-sharded array stays on its devices."""
    b, t = x.shape[:2]
    n = -(-t // chunk)
    x = jnp.pad(x, ((0, 0), (0, n * chunk - t)) + ((0, 0),) * (x.ndim - 2))
    return jnp.moveaxis(x.reshape(b, n, chunk, *x.shape[2:]), 1, 0)


def _unblock(x, t: int):
    """[n, B, chunk, ...] -> [B, t, ...], dropping the padding `_blocks` added."""
    return jnp.moveaxis(x, 0, 1).reshape(x.shape[1], -1, *x.shape[3:])[:, :t]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def weighted_cross_entropy(hidden, kernel, targets, weights, chunk: int):
    """sum(cross_entropy(hidden @ kernel, targets) * weights) over [B, T], `chunk` positions per row at a time.

    The gradient is computed in the forward pass, block by block, while each block's logits are at hand:
    d/dlogits = (softmax - onehot) * weight, so the backward pass only scales the stored dhidden [B, T, E] and
    dkernel [E, V] by the incoming cotangent. Neither the [B, T, V] logits nor a recomputation of them is
    needed: the head costs the same three matmuls as the unchunked loss, without its 0.5-GB buffers.
    """
    return _weighted_ce_fwd(hidden, kernel, targets, weights, chunk)[0]


def _weighted_ce_fwd(hidden, kernel, targets, weights, chunk):
    t = hidden.shape[1]
    chunk = min(chunk, t)
    weights = weights.astype(jnp.float32)

    def block(dkernel, xs):
        h, tgt, w = xs
        logits, log_z, loss = _block_loss(h, kernel, tgt)
        dlogits = jnp.exp(logits - log_z[..., None]) * w[..., None]
        dlogits = dlogits - jax.nn.one_hot(tgt, logits.shape[-1], dtype=jnp.float32) * w[..., None]
        dlogits = dlogits.astype(kernel.dtype)
        dh = jnp.einsum("bcv,ev->bce", dlogits, kernel)
        dkernel = dkernel + jnp.einsum("bce,bcv->ev", h, dlogits, preferred_element_type=jnp.float32)
        return dkernel, (loss, dh)

    dkernel, (losses, dh) = jax.lax.scan(block, jnp.zeros(kernel.shape, jnp.float32),
                                         (_blocks(hidden, chunk), _blocks(targets, chunk), _blocks(weights, chunk)))
    losses, dh = _unblock(losses, t), _unblock(dh, t)
    total = (losses * weights).sum()
    return total, (dh.astype(hidden.dtype), dkernel.astype(kernel.dtype), losses, targets)


def _weighted_ce_bwd(chunk, res, g):
    dh, dkernel, losses, targets = res
    # integer targets take a float0 cotangent; the weights' cotangent is the per-token loss
    zero_targets = np.zeros(targets.shape, jax.dtypes.float0)
    return (g * dh).astype(dh.dtype), (g * dkernel).astype(dkernel.dtype), zero_targets, g * losses


weighted_cross_entropy.defvjp(_weighted_ce_fwd, _weighted_ce_bwd)


def split_microbatches(batch, grad_accum: int):
    """[B, T] -> [A, B/A, T] taking rows i, i+A, ... into microbatch i, so each device keeps its own rows
    (a contiguous row block of a sharded batch stays on its device) and no resharding is needed."""

    def split(x):
        b = x.shape[0]
        x = x.reshape(b // grad_accum, grad_accum, *x.shape[1:]).swapaxes(0, 1)
        return nn.with_logical_constraint(x, (None, "batch", "length") + (None,) * (x.ndim - 3))

    return {k: split(v) for k, v in batch.items()}


def loss_and_grads(cfg: LlamaConfig, params, batch, grad_accum: int = 1, loss_chunk: int = 0):
    """(loss, grads, total weight) of the global batch, accumulated over `grad_accum` microbatches."""
    total_weight = batch["loss_weights"].astype(jnp.float32).sum()
    denom = jnp.maximum(total_weight, 1.0)  # a batch with nothing to train gives loss 0, not NaN

    def loss_fn(p, mb):
        if loss_chunk > 0:  # the gradient-in-forward chunked head (weighted_cross_entropy)
            hidden, _ = model.Llama(cfg).apply({"params": p}, mb["inputs"], mb["positions"], mb["segment_ids"],
                                               return_hidden=True, **_images(mb))
            kernel = llama.head_kernel(cfg, p).astype(cfg.compute_dtype)
            return weighted_cross_entropy(hidden.astype(cfg.compute_dtype), kernel, mb["targets"],
                                          mb["loss_weights"].astype(jnp.float32), loss_chunk) / denom
        return (token_losses(cfg, p, mb) * mb["loss_weights"]).sum() / denom

    grad_fn = jax.value_and_grad(loss_fn)
    if grad_accum == 1:
        loss, grads = grad_fn(params, batch)
        return loss, grads, total_weight

    def accumulate(carry, mb):
        loss_sum, grad_sum = carry
        loss_i, grads_i = grad_fn(params, mb)
        return (loss_sum + loss_i, jax.tree.map(jnp.add, grad_sum, grads_i)), None

    zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
    (loss, grads), _ = jax.lax.scan(accumulate, zero, split_microbatches(batch, grad_accum))
    return loss, grads, total_weight


def train_step(state, batch, rng, *, cfg: LlamaConfig, optimizer: optax.GradientTransformation,
               schedule: optax.Schedule, grad_accum: int = 1, loss_chunk: int = 0):
    del rng  # see the module docstring
    loss, grads, total_weight = loss_and_grads(cfg, state["params"], batch, grad_accum, loss_chunk)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
                 "step": state["step"] + 1}
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), "lr": schedule(state["step"]),
               "trained_tokens": total_weight}
    return new_state, metrics


def eval_step(params, batch, *, cfg: LlamaConfig, loss_chunk: int = 0):
    """(sum of weighted token losses, sum of weights): callers divide totals, so eval weights tokens like training."""
    losses = token_losses(cfg, params, batch, loss_chunk)
    return {"loss_sum": (losses * batch["loss_weights"]).sum(), "weight_sum": batch["loss_weights"].sum()}


# ---- state and shardings ---------------------------------------------------------------------------------------

def param_shapes(cfg: LlamaConfig):
    """Plain ShapeDtypeStructs of the parameters (unboxed by hand: nn.unbox would add sharding constraints
    when called inside `sharding.activate`)."""
    is_box = lambda x: isinstance(x, nn.Partitioned)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.value.shape, x.value.dtype) if is_box(x)
                        else jax.ShapeDtypeStruct(x.shape, x.dtype), model.abstract_params(cfg), is_leaf=is_box)


def state_shardings(cfg: LlamaConfig, optimizer, mesh, rules):
    """NamedShardings for {params, opt_state, step}: optimizer moments follow their parameter, counters replicate."""
    param_sh = model.param_shardings(cfg, mesh, rules)
    abstract = param_shapes(cfg)
    opt_shapes = jax.eval_shape(optimizer.init, abstract)
    repl = sharding.replicated(mesh)
    opt_sh = optax.tree_map_params(optimizer, lambda _, s: s, opt_shapes, param_sh,
                                   transform_non_params=lambda _: repl)
    return {"params": param_sh, "opt_state": opt_sh, "step": repl}


def abstract_state(cfg: LlamaConfig, optimizer, shardings):
    """ShapeDtypeStructs carrying the target shardings: what a checkpoint restore fills in."""
    params = param_shapes(cfg)
    shapes = {"params": params, "opt_state": jax.eval_shape(optimizer.init, params),
              "step": jax.ShapeDtypeStruct((), jnp.int32)}
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def init_state(cfg: LlamaConfig, optimizer, mesh, rules, rng, shardings, params=None):
    """Fresh state (random params unless `params` are given, e.g. from a converted checkpoint)."""
    if params is None:
        params = model.init_params(cfg, rng, mesh, rules)
    params = jax.tree.map(lambda x, sh: jax.device_put(x, sh), params, shardings["params"])
    opt_state = jax.jit(optimizer.init, out_shardings=shardings["opt_state"])(params)
    step = jax.device_put(jnp.zeros((), jnp.int32), shardings["step"])
    return {"params": params, "opt_state": opt_state, "step": step}


def batch_shardings(mesh, rules, cfg: LlamaConfig | None = None) -> dict[str, NamedSharding]:
    """Every batch array split along batch (and length, per the rules) like `inputs`; a vision model's
    [B, T, patch_dim] patches keep their last axis whole."""
    keys = batch_keys(cfg) if cfg is not None else BATCH_KEYS
    return {k: sharding.batch_sharding(mesh, rules, 3 if k == "image_patches" else 2) for k in keys}


def jit_train_step(cfg, optimizer, schedule, grad_accum, mesh, rules, shardings, loss_chunk: int = 0):
    """The jitted step: explicit in/out shardings, state donated (updated in place in device memory)."""
    fn = functools.partial(train_step, cfg=cfg, optimizer=optimizer, schedule=schedule, grad_accum=grad_accum,
                           loss_chunk=loss_chunk)
    repl = sharding.replicated(mesh)
    return jax.jit(fn, in_shardings=(shardings, batch_shardings(mesh, rules, cfg), repl),
                   out_shardings=(shardings, repl), donate_argnums=(0,))


def jit_eval_step(cfg, mesh, rules, shardings, loss_chunk: int = 0):
    repl = sharding.replicated(mesh)
    return jax.jit(functools.partial(eval_step, cfg=cfg, loss_chunk=loss_chunk),
                   in_shardings=(shardings["params"], batch_shardings(mesh, rules, cfg)), out_shardings=repl)
