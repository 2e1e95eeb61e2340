"""Throughput of the OpenAI-compatible server under many concurrent clients: batched vs one row at a time.

    python benchmarks/serve.py                                      # bench_20m, 32 clients x 4 requests, 64 new
    python benchmarks/serve.py --preset tiny --clients 4 --requests 1 --new 2 --rounds 1   # smoke size

Each side starts the real server (FastAPI + uvicorn, in this process) over its own InferenceEngine: "batched"
gathers concurrent requests into one device call (up to --clients rows), "serial" is the same server with
max_batch_rows=1. --clients threads each send --requests completions (token-id prompts of --prompt ids, exactly
--new greedy tokens: ignore_eos) through the official openai client. One untimed round compiles the shapes, then
the sides alternate round by round (A, B, A, B...) and the medians are compared: generated tokens/s, requests/s
and the mean rows per device call.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import time

import common  # noqa: F401  (sys.path / env set-up before jax is imported)
from common import median, print_header, table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="bench_20m", help="agentlm.model preset (random weights)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (threads)")
    p.add_argument("--requests", type=int, default=4, help="requests per client per round")
    p.add_argument("--prompt", type=int, default=64, help="prompt token ids per request")
    p.add_argument("--new", type=int, default=64, help="generated tokens per request")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per side (interleaved)")
    return p.parse_args(argv)


def _round(client, prompts, new: int, clients: int) -> float:
    def ask(prompt):
        r = client.completions.create(model="bench", prompt=prompt, max_tokens=new, temperature=0,
                                      extra_body={"ignore_eos": True})
        assert r.usage.completion_tokens == new, r.usage
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(ask, prompts))
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    import jax
    import numpy as np
    import openai

    from agentlm import model
    from agentlm.infer import InferenceEngine, OpenAIServer

    cfg = model.get_config(args.preset)
    params = model.init_params(cfg, jax.random.key(0))
    print_header(f"serve benchmark: {args.preset}, {args.clients} clients x {args.requests} requests, prompt "
                 f"{args.prompt}, {args.new} new tokens, greedy, {args.rounds} rounds per side (interleaved)")
    rng = np.random.default_rng(0)
    prompts = rng.integers(3, cfg.vocab_size, (args.clients * args.requests, args.prompt)).tolist()
    sides = {"batched": args.clients, "serial": 1}
    servers, engines, clients = {}, {}, {}
    try:
        for name, rows in sides.items():
            engines[name] = InferenceEngine(cfg, params, None, max_batch_rows=rows, min_batch_rows=min(8, rows),
                                            batch_wait_s=0.005)
            servers[name] = OpenAIServer(engines[name], "bench", port=0).start()
            clients[name] = openai.OpenAI(base_url=servers[name].url, api_key="x", max_retries=0, timeout=3600)
            _round(clients[name], prompts, args.new, args.clients)  # compiles this side's shapes
        times = {name: [] for name in sides}
        rows_per_call = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name in sides:
                before = len(engines[name].batch_sizes)
                times[name].append(_round(clients[name], prompts, args.new, args.clients))
                seen = list(engines[name].batch_sizes)[before:]
                rows_per_call[name].append(sum(seen) / max(1, len(seen)))
    finally:
        for name in servers:
            servers[name].shutdown()
        for name in engines:
            engines[name].close()
    n_req = len(prompts)
    rows = []
    for name in sides:
        t = median(times[name])
        rows.append([name, n_req * args.new / t, n_req / t, median(rows_per_call[name])])
    b, s = rows
    rows.append(["**ratio**", b[1] / s[1], b[2] / s[2], b[3] / s[3]])
    print(table(["side", "generated tokens/s", "requests/s", "rows per device call"], rows))
    print("(ratio row: batched over serial)")
    return rows


if __name__ == "__main__":
    main()
