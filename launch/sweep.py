"""Ratio sweep: train and evaluate one run per mixture ratio eta, then one table and one plot.

    python -m launch.sweep --config configs/sweep/ratio.py [--config.etas='(0.0,0.2,1.0)'] [--config.key=value]

The paper's question: how much general data must be mixed into agent data (J = eta * agent + (1 - eta) *
general)? Its answer: eta = 0.2 is best; eta = 1.0 (agent data only) hurts held-out and general scores.

Each stage is the project's own command line, run as a subprocess (the same commands a user would type), so a
sweep exercises exactly what single runs do and a failing stage leaves a log to read:
  data     each of `config.data.steps` once (default: the data pipeline's offline build, held-in eval items,
           `python -m data_pipeline.word_games` for general data + tokenizer)
  train    `python -m agentlm.train --config <run config> --config.<eta_key>=<eta> --config.run_dir=<run>`
           (<run config> = train.config + train.settings, written to <out_dir>/eta_<eta>/train_config.py)
  agent    `python -m agentlm.eval.agent --config <eval config> --config.model=<run> ...` (held-in, held-out)
  general  `python -m agentlm.eval.general ...` (benchmarks) and/or `python -m agentlm.eval.word_games`
           (the tiny world's held-out word games)
A run is finished when `<out_dir>/eta_<eta>/done.json` exists (it holds the scores); a rerun skips finished runs
and resumes unfinished ones (the trainer resumes from its checkpoints, the evaluations from their records).
Results: `<out_dir>/results.{md,csv,json}` and `<out_dir>/results.png` (scores against eta).

Mode "tpu" trains on TPU pods instead: it writes `<out_dir>/tpu_jobs.sh`, one `python -m launch.tpu ... up` per
eta; evaluate the finished runs afterwards with mode "local" and `train.enabled=False`.
Override values may use {out_dir}, {data_dir}, {run_dir}, {eta}, {tag} and {python}, filled in per run;
a relative out_dir is relative to the repository root.
"""
from __future__ import annotations

import csv
import datetime
import json
import math
import pathlib
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCORE_COLUMNS = ("held_in", "held_out", "general")
LOSS_COLUMNS = ("invalid_action_rate", "train_loss", "eval_loss")


class StageError(RuntimeError):
    pass


def eta_tag(eta: float) -> str:
    return f"eta_{float(eta):g}"


def check_config(c) -> list[float]:
    etas = [float(e) for e in c.etas]
    if not etas:
        raise ValueError("config.etas is empty")
    bad = [e for e in etas if not 0.0 <= e <= 1.0]
    if bad:
        raise ValueError(f"config.etas={tuple(c.etas)}: {bad} outside [0, 1] (eta is the agent-data probability)")
    if len(set(etas)) != len(etas):
        raise ValueError(f"config.etas={tuple(c.etas)}: repeated values")
    if c.mode not in ("local", "tpu"):
        raise ValueError(f"config.mode={c.mode!r}: must be 'local' or 'tpu'")
    for field in ("train.config",) + (("eval.agent.config",) if c.eval.agent.enabled else ()) + (
            ("eval.general.config",) if c.eval.general.enabled else ()):
        path = c
        for part in field.split("."):
            path = path[part]
        if not (ROOT / path).is_file() and not pathlib.Path(path).is_file():
            raise ValueError(f"config.{field}={path!r}: no such file")
    return etas


class Sweep:
    def __init__(self, config, out=None):
        self.c = config
        self.etas = check_config(config)
        self.out_dir = pathlib.Path(config.out_dir)
        if not self.out_dir.is_absolute():
            self.out_dir = ROOT / self.out_dir
        self.python = config.python or sys.executable
        self.log = out or sys.stdout

    # ---- paths and commands ----
    def data_dir(self) -> pathlib.Path:
        d = pathlib.Path(self.c.data.out_dir.format(out_dir=self.out_dir))
        return d if d.is_absolute() else ROOT / d

    def run_dir(self, eta: float) -> str:
        return self.c.run_dir_template.format(out_dir=self.out_dir, tag=eta_tag(eta), eta=eta)

    def _fill(self, values, eta: float | None = None) -> list[str]:
        fields = {"out_dir": self.out_dir, "data_dir": self.data_dir(), "python": self.python}
        if eta is not None:
            fields.update(eta=eta, tag=eta_tag(eta), run_dir=self.run_dir(eta))
        return [str(v).format(**fields) for v in values]

    def data_commands(self) -> list[list[str]]:
        """The data steps (strings with {python}, {out_dir}, {data_dir}), split like a shell would."""
        return [self._fill(shlex.split(step)) for step in self.c.data.steps]

    def train_command(self, eta: float, config_file: str | None = None) -> list[str]:
        t = self.c.train
        return [self.python, "-m", t.module, "--config", config_file or t.config, f"--config.{t.eta_key}={eta}",
                f"--config.run_dir={self.run_dir(eta)}", *self._fill(t.overrides, eta)]

    def write_run_config(self, eta: float, path: pathlib.Path) -> str:
        """A config file = train.config + train.settings. Settings may set any field type (the trainer's list
        fields, e.g. data paths, cannot be overridden on the command line)."""
        flat = _flatten(self.c.train.settings.to_dict()) if self.c.train.settings else {}
        fields = {"out_dir": self.out_dir, "data_dir": self.data_dir(), "python": self.python, "eta": eta,
                  "tag": eta_tag(eta), "run_dir": self.run_dir(eta)}
        flat = {k: _format_all(v, fields) for k, v in flat.items()}
        base = pathlib.Path(self.c.train.config)
        base = base if base.is_absolute() else ROOT / base
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RUN_CONFIG_TEMPLATE.format(base=json.dumps(str(base)), settings=json.dumps(flat, indent=1)))
        return str(path)

    def eval_commands(self, eta: float) -> dict[str, list[str]]:
        cmds, eval_dir = {}, str(self.out_dir / eta_tag(eta) / "eval")
        for name in ("agent", "general"):
            e = self.c.eval[name]
            if e.enabled:
                cmds[name] = [self.python, "-m", e.module, "--config", e.config, f"--config.model={self.run_dir(eta)}",
                              f"--config.out={eval_dir}", f"--config.label={eta_tag(eta)}" if name == "agent" else None,
                              *self._fill(e.overrides, eta)]
                cmds[name] = [x for x in cmds[name] if x is not None]
        b = self.c.eval.builtin_general
        if b.enabled:
            items, tok = self._fill([b.items_file, b.tokenizer], eta)
            cmds["general_builtin"] = [self.python, "-m", "agentlm.eval.word_games",
                                       f"--run_dir={self.run_dir(eta)}", f"--items={items}", f"--tokenizer={tok}",
                                       f"--out={eval_dir}/general_builtin.json",
                                       f"--max_new_tokens={b.max_new_tokens}"]
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

    def run_eta(self, eta: float) -> dict:
        tag = eta_tag(eta)
        eta_dir = self.out_dir / tag
        done = eta_dir / "done.json"
        if done.exists():
            print(f"[sweep] {tag}: finished earlier, skipping ({done})", file=self.log, flush=True)
            return json.loads(done.read_text())
        t0 = time.time()
        commands = {}
        if self.c.train.enabled:
            commands["train"] = self.train_command(eta, self.write_run_config(eta, eta_dir / "train_config.py"))
            self._run(f"{tag} train", commands["train"], eta_dir / "train.log")
        for name, cmd in self.eval_commands(eta).items():
            commands[name] = cmd
            self._run(f"{tag} eval {name}", cmd, eta_dir / f"eval_{name}.log")
        result = {"eta": eta, "tag": tag, "run_dir": self.run_dir(eta), **collect_scores(eta_dir / "eval"),
                  **collect_losses(self.run_dir(eta)), "seconds": round(time.time() - t0, 1),
                  "finished": datetime.datetime.now().isoformat(timespec="seconds"), "commands": commands}
        done.write_text(json.dumps(result, indent=2) + "\n")  # written last: its presence means "finished"
        return result

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
        lines = ["#!/usr/bin/env bash", "# one TPU training job per eta (python -m launch.sweep, mode=tpu)",
                 "set -euo pipefail"]
        for eta in self.etas:
            name = f"{t.tpu}-{eta_tag(eta).replace('_', '').replace('.', 'p')}"
            cmd = [self.python, "-m", "launch.tpu", "--tpu", name, "--zone", t.zone, "--type", t.type,
                   "--config", self.c.train.config, *(["--num_slices", str(t.num_slices)] if t.num_slices > 1 else []),
                   *list(t.extra_args), "up", "--", f"--config.{self.c.train.eta_key}={eta}",
                   f"--config.run_dir={self.run_dir(eta)}", *self._fill(self.c.train.overrides, eta)]
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
        self.prepare_data()
        results = []
        for i, eta in enumerate(self.etas):
            print(f"[sweep] run {i + 1}/{len(self.etas)}: eta={eta:g}", file=self.log, flush=True)
            results.append(self.run_eta(eta))
        write_results(results, self.out_dir, self.c.title)
        print(markdown_table(results, self.c.title), file=self.log)
        print(f"[sweep] results in {self.out_dir}/results.{{md,csv,json,png}}", file=self.log)
        return results


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


# ---- reading what the stages wrote ---------------------------------------------------------------------------------
def collect_scores(eval_dir: pathlib.Path) -> dict:
    """Overall held-in / held-out / general scores (paper normalisers) and per-task scores from the eval summaries."""
    out = {k: None for k in SCORE_COLUMNS}
    out.update(tasks={}, invalid_action_rate=None)
    agent = eval_dir / "agent" / "summary.json"
    if agent.exists():
        s = json.loads(agent.read_text())
        invalid = []
        for task, t in s.get("tasks", {}).items():
            out["tasks"][task] = t.get("score")
            if "invalid_action" in t.get("errors", {}):
                invalid.append(t["errors"]["invalid_action"])
        out["invalid_action_rate"] = sum(invalid) / len(invalid) if invalid else None
        for cat in ("held_in", "held_out"):
            out[cat] = (s.get("overall", {}).get(cat) or {}).get("overall")
    general = eval_dir / "general" / "summary.json"
    if general.exists():
        from agentlm.eval import paper

        s = json.loads(general.read_text())
        scores = {name: b.get("score") for name, b in s.get("benchmarks", {}).items()}
        out["tasks"].update(scores)
        out["general"] = paper.overall(paper.to_paper_names(scores), "general")["overall"]
    builtin = eval_dir / "general_builtin.json"
    if builtin.exists() and out["general"] is None:  # the tiny world's general ability: word games
        score = json.loads(builtin.read_text())["score"]
        out["tasks"]["word_games"] = score
        out["general"] = score / 100.0
    return out


def collect_losses(run_dir: str) -> dict:
    """Last logged train loss and eval loss from the trainer's metrics.jsonl (None when absent)."""
    out = {"train_loss": None, "eval_loss": None}
    path = pathlib.Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if "loss" in rec:
            out["train_loss"] = rec["loss"]
        if "eval_loss" in rec:
            out["eval_loss"] = rec["eval_loss"]
    return out


# ---- results ---------------------------------------------------------------------------------------------------------
def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}" if isinstance(x, float) \
        else str(x)


def _task_names(results: list[dict]) -> list[str]:
    return sorted({t for r in results for t in r.get("tasks", {})})


def markdown_table(results: list[dict], title: str) -> str:
    tasks = _task_names(results)
    head = ["eta", *SCORE_COLUMNS, *tasks, *LOSS_COLUMNS]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(results, key=lambda r: r["eta"]):
        row = [f"{r['eta']:g}", *(_fmt(r.get(k)) for k in SCORE_COLUMNS), *(_fmt(r["tasks"].get(t)) for t in tasks),
               *(_fmt(r.get(k)) for k in LOSS_COLUMNS)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "held-in / held-out / general: overall scores with the paper's per-task normalisers over the tasks "
                  "that ran (agentlm.eval.paper); with the built-in general eval, general = word-game exact-match "
                  "fraction. '-' = not evaluated. invalid_action_rate: share of agent episodes ending in an invalid "
                  "action. Losses: last logged train loss and the trainer's eval loss (on data.eval_paths)."]
    return "\n".join(lines)


def write_results(results: list[dict], out_dir: pathlib.Path, title: str) -> None:
    results = sorted(results, key=lambda r: r["eta"])
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown_table(results, title) + "\n")
    tasks = _task_names(results)
    with open(out_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["eta", *SCORE_COLUMNS, *tasks, *LOSS_COLUMNS])
        for r in results:
            w.writerow([r["eta"], *(r.get(k) for k in SCORE_COLUMNS), *(r["tasks"].get(t) for t in tasks),
                        *(r.get(k) for k in LOSS_COLUMNS)])
    plot(results, out_dir / "results.png", title)


def plot(results: list[dict], path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    etas = [r["eta"] for r in results]
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, marker in (("held_in", "held-in", "o"), ("held_out", "held-out", "s"), ("general", "general", "^")):
        ys = [r.get(key) for r in results]
        if any(y is not None for y in ys):
            ax.plot(etas, [math.nan if y is None else y for y in ys], marker=marker, label=label)
        else:
            ax.plot([], [], marker=marker, linestyle="none", label=f"{label} (not evaluated)")
    ax.set_xlabel("eta (probability of an agent example)")
    ax.set_ylabel("overall score (paper normalisers)")
    ax.set_title("scores")
    ax.legend()
    ax.grid(alpha=0.3)
    for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss")):
        ys = [r.get(key) for r in results]
        if any(y is not None for y in ys):
            ax_loss.plot(etas, [math.nan if y is None else y for y in ys], marker="o", label=label)
    ax_loss.set_xlabel("eta")
    ax_loss.set_title("losses")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
