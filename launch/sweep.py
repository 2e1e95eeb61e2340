"""Ratio sweep: train and evaluate one run per mixture ratio eta (and seed), then tables and one plot.

    python -m launch.sweep --config configs/sweep/ratio.py [--config.etas='(0.0,0.2,1.0)'] [--config.key=value]

The paper's question: how much general data must be mixed into agent data (J = eta * agent + (1 - eta) *
general)? Its answer: eta = 0.2 is best; eta = 1.0 (agent data only) hurts held-out and general scores.

Each stage is the project's own command line, run as a subprocess (the same commands a user would type), so a
sweep exercises exactly what single runs do and a failing stage leaves a log to read:
  data     each of `config.data.steps` once (e.g. the data pipeline's build, evaluation items,
           `python -m data_pipeline.word_games` for general data + tokenizer)
  train    `python -m agentlm.train --config <run config> --config.<eta_key>=<eta> --config.seed=<seed> ...`
           (<run config> = train.config + train.settings, written to <out_dir>/<tag>/train_config.py)
  serve    with `eval.agent.serve.enabled`: `python -m agentlm.infer.serve --ckpt <run> --port <free port>`,
           and the agent evaluations talk to it over HTTP, as they would to a paper-scale model's server
  agent    `python -m agentlm.eval.agent --config <eval config> --config.model=<run or URL> ...`: once, or once
           per suite of `eval.agent.suites` (a task family: its environment, item file and held-in/out group)
  general  `python -m agentlm.eval.general ...` (benchmarks) and/or `python -m agentlm.eval.word_games`
           (the tiny world's held-out word games)
A run is finished when `<out_dir>/<tag>/done.json` exists (it holds the scores); a rerun skips finished runs
and resumes unfinished ones (the trainer resumes from its checkpoints, the evaluations from their records).
Tags: `eta_<eta>` with one seed, `eta_<eta>_seed_<seed>` with several.
Results (launch.sweep_report): `<out_dir>/results.md` (mean ± std over seeds per eta), `results_runs.md` (every
run), `results.{csv,json,png}`; with `before_after = (eta0, eta1)` also `before_after.md`, copied next to the
eta1 run's checkpoints.

Mode "tpu" trains on TPU pods instead: it writes `<out_dir>/tpu_jobs.sh`, one `python -m launch.tpu ... up` per
eta; evaluate the finished runs afterwards with mode "local" and `train.enabled=False`.
Override values may use {out_dir}, {data_dir}, {run_dir}, {eta}, {seed}, {tag} and {python}, filled in per run;
a relative out_dir is relative to the repository root.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import pathlib
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

from agentlm import storage
from launch.sweep_report import before_after_table, collect_losses, collect_scores, markdown_table, summary_table, \
    write_results

ROOT = pathlib.Path(__file__).resolve().parents[1]
GROUPS = ("held_in", "held_out")


class StageError(RuntimeError):
    pass


def eta_tag(eta: float, seed: int | None = None) -> str:
    return f"eta_{float(eta):g}" + ("" if seed is None else f"_seed_{seed}")


def _suites(c) -> dict:
    return {k: dict(v) for k, v in (c.eval.agent.get("suites") or {}).items()}


def check_config(c) -> list[float]:
    etas = [float(e) for e in c.etas]
    if not etas:
        raise ValueError("config.etas is empty")
    bad = [e for e in etas if not 0.0 <= e <= 1.0]
    if bad:
        raise ValueError(f"config.etas={tuple(c.etas)}: {bad} outside [0, 1] (eta is the agent-data probability)")
    if len(set(etas)) != len(etas):
        raise ValueError(f"config.etas={tuple(c.etas)}: repeated values")
    seeds = list(c.get("seeds", (0,)))
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) for x in seeds):
        raise ValueError(f"config.seeds={tuple(seeds)}: must be distinct integers, at least one")
    if c.mode not in ("local", "tpu"):
        raise ValueError(f"config.mode={c.mode!r}: must be 'local' or 'tpu'")
    for name, suite in _suites(c).items():
        missing = [k for k in ("task", "items", "group") if not suite.get(k)]
        if missing:
            raise ValueError(f"config.eval.agent.suites.{name}: missing {', '.join(missing)}")
        if suite["group"] not in GROUPS:
            raise ValueError(f"config.eval.agent.suites.{name}.group={suite['group']!r}: must be one of {GROUPS}")
    base = c.train.get("init_from_eta")
    if base is not None:
        if float(base) not in etas:
            raise ValueError(f"config.train.init_from_eta={base}: not one of config.etas={tuple(c.etas)} (the base "
                             "run every other eta fine-tunes from is one of the sweep's runs)")
        if c.mode == "tpu":
            raise ValueError("config.train.init_from_eta: mode=tpu starts every run at once, before the base run "
                             "exists; train the base eta alone first, then the others with "
                             "--config.train.overrides including --config.init_from=<base run>")
    before_after = tuple(c.get("before_after") or ())
    if before_after and (len(before_after) != 2 or not set(map(float, before_after)) <= set(etas)):
        raise ValueError(f"config.before_after={before_after}: two of config.etas (untuned, tuned)")
    for field in ("train.config",) + (("eval.agent.config",) if c.eval.agent.enabled else ()) + (
            ("eval.general.config",) if c.eval.general.enabled else ()):
        path = c
        for part in field.split("."):
            path = path[part]
        if not (ROOT / path).is_file() and not pathlib.Path(path).is_file():
            raise ValueError(f"config.{field}={path!r}: no such file")
    return etas


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(cmd: list[str], port: int, log_file: pathlib.Path, timeout_s: float, name: str):
    """Runs the model server `cmd` until the block ends; yields its /v1 base URL once /health answers."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as f:
        f.write(f"\n$ {shlex.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout_s
        while True:
            if proc.poll() is not None:
                tail = "".join(log_file.read_text().splitlines(keepends=True)[-30:])
                raise StageError(f"{name} exited (code {proc.returncode}) before serving; log {log_file}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise StageError(f"{name}: no answer on port {port} after {timeout_s:.0f} s; log {log_file}")
            time.sleep(1.0)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Sweep:
    def __init__(self, config, out=None):
        self.c = config
        self.etas = check_config(config)
        self.seeds = [int(s) for s in config.get("seeds", (0,))]
        self.suites = _suites(config)
        self.out_dir = pathlib.Path(config.out_dir)
        if not self.out_dir.is_absolute():
            self.out_dir = ROOT / self.out_dir
        self.python = config.python or sys.executable
        self.log = out or sys.stdout

    # ---- paths and commands ----
    def data_dir(self) -> pathlib.Path:
        d = pathlib.Path(self.c.data.out_dir.format(out_dir=self.out_dir))
        return d if d.is_absolute() else ROOT / d

    def tag(self, eta: float, seed: int) -> str:
        return eta_tag(eta, seed if len(self.seeds) > 1 else None)

    def run_dir(self, eta: float, seed: int | None = None) -> str:
        seed = self.seeds[0] if seed is None else seed
        return self.c.run_dir_template.format(out_dir=self.out_dir, tag=self.tag(eta, seed), eta=eta, seed=seed)

    def _fields(self, eta: float | None = None, seed: int | None = None) -> dict:
        fields = {"out_dir": self.out_dir, "data_dir": self.data_dir(), "python": self.python}
        if eta is not None:
            seed = self.seeds[0] if seed is None else seed
            fields.update(eta=eta, seed=seed, tag=self.tag(eta, seed), run_dir=self.run_dir(eta, seed))
        return fields

    def _fill(self, values, eta: float | None = None, seed: int | None = None) -> list[str]:
        fields = self._fields(eta, seed)
        return [str(v).format(**fields) for v in values]

    def data_commands(self) -> list[list[str]]:
        """The data steps (strings with {python}, {out_dir}, {data_dir}), split like a shell would."""
        return [self._fill(shlex.split(step)) for step in self.c.data.steps]

    def train_command(self, eta: float, config_file: str | None = None, seed: int | None = None) -> list[str]:
        t = self.c.train
        seed = self.seeds[0] if seed is None else seed
        base = self.base_eta()
        init = [] if base is None or eta == base else [f"--config.init_from={self.run_dir(base, seed)}"]
        return [self.python, "-m", t.module, "--config", config_file or t.config, f"--config.{t.eta_key}={eta}",
                f"--config.run_dir={self.run_dir(eta, seed)}", f"--config.seed={seed}", *init,
                *self._fill(t.overrides, eta, seed)]

    def base_eta(self) -> float | None:
        """`train.init_from_eta`: the eta whose run (same seed) every other run fine-tunes from, as AgentTuning
        fine-tunes a chat model that already has its general ability; None = every run starts from scratch."""
        base = self.c.train.get("init_from_eta")
        return None if base is None else float(base)

    def write_run_config(self, eta: float, path: pathlib.Path, seed: int | None = None) -> str:
        """A config file = train.config + train.settings. Settings may set any field type (the trainer's list
        fields, e.g. data paths, cannot be overridden on the command line)."""
        flat = _flatten(self.c.train.settings.to_dict()) if self.c.train.settings else {}
        fields = self._fields(eta, seed)
        flat = {k: _format_all(v, fields) for k, v in flat.items()}
        base = pathlib.Path(self.c.train.config)
        base = base if base.is_absolute() else ROOT / base
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RUN_CONFIG_TEMPLATE.format(base=json.dumps(str(base)), settings=json.dumps(flat, indent=1)))
        return str(path)

    def serve_command(self, eta: float, seed: int, port: int) -> list[str]:
        s = self.c.eval.agent.serve
        return [self.python, "-m", s.module, "--ckpt", self.run_dir(eta, seed), "--port", str(port),
                "--served-model-name", self.tag(eta, seed), *self._fill(s.args, eta, seed)]

    def eval_commands(self, eta: float, seed: int | None = None, model: str | None = None) -> dict[str, list[str]]:
        """The evaluation commands of one run; `model` replaces the run directory (a served model's URL)."""
        seed = self.seeds[0] if seed is None else seed
        tag, run = self.tag(eta, seed), self.run_dir(eta, seed)
        cmds, eval_dir = {}, str(self.out_dir / tag / "eval")
        a = self.c.eval.agent
        if a.enabled:
            base = [self.python, "-m", a.module, "--config", a.config, f"--config.model={model or run}",
                    f"--config.label={tag}", *self._fill(a.overrides, eta, seed)]
            if not self.suites:
                cmds["agent"] = base + [f"--config.out={eval_dir}"]
            for name, suite in self.suites.items():
                items, = self._fill([suite["items"]], eta, seed)
                cmds[f"agent_{name}"] = base + [f"--config.out={eval_dir}/{name}", f"--config.tasks={suite['task']}",
                                                f"--config.{suite['task']}.data_file={items}"]
        g = self.c.eval.general
        if g.enabled:
            cmds["general"] = [self.python, "-m", g.module, "--config", g.config, f"--config.model={run}",
                               f"--config.out={eval_dir}", *self._fill(g.overrides, eta, seed)]
        b = self.c.eval.builtin_general
        if b.enabled:
            items, tok = self._fill([b.items_file, b.tokenizer], eta, seed)
            cmds["general_builtin"] = [self.python, "-m", "agentlm.eval.word_games", f"--run_dir={run}",
                                       f"--items={items}", f"--tokenizer={tok}",
                                       f"--out={eval_dir}/general_builtin.json", f"--max_new_tokens={b.max_new_tokens}"]
        return cmds

    # ---- running ----
    def _run(self, name: str, cmd: list[str], log_file: pathlib.Path) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        print(f"[sweep] {name}: {shlex.join(cmd)}", file=self.log, flush=True)
        t0 = time.time()
        with open(log_file, "a") as f:
            f.write(f"\n$ {shlex.join(cmd)}\n")
            f.flush()
            rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
        if rc:
            tail = "".join(log_file.read_text().splitlines(keepends=True)[-30:])
            raise StageError(f"{name} failed (exit {rc}); log {log_file}:\n{tail}")
        print(f"[sweep] {name}: done in {time.time() - t0:.0f} s", file=self.log, flush=True)

    def prepare_data(self) -> None:
        """Runs each data step once; a step's marker file records that it finished."""
        for i, cmd in enumerate(self.data_commands()):
            marker = self.data_dir() / f".sweep_step_{i}.done"
            if marker.exists():
                print(f"[sweep] data step {i + 1}: done earlier, skipping", file=self.log)
                continue
            self._run(f"data step {i + 1}", cmd, self.out_dir / "logs" / f"data_{i + 1}.log")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(datetime.datetime.now().isoformat() + "\n")

    def _evaluate(self, eta: float, seed: int, eta_dir: pathlib.Path, commands: dict) -> None:
        tag = self.tag(eta, seed)
        serve = self.c.eval.agent.get("serve")
        if self.c.eval.agent.enabled and serve and serve.enabled:
            port = free_port()
            commands["serve"] = self.serve_command(eta, seed, port)
            print(f"[sweep] {tag} serve: {shlex.join(commands['serve'])}", file=self.log, flush=True)
            with served(commands["serve"], port, eta_dir / "serve.log", serve.startup_timeout_s, f"{tag} serve") as url:
                for name, cmd in self.eval_commands(eta, seed, model=url).items():
                    if name.startswith("agent"):
                        commands[name] = cmd
                        self._run(f"{tag} eval {name}", cmd, eta_dir / f"eval_{name}.log")
            rest = {k: v for k, v in self.eval_commands(eta, seed).items() if not k.startswith("agent")}
        else:
            rest = self.eval_commands(eta, seed)
        for name, cmd in rest.items():
            commands[name] = cmd
            self._run(f"{tag} eval {name}", cmd, eta_dir / f"eval_{name}.log")

    def run_one(self, eta: float, seed: int) -> dict:
        tag = self.tag(eta, seed)
        eta_dir = self.out_dir / tag
        done = eta_dir / "done.json"
        if done.exists():
            print(f"[sweep] {tag}: finished earlier, skipping ({done})", file=self.log, flush=True)
            return json.loads(done.read_text())
        t0 = time.time()
        commands = {}
        if self.c.train.enabled:
            commands["train"] = self.train_command(eta, self.write_run_config(eta, eta_dir / "train_config.py", seed),
                                                   seed)
            self._run(f"{tag} train", commands["train"], eta_dir / "train.log")
        self._evaluate(eta, seed, eta_dir, commands)
        result = {"eta": eta, "seed": seed, "tag": tag, "run_dir": self.run_dir(eta, seed),
                  **collect_scores(eta_dir / "eval", self.suites or None), **collect_losses(self.run_dir(eta, seed)),
                  "seconds": round(time.time() - t0, 1),
                  "finished": datetime.datetime.now().isoformat(timespec="seconds"), "commands": commands}
        done.write_text(json.dumps(result, indent=2) + "\n")  # written last: its presence means "finished"
        return result

    def run_eta(self, eta: float) -> dict:
        return self.run_one(eta, self.seeds[0])

    def emit_tpu_jobs(self) -> pathlib.Path:
        t = self.c.tpu
        missing = [k for k in ("tpu", "zone", "type") if not t[k]]
        if missing:
            raise ValueError(f"mode=tpu needs config.tpu.{', config.tpu.'.join(missing)}")
        if self.c.train.settings and self.c.train.settings.to_dict():
            raise ValueError("mode=tpu: config.train.settings cannot travel to the pod; put them in a config file "
                             "under configs/ and name it in config.train.config")
        if not self.c.run_dir_template.startswith("gs://"):
            raise ValueError(f"config.run_dir_template={self.c.run_dir_template!r}: TPU runs need a gs:// location")
        lines = ["#!/usr/bin/env bash", "# one TPU training job per eta and seed (python -m launch.sweep, mode=tpu)",
                 "set -euo pipefail"]
        for eta in self.etas:
            for seed in self.seeds:
                name = f"{t.tpu}-{self.tag(eta, seed).replace('_', '').replace('.', 'p')}"
                cmd = [self.python, "-m", "launch.tpu", "--tpu", name, "--zone", t.zone, "--type", t.type,
                       "--config", self.c.train.config, *(["--num_slices", str(t.num_slices)] if t.num_slices > 1
                                                          else []),
                       *list(t.extra_args), "up", "--", f"--config.{self.c.train.eta_key}={eta}",
                       f"--config.run_dir={self.run_dir(eta, seed)}", f"--config.seed={seed}",
                       *self._fill(self.c.train.overrides, eta, seed)]
                lines.append(shlex.join(cmd))
        path = self.out_dir / "tpu_jobs.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)
        return path

    def run(self) -> list[dict]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.c.mode == "tpu":
            path = self.emit_tpu_jobs()
            print(path.read_text(), file=self.log)
            print(f"[sweep] wrote {path}; run it, then evaluate with --config.mode=local "
                  "--config.train.enabled=False", file=self.log)
            return []
        t0 = time.time()
        self.prepare_data()
        results = []
        base = self.base_eta()  # the base run of a seed before the runs that start from it
        order = sorted(self.etas, key=lambda e: e != base) if base is not None else self.etas
        runs = [(eta, seed) for seed in self.seeds for eta in order]  # every eta once before any repeat
        for i, (eta, seed) in enumerate(runs):
            print(f"[sweep] run {i + 1}/{len(runs)}: eta={eta:g} seed={seed}", file=self.log, flush=True)
            results.append(self.run_one(eta, seed))
        write_results(results, self.out_dir, self.c.title)
        print(markdown_table(results, self.c.title), file=self.log)
        print(summary_table(results, self.c.title), file=self.log)
        if self.c.get("before_after"):
            self.write_before_after(results)
        print(f"[sweep] results in {self.out_dir}/results.{{md,csv,json,png}} ({time.time() - t0:.0f} s this "
              "invocation)", file=self.log)
        return results

    def write_before_after(self, results: list[dict]) -> None:
        """The before/after table, printed, in out_dir and next to the tuned run's checkpoints."""
        before, after = (float(e) for e in self.c.before_after)
        table = before_after_table(results, before, after, self.c.title)
        print(table, file=self.log)
        (self.out_dir / "before_after.md").write_text(table + "\n")
        for seed in self.seeds:
            run = storage.path(self.run_dir(after, seed))  # local or in a bucket (gs://, tpu mode)
            if run.is_dir():
                (run / "before_after.md").write_text(table + "\n")


RUN_CONFIG_TEMPLATE = '''"""Written by launch.sweep: the base train config plus the sweep's train.settings."""
import json

from agentlm.configfile import load_config_file

_BASE = {base}
_SETTINGS = json.loads(\'\'\'{settings}\'\'\')


def get_config():
    c = load_config_file(_BASE)
    for dotted, value in _SETTINGS.items():
        *parents, leaf = dotted.split(".")
        node = c
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c
'''


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _format_all(value, fields: dict):
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, (list, tuple)):
        return [_format_all(v, fields) for v in value]
    return value


def main(argv) -> int:
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; set fields with --config.key=value")
    try:
        Sweep(_CONFIG.value).run()
    except (ValueError, StageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from absl import app
    from ml_collections import config_flags

    _CONFIG = config_flags.DEFINE_config_file("config", str(ROOT / "configs" / "sweep" / "ratio.py"),
                                              "sweep config file (ml_collections)", lock_config=True)
    app.run(lambda argv: sys.exit(main(argv)))
