"""Exact-match accuracy of a trained run on the held-out word games of data_pipeline.word_games: the toy world's
general benchmark (what MMLU/GSM8K are at paper scale), cheap enough for every point of a CPU ratio sweep.

    python -m agentlm.eval.word_games --run_dir R --items D/general_eval.jsonl --tokenizer D/tokenizer \
        --out R/../eval/general_builtin.json
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from agentlm.jsonl import iter_jsonl


def general_eval(run_dir: str, items_file: str, tokenizer_path: str, out_file: str, max_new_tokens: int = 24) -> dict:
    """Greedy answers to the held-out word games; score = exact-match accuracy in percent."""
    from agentlm.checkpoint import load
    from agentlm.data.template import load_tokenizer, render_prompt
    from agentlm.infer.generate import generate

    cfg, params = load(run_dir)
    tok = load_tokenizer(tokenizer_path)
    rows = [row for _, row in iter_jsonl(items_file)]
    prompts = [render_prompt(r["conversations"][:1], tok) for r in rows]
    outputs = generate(cfg, params, prompts, max_new_tokens)
    per_game: dict[str, list[bool]] = {}
    records = []
    for row, ids in zip(rows, outputs):
        text = tok.decode([i for i in ids if i != tok.eos_id]).strip()
        ok = text == row["conversations"][1]["value"]
        per_game.setdefault(row["game"], []).append(ok)
        records.append({"id": row["id"], "output": text, "correct": ok})
    n = sum(len(v) for v in per_game.values())
    result = {"score": 100.0 * sum(sum(v) for v in per_game.values()) / max(n, 1), "n": n,
              "per_game": {g: 100.0 * sum(v) / len(v) for g, v in sorted(per_game.items())}, "records": records}
    pathlib.Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(out_file).write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentlm.eval.word_games", description=__doc__.split("\n\n")[0])
    p.add_argument("--run_dir", required=True)
    p.add_argument("--items", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max_new_tokens", type=int, default=24)
    a = p.parse_args(argv)
    r = general_eval(a.run_dir, a.items, a.tokenizer, a.out, a.max_new_tokens)
    print(f"general (word games): {r['score']:.1f}% exact match over {r['n']} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
