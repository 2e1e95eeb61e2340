"""Where agentlm's train step spends its time: each part jitted alone, timed, and set against its FLOPs.

    python benchmarks/profile_train.py --preset bench_20m [--attention_impl causal_blocks] [--loss_chunk 64]

Parts (forward + backward each, as in the step): `head` = final norm + lm_head + cross-entropy over the vocab
(the chunked gradient-in-forward head when --loss_chunk > 0), `attention` = the attention kernel alone (q/k/v
given, the configured attention_impl), `mlp` = one layer's SwiGLU MLP, `optimizer` =
clip + AdamW update + apply, `step` = the whole jitted step. Each row shows GFLOP/s against the matmul peak
measured in the same run, plus XLA's cost analysis (bytes accessed) for the memory-bound parts. The parts are
timed interleaved, so a load spike hits all of them.
"""
from __future__ import annotations

import argparse

import common  # noqa: F401
from common import interleaved, matmul_peak, median, print_header, table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="bench_20m")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--attention_impl", default=None)
    p.add_argument("--attention_chunk", type=int, default=None)
    p.add_argument("--loss_chunk", type=int, default=0)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from agentlm import model
    from agentlm.model import llama
    from agentlm.train import config as train_config
    from agentlm.train.metrics import flops_per_step
    from agentlm.train.optim import make_optimizer
    from agentlm.train.step import loss_and_grads, weighted_cross_entropy

    overrides = {k: getattr(args, k) for k in ("attention_impl", "attention_chunk") if getattr(args, k)}
    cfg = model.get_config(args.preset, **overrides)
    b, t, e, v, L = args.batch, args.seq, cfg.hidden_size, cfg.vocab_size, cfg.num_layers
    hq, d = cfg.num_heads, cfg.head_dim
    print_header(f"train-step profile: {args.preset}, batch {b} x {t}, attention {cfg.attention_impl} "
                 f"(chunk {cfg.attention_chunk}), loss_chunk {args.loss_chunk}")
    peak = max(matmul_peak().values())
    params = model.init_params(cfg, jax.random.key(0))
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(3, v, (b, t), dtype=np.int32))
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    seg = jnp.ones((b, t), jnp.int32)
    batch = {"inputs": tokens, "targets": tokens, "positions": pos, "segment_ids": seg,
             "loss_weights": jnp.ones((b, t), jnp.float32)}
    x = jax.random.normal(jax.random.key(1), (b, t, e), jnp.float32)

    def head_loss(w, norm, x):
        h = llama.RMSNorm(cfg).apply({"params": {"scale": norm}}, x)
        if args.loss_chunk:
            return weighted_cross_entropy(h, w, tokens, batch["loss_weights"], args.loss_chunk)
        logits = jnp.einsum("bte,ev->btv", h, w).astype(jnp.float32)
        lz = jax.nn.logsumexp(logits, -1)
        return (lz - jnp.take_along_axis(logits, tokens[..., None], -1)[..., 0]).sum()

    def attn_loss(q, k, vv):
        if cfg.attention_impl == "chunked":
            out = llama.chunked_attention(q, k, vv, seg, pos, seg, pos, cfg.attention_chunk)
        elif cfg.attention_impl == "causal_blocks":
            out = llama.causal_block_attention(q, k, vv, seg, pos, cfg.attention_chunk)
        else:
            out = llama.dot_attention(q, k, vv, llama.attention_mask(seg, pos, seg, pos))
        return out.sum()

    mlp_params = jax.tree.map(lambda a: a[0], params["layers"]["mlp"])

    def mlp_loss(p, x):
        return llama.MLP(cfg).apply({"params": p}, x).sum()

    def full_grads(p):
        return loss_and_grads(cfg, p, batch, loss_chunk=args.loss_chunk)[1]

    opt_cfg = train_config.default_config().optimizer
    optimizer, _ = make_optimizer(opt_cfg, 1000)
    opt_state = optimizer.init(params)
    qkv = [jax.random.normal(jax.random.key(i), (b, t, hq, d)) for i in range(3)]

    jits = {
        "head": (jax.jit(jax.grad(head_loss, argnums=(0, 2))),
                 (params["lm_head"]["kernel"], params["norm"]["scale"], x), 3 * 2 * b * t * e * v),
        "attention": (jax.jit(jax.grad(attn_loss, argnums=(0, 1, 2))), qkv, 3 * 4 * b * t * t * hq * d / 2),
        "mlp (one layer)": (jax.jit(jax.grad(mlp_loss, argnums=(0, 1))), (mlp_params, x),
                            3 * 2 * b * t * 3 * e * cfg.intermediate_size),
        "optimizer": (jax.jit(lambda g, s, p: optimizer.update(g, s, p)), (params, opt_state, params), 0.0),
        "step fwd+bwd": (jax.jit(full_grads), (params,), flops_per_step(cfg, b, t)),
    }
    fns, rows = {}, []
    for name, (fn, fargs, _) in jits.items():
        fns[name] = (lambda fn=fn, fargs=fargs: jax.block_until_ready(fn(*fargs)))
    times = interleaved(fns, args.repeats, warmup=1, desc="parts")
    for name, (fn, fargs, flops) in jits.items():
        s = median(times[name])
        cost = fn.lower(*fargs).compile().cost_analysis() or {}
        cost = cost[0] if isinstance(cost, list) else cost
        gb = cost.get("bytes accessed", float("nan")) / 1e9
        rows.append([name, 1000 * s, flops / 1e9, flops / s / 1e9 if flops else "", 100 * flops / s / peak if flops
                     else "", gb, gb / s])
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(table(["part", "ms", "GFLOP", "GFLOP/s", "% of peak", "XLA GB accessed", "GB/s"], rows))
    rest = median(times["step fwd+bwd"]) - median(times["head"]) - L * (median(times["attention"])
                                                                       + median(times["mlp (one layer)"]))
    print(f"rest of the step (norms, rotary, projections, embedding; step - head - {L} x (attention + mlp)): "
          f"{1000 * rest:.0f} ms")


if __name__ == "__main__":
    main()
