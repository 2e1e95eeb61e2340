"""Toy run of issue 19 end to end: a tiny vision Llama learns to click MiniWoB++ targets from pixels.

Stages (each skipped when its output exists, so a rerun continues where the last stopped):
1. data: `data_pipeline` with configs/pipeline/miniwob_vision_toy.py: the scripted VisionSolver plays `--train`
   seeds (1000 and up) of each task; rows = instruction + 80 x 104 screenshot -> "Act: click X,Y".
2. train: `python -m agentlm.train --config configs/train/vision_toy.py` on that export (the trainer's own
   mixture iterator with image rows), from random init.
3. serve + eval: `python -m agentlm.infer.serve` on the run directory, then `python -m agentlm.eval.agent --tasks
   miniwob_vision` against it on `--eval` fresh seeds (0..) per task, one click per episode (max_rounds 1).
4. baselines on the same episodes: a uniform random clicker, and the best constant click per task: the single
   point that lies inside the target on the most of these very episodes (chosen with the privileged element boxes,
   so no constant clicker can do better here), then played in the environment like the others.

    .venv/bin/python benchmarks/vision_toy.py --out runs/vision_toy --tasks focus-text,click-dialog \
        --train 2000 --eval 100 --steps 2000

Needs chromium and ../shared's stories260K tokenizer. Prints and writes <out>/result.json; the numbers go to
benchmarks/RESULTS.md and docs/vision.md by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:       # run as a script: the baselines import agentlm in this process
    sys.path.insert(0, str(ROOT))
SHORT_SCAFFOLD = ROOT / "configs" / "envs" / "miniwob_vision_short.json"
TOKENIZER = ROOT.parent / "shared" / "models" / "stories260K-hf" / "tokenizer.model"
WIDTH, HEIGHT = 80, 104


def write_items(path: pathlib.Path, names, seeds) -> pathlib.Path:
    path.write_text("".join(json.dumps({"task": n, "seed": s}) + "\n" for n in names for s in seeds))
    return path


def run(cmd, log: pathlib.Path, env=None):
    print("$", " ".join(map(str, cmd)), flush=True)
    t0 = time.time()
    with open(log, "a") as f:
        proc = subprocess.run(list(map(str, cmd)), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        raise SystemExit(f"{cmd[2]} failed (exit {proc.returncode}); see {log}")
    return time.time() - t0


def per_task(episodes_path: pathlib.Path, train_shas: set | None = None) -> dict[str, float]:
    """Success rate per MiniWoB task from an episodes.jsonl (ids miniwob_vision_<task>_<seed>); with `train_shas`,
    the rate over the episodes whose first screenshot is not among the training screens (key "<task>/unseen")."""
    wins: dict[str, list[float]] = {}
    for line in episodes_path.read_text().splitlines():
        ep = json.loads(line)
        name = re.match(r"miniwob_vision_(.+)_\d+$", ep["id"]).group(1)
        wins.setdefault(name, []).append(float(ep["reward"] > 0))
        if train_shas is not None:
            first = next(m for m in ep["conversations"] if isinstance(m["value"], list))
            sha = next(p["sha256"] for p in first["value"] if p["type"] == "image")
            if sha not in train_shas:
                wins.setdefault(f"{name}/unseen", []).append(float(ep["reward"] > 0))
    return {k: float(np.mean(v)) for k, v in sorted(wins.items())}


def unseen_counts(episodes_path: pathlib.Path, train_shas: set) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in episodes_path.read_text().splitlines():
        ep = json.loads(line)
        name = re.match(r"miniwob_vision_(.+)_\d+$", ep["id"]).group(1)
        first = next(m for m in ep["conversations"] if isinstance(m["value"], list))
        sha = next(p["sha256"] for p in first["value"] if p["type"] == "image")
        counts[name] = counts.get(name, 0) + int(sha not in train_shas)
    return counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_eval(run_dir: pathlib.Path, items: pathlib.Path, out: pathlib.Path, workers: int) -> float:
    port = free_port()
    log = open(out / "serve.log", "a")
    server = subprocess.Popen([sys.executable, "-m", "agentlm.infer.serve", "--ckpt", str(run_dir), "--tokenizer",
                               str(TOKENIZER), "--port", str(port), "--served-model-name", "vision_toy"],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"the server did not come up; see {out / 'serve.log'}") from None
                time.sleep(2)
        return run([sys.executable, "-m", "agentlm.eval.agent", "--model", f"http://127.0.0.1:{port}/v1",
                    "--tasks", "miniwob_vision", "--out", out / "eval",
                    f"--config.miniwob_vision.data_file={items}",
                    f"--config.miniwob_vision.prompt_file={SHORT_SCAFFOLD}",
                    "--config.miniwob_vision.max_rounds=1", "--config.max_tokens=48", f"--config.workers={workers}"],
                   out / "eval.log")
    finally:
        server.terminate()
        server.wait(60)
        log.close()


class Clicker:
    """A baseline agent: one click per episode at `point(task)`."""

    def __init__(self, point):
        self.point = point

    def act(self, conversation, task) -> str:
        x, y = self.point(task)
        return f"Act: click {x},{y}"


def target_boxes(env, tasks) -> dict[str, list[float]]:
    """The scripted solver's first click target (element box, screenshot pixels) of every episode."""
    from agentlm.envs.miniwob_solvers import SOLVERS, Page

    boxes = {}
    for task in tasks:
        oracle = env.reset(task)[-1]["oracle"]
        step = SOLVERS[task.data["task"]](Page(oracle["page"]))[0]
        ref = int(re.search(r"\[(\d+)\]", step).group(1))
        boxes[task.id] = {int(k): v for k, v in oracle["boxes"].items()}[ref]
    return boxes


def best_points(tasks, boxes) -> dict[str, tuple[int, int, float]]:
    """Per task: the pixel inside the most targets of these episodes (the env clicks the pixel's centre)."""
    xs, ys = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    out = {}
    for name in sorted({t.data["task"] for t in tasks}):
        b = np.array([boxes[t.id] for t in tasks if t.data["task"] == name])
        inside = ((b[:, 0, None, None] <= xs) & (xs <= b[:, 0, None, None] + b[:, 2, None, None])
                  & (b[:, 1, None, None] <= ys) & (ys <= b[:, 1, None, None] + b[:, 3, None, None])).mean(0)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        out[name] = (int(x), int(y), float(inside[y, x]))
    return out


def baselines(items: pathlib.Path, out: pathlib.Path, workers: int, train_shas: set) -> dict:
    from agentlm.envs import loop, registry

    spec = registry.get("miniwob_vision")
    tasks = spec.tasks(str(items))
    env = spec.make_env(prompt_file=str(SHORT_SCAFFOLD))
    try:
        boxes = target_boxes(env, tasks)
    finally:
        env.close()
    points = best_points(tasks, boxes)
    factory = spec.env_factory(max_rounds=1, prompt_file=str(SHORT_SCAFFOLD))
    rng = {t.id: np.random.default_rng([7, i]) for i, t in enumerate(tasks)}
    agents = {"best_constant_click": Clicker(lambda t: points[t.data["task"]][:2]),
              "random_click": Clicker(lambda t: (int(rng[t.id].integers(WIDTH)), int(rng[t.id].integers(HEIGHT))))}
    result = {"best_constant_point": {k: v[:2] for k, v in points.items()},
              "best_constant_by_boxes": {k: v[2] for k, v in points.items()}}
    for name, agent in agents.items():
        path = out / "baselines" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        loop.run_tasks(factory, agent, tasks, loop.LoopConfig(max_rounds=1), workers=workers, out=path, resume=True,
                       progress=False)
        result[name] = per_task(path, train_shas)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/vision_toy")
    ap.add_argument("--tasks", default="focus-text,click-dialog")
    ap.add_argument("--train", type=int, default=2000, help="training episodes (screens) per task")
    ap.add_argument("--eval", type=int, default=100, help="evaluation episodes per task (seeds 0..)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train_args", default="", help="extra --config.* flags for agentlm.train, space separated")
    args = ap.parse_args()
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = args.tasks.split(",")
    timings = {}

    export = out / "data" / "export" / "agentinstruct" / "miniwob_vision.jsonl"
    if not export.exists():
        items = write_items(out / "train_items.jsonl", names, range(1000, 1000 + args.train))
        timings["data_s"] = run([sys.executable, "-m", "data_pipeline.run", "--config",
                                 "configs/pipeline/miniwob_vision_toy.py", f"--config.sources.screens.path={items}",
                                 f"--config.out_dir={out / 'data'}"], out / "pipeline.log")
    rows = len(export.read_text().splitlines())
    run_dir = out / "train"
    if not (run_dir / "checkpoints" / str(args.steps)).exists():
        env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", ""))
        timings["train_s"] = run([sys.executable, "-m", "agentlm.train", "--config", "configs/train/vision_toy.py",
                                  f"--config.run_dir={run_dir}", f"--config.train.steps={args.steps}",
                                  f"--config.data.mixture.agent_paths=('{export}',)",
                                  f"--config.data.mixture.cache_dir={out / 'tfds'}", "--config.log.progress=False",
                                  *args.train_args.split()], out / "train.log", env)
    eval_items = write_items(out / "eval_items.jsonl", names, range(args.eval))
    episodes = out / "eval" / "agent" / "miniwob_vision" / "episodes.jsonl"
    if not episodes.exists() or len(episodes.read_text().splitlines()) < len(names) * args.eval:
        timings["eval_s"] = serve_and_eval(run_dir, eval_items, out, args.workers)
    # screens are content-addressed (<sha256>.png): an evaluation screen may equal a training one (focus-text has
    # few layouts), so rates are also given over the episodes whose screen was never trained on
    train_shas = {p.stem for p in (export.parent / "images").glob("*.png")}
    result = {"tasks": names, "train_rows": rows, "steps": args.steps, "eval_episodes_per_task": args.eval,
              "unseen_eval_screens": unseen_counts(episodes, train_shas),
              "model_via_server": per_task(episodes, train_shas),
              **baselines(eval_items, out, args.workers, train_shas),
              "timings_s": timings}
    losses = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in losses if "loss" in r]
    result["train_loss_first_last"] = [losses[0], losses[-1]] if losses else None
    print(json.dumps(result, indent=1))
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
