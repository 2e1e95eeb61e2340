"""Toy run: a tiny vision Llama trained from scratch on scripted miniwob_vision clicks vs a random clicker.

Data: for each task, `--train` episodes reset at seeds 1000+ and labelled with the scripted solver's first click
(screenshot + instruction -> "Act: click X,Y"), rendered with the chat template (image placeholders, loss 0) and
packed with agentlm.data.packing. Model: LlamaConfig with a VisionConfig (patch 8), random init, Adam. Eval:
`--eval` fresh seeds (0..) per task in the real environment, greedy decoding (full forward per token; the server
does not take images yet), against a uniform random clicker on the same seeds. Needs chromium and ../shared's
stories260K tokenizer. Results go to benchmarks/RESULTS.md by hand.

    .venv/bin/python benchmarks/vision_toy.py --tasks click-dialog,focus-text --train 200 --steps 600
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from agentlm import model
from agentlm.data import images, packing
from agentlm.data.template import load_tokenizer, render_detailed
from agentlm.envs import registry
from agentlm.envs.miniwob_vision import VisionSolver, make_task
from agentlm.model.config import VisionConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
PATCH = 8


def first_screen(env, task):
    """(instruction text, screenshot pixels, privileged first message) after reset."""
    messages = env.reset(task)
    text, image = messages[-1]["value"]
    return text["text"].split("Task:", 1)[-1].strip(), images.decode(open(image["path"], "rb").read()), messages


def conversation(task_text: str, reply: str | None):
    conv = [{"from": "human", "value": f"Task: {task_text}\n{images.IMAGE_SENTINEL}"}]
    return conv + ([{"from": "gpt", "value": reply, "loss": True}] if reply is not None else [])


def collect(env, names, seeds, tok):
    examples = []
    for name in names:
        for seed in seeds:
            task = make_task(name, seed)
            text, pixels, messages = first_screen(env, task)
            action = VisionSolver().act(messages, task).split("Act:", 1)[1].strip()
            patches = images.patchify(pixels, PATCH)
            r = render_detailed(conversation(text, f"Act: {action}"), tok, system=None, image_tokens=[len(patches)])
            examples.append((np.asarray(r.ids, np.int32), np.asarray(r.loss_mask, np.int32),
                             np.asarray(r.image_mask, np.int32), patches))
    return examples


def train(cfg, examples, steps, batch, seq_len, lr, seed=0):
    params = model.init_params(cfg, jax.random.key(seed))
    warmup = max(1, min(50, steps // 10))
    opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps + 1), weight_decay=0.0)
    state = opt.init(params)

    def loss_fn(p, b):
        logits, _ = model.apply(cfg, p, b["inputs"], b["positions"], b["segment_ids"],
                                image_patches=b["image_patches"], image_mask=b["image_mask"])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, b["targets"])
        return (ce * b["loss_weights"]).sum() / b["loss_weights"].sum()

    @jax.jit
    def step(p, s, b):
        loss, grads = jax.value_and_grad(loss_fn)(p, b)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    rng = np.random.RandomState(seed)
    t0 = time.time()
    for i in range(steps):
        pick = rng.randint(0, len(examples), batch)
        b = packing.pack_rows([[examples[k]] for k in pick], seq_len, PATCH * PATCH * 3)
        params, state, loss = step(params, state, b)
        if i % 100 == 0 or i == steps - 1:
            print(f"step {i} loss {float(loss):.3f} ({time.time() - t0:.0f}s)", flush=True)
    return params


def greedy(cfg, params, tok, text, pixels, max_new=32):
    patches = images.patchify(pixels, PATCH)
    r = render_detailed(conversation(text, None), tok, system=None, image_tokens=[len(patches)])
    ids, mask = list(r.ids), list(r.image_mask)
    full = np.zeros((len(ids) + max_new, patches.shape[1]), np.uint8)
    full[np.flatnonzero(mask)] = patches
    out = []
    for _ in range(max_new):
        n = len(ids)
        logits, _ = _forward(cfg, params, np.asarray([ids], np.int32), np.asarray([mask], np.int32),
                             full[None, :n])
        nxt = int(np.argmax(np.asarray(logits)[0, -1]))
        if nxt == tok.eos_id:
            break
        ids.append(nxt)
        mask.append(0)
        out.append(nxt)
    return tok.decode(out)


_FWD = {}


def _forward(cfg, params, ids, mask, patches):
    fn = _FWD.setdefault(cfg, jax.jit(lambda p, i, m, x: model.apply(cfg, p, i, image_patches=x, image_mask=m)))
    return fn(params, ids, mask, patches)


def evaluate(env, names, seeds, act):
    """Success rate per task of `act(text, pixels) -> reply` over fresh seeds in the real environment."""
    out = {}
    for name in names:
        wins = 0
        for seed in seeds:
            task = make_task(name, seed)
            text, pixels, messages = first_screen(env, task)
            reply = act(text, pixels)
            if seed < 3:
                gold = VisionSolver().act(messages, task).split("Act:", 1)[1].strip()
                print(f"  {name} seed {seed}: reply {reply!r}, scripted {gold!r}", flush=True)
            result = env.step(reply)
            wins += int(result.done and result.reward > 0)
        out[name] = wins / len(seeds)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="click-dialog,focus-text")
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--eval", type=int, default=50)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--tokenizer", default=str(ROOT.parent / "shared/models/stories260K-hf/tokenizer.model"))
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    names = args.tasks.split(",")
    tok = load_tokenizer(args.tokenizer)
    spec = registry.get("miniwob_vision")
    env = spec.make_env()
    try:
        t0 = time.time()
        examples = collect(env, names, range(1000, 1000 + args.train), tok)
        seq_len = max(len(e[0]) for e in examples) - 1
        print(f"{len(examples)} examples, seq_len {seq_len}, collected in {time.time() - t0:.0f}s", flush=True)
        cfg = model.get_config("tiny").replace(vision=VisionConfig(patch_size=PATCH, max_patches=256),
                                               max_position_embeddings=1024)
        params = train(cfg, examples, args.steps, args.batch, seq_len, args.lr)
        seeds = range(args.eval)
        rng = np.random.RandomState(0)
        model_rate = evaluate(env, names, seeds, lambda t, p: greedy(cfg, params, tok, t, p))
        random_rate = evaluate(env, names, seeds, lambda t, p: f"Act: click {rng.randint(0, p.shape[1])},"
                                                               f"{rng.randint(0, p.shape[0])}")
    finally:
        env.close()
    result = {"tasks": names, "train_examples": len(examples), "steps": args.steps, "model": model_rate,
              "random_clicker": random_rate, "eval_seeds": args.eval}
    print(json.dumps(result, indent=1))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
