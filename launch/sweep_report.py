"""Reading what a sweep's stages wrote, and the sweep's results: one table per run, one table per eta with the
spread over seeds, a before/after table, and the plot of held-in / held-out / general against eta.

Two scoring modes, chosen by the sweep config:
- paper: one agent evaluation per run (agentlm.eval.agent over registered tasks); held-in / held-out are the
  paper's normalised overall scores (agentlm.eval.paper) over the tasks that ran;
- suites: one agent evaluation per task family (the toy world: data_pipeline.sources.toy_tasks); held-in /
  held-out are the mean success rate (percent) over the held-in / held-out families, and general is the
  word-game exact-match rate (percent), so the three columns share one unit.
"""
from __future__ import annotations

import csv
import json
import math
import pathlib
import statistics

from agentlm import storage

SCORE_COLUMNS = ("held_in", "held_out", "general")
LOSS_COLUMNS = ("invalid_action_rate", "train_loss", "eval_loss")


def _agent_summary(path: pathlib.Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _invalid_rate(summaries: list[dict]) -> float | None:
    rates = [t["errors"]["invalid_action"] for s in summaries for t in s.get("tasks", {}).values()
             if "invalid_action" in t.get("errors", {})]
    return sum(rates) / len(rates) if rates else None


def collect_scores(eval_dir: pathlib.Path, suites: dict | None = None) -> dict:
    """Held-in / held-out / general scores and per-task (or per-suite) scores from the eval summaries.
    `suites`: {name: {"task", "group"}} for the suites mode; None for the paper mode."""
    out = {k: None for k in SCORE_COLUMNS}
    out.update(tasks={}, invalid_action_rate=None, units="percent" if suites else "paper")
    summaries = []
    if suites:
        groups: dict[str, list[float]] = {"held_in": [], "held_out": []}
        for name, suite in suites.items():
            s = _agent_summary(eval_dir / name / "agent" / "summary.json")
            if s is None or suite["task"] not in s.get("tasks", {}):
                continue
            summaries.append(s)
            score = s["tasks"][suite["task"]]["score"]
            out["tasks"][name] = score
            groups[suite["group"]].append(score)
        for group, scores in groups.items():
            out[group] = sum(scores) / len(scores) if scores else None
    else:
        s = _agent_summary(eval_dir / "agent" / "summary.json")
        if s is not None:
            summaries.append(s)
            out["tasks"].update({task: t.get("score") for task, t in s.get("tasks", {}).items()})
            for cat in ("held_in", "held_out"):
                out[cat] = (s.get("overall", {}).get(cat) or {}).get("overall")
    out["invalid_action_rate"] = _invalid_rate(summaries)
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
        out["general"] = score if suites else score / 100.0
    return out


def collect_losses(run_dir: str) -> dict:
    """Last logged train loss and eval loss from the trainer's metrics.jsonl (None when absent)."""
    out = {"train_loss": None, "eval_loss": None}
    path = storage.path(run_dir) / "metrics.jsonl"  # a run directory may be in a bucket (gs://)
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


# ---- tables ---------------------------------------------------------------------------------------------------------
def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}" if isinstance(x, float) \
        else str(x)


def _task_names(results: list[dict]) -> list[str]:
    names: list[str] = []
    for r in results:  # the config's order (held-in suites first), not alphabetical
        names += [t for t in r.get("tasks", {}) if t not in names]
    return names


def _units_note(results: list[dict]) -> str:
    if any(r.get("units") == "percent" for r in results):
        return ("held-in / held-out: mean success rate (%) over the held-in / held-out task families, each played "
                "through agentlm.eval.agent (greedy) with the environment's own metric; general: exact-match rate "
                "(%) on the held-out word games.")
    return ("held-in / held-out / general: overall scores with the paper's per-task normalisers over the tasks that "
            "ran (agentlm.eval.paper); with the built-in general eval, general = word-game exact-match fraction.")


def _seed_label(r: dict) -> str:
    return "-" if r.get("seed") is None else str(r["seed"])


def markdown_table(results: list[dict], title: str) -> str:
    """One row per run (eta, seed)."""
    tasks = _task_names(results)
    head = ["eta", "seed", *SCORE_COLUMNS, *tasks, *LOSS_COLUMNS]
    lines = [f"## {title}: every run", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(results, key=lambda r: (r["eta"], r.get("seed") or 0)):
        row = [f"{r['eta']:g}", _seed_label(r), *(_fmt(r.get(k)) for k in SCORE_COLUMNS),
               *(_fmt(r["tasks"].get(t)) for t in tasks), *(_fmt(r.get(k)) for k in LOSS_COLUMNS)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _units_note(results) + " '-' = not evaluated. invalid_action_rate: share of agent episodes ending "
              "in an invalid action. Losses: last logged train loss and the trainer's eval loss (data.eval_paths)."]
    return "\n".join(lines)


def aggregate(results: list[dict]) -> list[dict]:
    """Per eta: mean and sample standard deviation over seeds of every score, per-task score and loss."""
    by_eta: dict[float, list[dict]] = {}
    for r in results:
        by_eta.setdefault(r["eta"], []).append(r)
    rows = []
    for eta in sorted(by_eta):
        runs = by_eta[eta]
        row = {"eta": eta, "seeds": sorted(_seed_label(r) for r in runs), "n": len(runs), "mean": {}, "std": {}}
        values = {k: [r.get(k) for r in runs] for k in (*SCORE_COLUMNS, *LOSS_COLUMNS)}
        values.update({f"task:{t}": [r["tasks"].get(t) for r in runs] for t in _task_names(runs)})
        for key, xs in values.items():
            xs = [x for x in xs if x is not None]
            row["mean"][key] = statistics.fmean(xs) if xs else None
            row["std"][key] = statistics.stdev(xs) if len(xs) > 1 else (0.0 if xs else None)
        rows.append(row)
    return rows


def _pm(row: dict, key: str) -> str:
    m, s = row["mean"].get(key), row["std"].get(key)
    if m is None:
        return "-"
    digits = 1 if abs(m) >= 10 else 2 if abs(m) >= 1 else 3  # percent scores vs normalised overalls and losses
    return f"{m:.{digits}f} ± {s:.{digits}f}" if row["n"] > 1 else f"{m:.{digits}f}"


def summary_table(results: list[dict], title: str) -> str:
    """One row per eta: mean ± sample standard deviation over seeds."""
    rows = aggregate(results)
    tasks = _task_names(results)
    head = ["eta", "seeds", *SCORE_COLUMNS, *tasks]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join([f"{row['eta']:g}", str(row["n"]), *(_pm(row, k) for k in SCORE_COLUMNS),
                                        *(_pm(row, f"task:{t}") for t in tasks)]) + " |")
    lines += ["", _units_note(results) + " Cells: mean ± sample standard deviation over the seeds (one seed: the "
              "value). Per-run rows: results_runs.md."]
    return "\n".join(lines)


def before_after_table(results: list[dict], before: float, after: float, title: str) -> str:
    """The untuned model (eta = `before`) against the tuned one (eta = `after`), column by column."""
    rows = {row["eta"]: row for row in aggregate(results)}
    missing = [e for e in (before, after) if e not in rows]
    if missing:
        raise ValueError(f"before/after table: no finished run for eta={missing}")
    tasks = _task_names(results)
    lines = [f"## {title}: before / after agent tuning", "",
             f"| score | untuned (eta = {before:g}) | tuned (eta = {after:g}) |", "|---|---|---|"]
    for key in (*SCORE_COLUMNS, *(f"task:{t}" for t in tasks)):
        label = key.split(":", 1)[-1]
        lines.append(f"| {label} | {_pm(rows[before], key)} | {_pm(rows[after], key)} |")
    lines += ["", _units_note(results)]
    return "\n".join(lines)


def write_results(results: list[dict], out_dir: pathlib.Path, title: str) -> None:
    results = sorted(results, key=lambda r: (r["eta"], r.get("seed") or 0))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(summary_table(results, title) + "\n")
    (out_dir / "results_runs.md").write_text(markdown_table(results, title) + "\n")
    tasks = _task_names(results)
    with open(out_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["eta", "seed", *SCORE_COLUMNS, *tasks, *LOSS_COLUMNS])
        for r in results:
            w.writerow([r["eta"], r.get("seed"), *(r.get(k) for k in SCORE_COLUMNS),
                        *(r["tasks"].get(t) for t in tasks), *(r.get(k) for k in LOSS_COLUMNS)])
    plot(results, out_dir / "results.png", title)


def plot(results: list[dict], path: pathlib.Path, title: str) -> None:
    """Scores against eta (mean over seeds, bars = standard deviation) and the losses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = aggregate(results)
    etas = [row["eta"] for row in rows]
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))

    def series(key):
        ms = [row["mean"].get(key) for row in rows]
        ss = [row["std"].get(key) for row in rows]
        return [math.nan if m is None else m for m in ms], [0.0 if s is None else s for s in ss]

    for key, label, marker in (("held_in", "held-in", "o"), ("held_out", "held-out", "s"), ("general", "general", "^")):
        ms, ss = series(key)
        if any(not math.isnan(m) for m in ms):
            ax.errorbar(etas, ms, yerr=ss, marker=marker, capsize=3, label=label)
        else:
            ax.plot([], [], marker=marker, linestyle="none", label=f"{label} (not evaluated)")
    percent = any(r.get("units") == "percent" for r in results)
    ax.set_xlabel("eta (probability of an agent example)")
    ax.set_ylabel("score (%)" if percent else "overall score (paper normalisers)")
    n_seeds = max((row["n"] for row in rows), default=1)
    ax.set_title("scores" + (f" (mean ± std over {n_seeds} seeds)" if n_seeds > 1 else ""))
    ax.legend()
    ax.grid(alpha=0.3)
    for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss")):
        ms, ss = series(key)
        if any(not math.isnan(m) for m in ms):
            ax_loss.errorbar(etas, ms, yerr=ss, marker="o", capsize=3, label=label)
    ax_loss.set_xlabel("eta")
    ax_loss.set_title("losses")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
