"""Training throughput: agentlm's jitted train step vs transformers' LlamaForCausalLM + torch AdamW, same run.

    python benchmarks/train.py                                  # bench_20m and bench_58m, batch 8 x 512
    python benchmarks/train.py --presets tiny --batch 2 --seq 64 --steps 1 --warmup 1   # smoke size

Both sides train the same architecture (random init), batch x seq tokens per step, every token trained,
AdamW (lr 3e-4, betas 0.9/0.95, weight decay 0.1, global-norm clip 1.0). agentlm runs the trainer's own step
(`agentlm.train.step.jit_train_step` on a one-device mesh, state donated) fed from host numpy batches as the
loop feeds it; torch runs forward, loss.backward(), clip, optimizer.step(), zero_grad. Steps alternate
(agentlm, torch, agentlm, ...) and medians are compared. FLOPs per step follow ../shared/DESIGN.md section 7
(agentlm.train.metrics.flops_per_step); MFU divides by the best 2048^3 f32 matmul (jax or torch, whichever
is faster) measured in this run.

Precision (`--dtypes`): float32 runs both sides in fp32. bfloat16 is mixed precision as the paper trains: fp32
master weights and optimizer state on both sides, matmuls in bf16 -- agentlm with `model.dtype=bfloat16`
(param_dtype float32, loss and softmax in fp32), torch under `torch.autocast("cpu", dtype=torch.bfloat16)`. MFU
of a bf16 row is against the bf16 matmul peak of the same run.

agentlm runs with its CPU training settings by default (the choices measured in benchmarks/RESULTS.md):
causal_blocks attention in 128-row blocks, the chunked cross-entropy head (64 positions per row per block) and
the layer stack fully unrolled. `--attention_impl dot --loss_chunk 0 --scan_unroll 1` gives the plain step.
"""
from __future__ import annotations

import argparse

import common  # noqa: F401  (sys.path / env set-up before jax is imported)
from common import apply_cpu_tuning, configure_threads, hf_llama, interleaved, matmul_peak, median, print_header, table


HEADER = ["preset", "params", "dtype", "impl", "tokens/s", "GFLOP/s", "MFU %", "step s (min-max)"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="bench_20m,bench_58m", help="comma-separated agentlm.model presets")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=5, help="timed steps per side (interleaved)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per side (compilation, allocator)")
    p.add_argument("--attention_impl", default="causal_blocks", help="dot|chunked|causal_blocks")
    p.add_argument("--attention_chunk", type=int, default=128, help="query rows per attention block")
    p.add_argument("--remat_policy", default=None, help="override the preset's remat_policy")
    p.add_argument("--scan_unroll", type=int, default=0, help="layers per layer-scan iteration (0 = all: no loop)")
    p.add_argument("--matmul_n", type=int, default=2048, help="size of the peak-measuring matmul")
    p.add_argument("--no_torch", action="store_true", help="agentlm only (profiling)")
    p.add_argument("--also_attention", default="", help="comma-separated extra agentlm attention_impl variants "
                   "timed in the same interleaved run (e.g. causal_blocks), to measure a change's effect")
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated compute dtypes, each timed "
                   "against transformers at the same precision (bfloat16 = mixed precision, fp32 master weights)")
    p.add_argument("--json", default="", help="also write the rows to this JSON file (benchmarks/xla_flags.py)")
    p.add_argument("--loss_chunk", type=int, default=64, help="agentlm's chunked cross-entropy block (0 = full "
                   "logits)")
    p.add_argument("--also_loss_chunk", type=int, default=0, help="also time every agentlm variant with this "
                   "loss_chunk in the same interleaved run")
    return p.parse_args(argv)


def make_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, vocab, (batch, seq + 1), dtype=np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
            "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy(),
            "segment_ids": np.ones((batch, seq), np.int32), "loss_weights": np.ones((batch, seq), np.float32)}


def agentlm_stepper(cfg, batch_np, loss_chunk=0):
    """A no-argument callable running one real trainer step (host batch -> device -> step -> wait)."""
    import jax

    from agentlm import sharding
    from agentlm.train import config as train_config
    from agentlm.train import step as step_lib
    from agentlm.train.data import to_global
    from agentlm.train.optim import make_optimizer

    opt_cfg = train_config.default_config().optimizer
    opt_cfg.lr, opt_cfg.warmup_steps, opt_cfg.schedule = 3e-4, 0, "constant"
    mesh, rules = sharding.single_device_mesh(), sharding.rules_from_config(None)
    optimizer, schedule = make_optimizer(opt_cfg, 1000)
    shardings = step_lib.state_shardings(cfg, optimizer, mesh, rules)
    batch_sh = step_lib.batch_shardings(mesh, rules)
    box = {"state": step_lib.init_state(cfg, optimizer, mesh, rules, jax.random.key(0), shardings)}
    train_fn = step_lib.jit_train_step(cfg, optimizer, schedule, 1, mesh, rules, shardings, loss_chunk)
    key = jax.random.key(0)
    global_batch = batch_np["inputs"].shape[0]

    def step():
        batch = to_global(batch_np, batch_sh, global_batch)
        with sharding.activate(mesh, rules):
            box["state"], metrics = train_fn(box["state"], batch, key)
        box["loss"] = float(metrics["loss"])  # the loop reads metrics back too; this waits for the step

    return step, box


def torch_stepper(cfg, batch_np, dtype: str = "float32"):
    import contextlib

    import torch

    model = hf_llama(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    inputs = torch.from_numpy(batch_np["inputs"]).long()
    targets = torch.from_numpy(batch_np["targets"]).long()
    box = {}

    def autocast():
        if dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=getattr(torch, dtype))

    def step():
        with autocast():
            logits = model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        box["loss"] = loss.item()

    return step, box


def main(argv=None):
    args = parse_args(argv)
    threads = configure_threads()
    apply_cpu_tuning()
    dtypes = args.dtypes.split(",")
    print_header(f"train benchmark: batch {args.batch} x {args.seq}, {args.steps} timed steps per side "
                 f"(interleaved), torch threads {threads}, dtypes {dtypes}")
    peaks = {}
    for dtype in dtypes:
        peaks[dtype] = matmul_peak(args.matmul_n, dtype=dtype)
        print(f"matmul peak ({args.matmul_n}^3 {dtype}): jax {peaks[dtype]['jax'] / 1e9:.1f} GFLOP/s, "
              f"torch {peaks[dtype]['torch'] / 1e9:.1f} GFLOP/s")
    tokens = args.batch * args.seq
    rows = []
    for preset in args.presets.split(","):
        for dtype in dtypes:
            rows += _time_preset(args, preset, dtype, tokens, max(peaks[dtype].values()))
    print("\nall presets:")
    print(table(HEADER, rows))
    if args.json:
        import json

        records = [dict(zip(HEADER, row)) for row in rows]
        json.dump({"peaks": peaks, "rows": records}, open(args.json, "w"), indent=1)
    return rows


def _time_preset(args, preset: str, dtype: str, tokens: int, peak: float) -> list[list]:
    from agentlm.model import get_config
    from agentlm.train.metrics import flops_per_step

    overrides = {k: getattr(args, k) for k in ("attention_impl", "attention_chunk", "remat_policy") if getattr(args, k)}
    cfg = get_config(preset, dtype=dtype, **overrides)
    cfg = cfg.replace(scan_unroll=args.scan_unroll or cfg.num_layers)
    flops = flops_per_step(cfg, args.batch, args.seq)
    batch = make_batch(args.batch, args.seq, cfg.vocab_size)
    fns = {"agentlm": agentlm_stepper(cfg, batch, args.loss_chunk)[0]}
    for impl in filter(None, args.also_attention.split(",")):
        fns[f"agentlm[{impl}]"] = agentlm_stepper(cfg.replace(attention_impl=impl), batch, args.loss_chunk)[0]
    if args.also_loss_chunk:
        for name in list(fns):
            impl = name[8:-1] or cfg.attention_impl
            label = f"agentlm[{name[8:-1] + ',' if name != 'agentlm' else ''}loss_chunk {args.also_loss_chunk}]"
            fns[label] = agentlm_stepper(cfg.replace(attention_impl=impl), batch, args.also_loss_chunk)[0]
    if not args.no_torch:
        fns["transformers"] = torch_stepper(cfg, batch, dtype)[0]
    times = interleaved(fns, args.steps, args.warmup, desc=f"{preset} {dtype}")
    med = {k: median(v) for k, v in times.items()}
    rows = []
    for name, s in med.items():
        rows.append([preset, f"{cfg.num_params() / 1e6:.1f}M", dtype, name, tokens / s, flops / s / 1e9,
                     100 * flops / s / peak, f"{times[name][0]:.2f}-{times[name][-1]:.2f}"])
    if "transformers" in med:
        for name in (n for n in med if n.startswith("agentlm")):
            label = "**ratio**" if name == "agentlm" else f"**ratio {name[7:]}**"
            rows.append([preset, "", dtype, label, med["transformers"] / med[name], "", "", ""])
    print(table(HEADER, rows), flush=True)  # each preset as soon as it is done
    return rows


if __name__ == "__main__":
    main()
