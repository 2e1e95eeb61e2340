"""Decode throughput and time to first token: agentlm.infer.generate vs transformers' generate, same run.

    python benchmarks/generate.py                              # bench_20m, batch 1 and 8, prompt 128, 128 new
    python benchmarks/generate.py --preset tiny --batches 1 --prompt 8 --new 4 --repeats 1   # smoke size

Both sides run the same random-weight model in fp32, greedy, with a KV cache, and generate exactly --new tokens
per row (no stop token: agentlm gets stop_token_ids=(), transformers min_new_tokens=max_new_tokens).
Time to first token = wall time of a call with max_new_tokens=1 (prefill + first selection). Decode tokens/s =
batch x (new - 1) / (t(new) - t(1)), i.e. the steady per-token rate with the prefill taken out. Calls
alternate (agentlm, transformers, ...) and medians are compared.
"""
from __future__ import annotations

import argparse

import common  # noqa: F401  (sys.path / env set-up before jax is imported)
from common import configure_threads, hf_llama, interleaved, median, print_header, table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="bench_20m", help="agentlm.model preset")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens per row")
    p.add_argument("--new", type=int, default=128, help="generated tokens per row")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per side and length (interleaved)")
    p.add_argument("--scan_unroll", type=int, default=1, help="agentlm's layers per layer-scan iteration "
                   "(0 = all: no loop)")
    p.add_argument("--no_torch", action="store_true", help="agentlm only (profiling)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    threads = configure_threads()
    import jax
    import numpy as np
    import torch

    from agentlm import infer, model

    cfg = model.get_config(args.preset)
    cfg = cfg.replace(scan_unroll=args.scan_unroll or cfg.num_layers)
    print_header(f"generate benchmark: {args.preset}, prompt {args.prompt}, {args.new} new tokens, greedy, "
                 f"{args.repeats} calls per side (interleaved), torch threads {threads}")
    params = model.init_params(cfg, jax.random.key(0))
    hf = None if args.no_torch else hf_llama(cfg).eval()
    rows = []
    for b in map(int, args.batches.split(",")):
        prompts = np.random.default_rng(b).integers(3, cfg.vocab_size, (b, args.prompt)).astype(np.int32)
        ids = torch.from_numpy(prompts).long()
        mask = torch.ones_like(ids)

        def ours(n):
            out = infer.generate(cfg, params, prompts.tolist(), n, stop_token_ids=())
            assert all(len(o) == n for o in out), [len(o) for o in out]

        def theirs(n):
            with torch.inference_mode():
                out = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                  do_sample=False, use_cache=True, pad_token_id=0)
            assert out.shape[1] == args.prompt + n

        fns = {"agentlm/1": lambda: ours(1), "agentlm/n": lambda: ours(args.new)}
        if hf is not None:
            fns.update({"transformers/1": lambda: theirs(1), "transformers/n": lambda: theirs(args.new)})
        times = interleaved(fns, args.repeats, warmup=1, desc=f"batch {b}")
        med = {k: median(v) for k, v in times.items()}
        rates = {}
        for name in ("agentlm", "transformers"):
            if f"{name}/1" not in med:
                continue
            decode_s = med[f"{name}/n"] - med[f"{name}/1"]  # <= 0 only for toy sizes under noise
            rates[name] = b * (args.new - 1) / decode_s if decode_s > 0 and args.new > 1 else float("nan")
            rows.append([b, name, rates[name], 1000 * med[f"{name}/1"], b * args.new / med[f"{name}/n"]])
        if len(rates) == 2:
            rows.append([b, "**ratio**", rates["agentlm"] / rates["transformers"],
                         med["transformers/1"] / med["agentlm/1"],
                         med["transformers/n"] / med["agentlm/n"]])
    print(table(["batch", "impl", "decode tokens/s", "time to first token ms", "end-to-end tokens/s"], rows))
    print("(ratio rows: agentlm speed-up over transformers, > 1 = agentlm faster, time to first token included)")
    return rows


if __name__ == "__main__":
    main()
