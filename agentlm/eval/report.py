"""Reports: one per evaluated model (markdown + JSON + plot) and a comparison across models with the paper's rows.

    python -m agentlm.eval.report model eval_runs/agentlm-7b
    python -m agentlm.eval.report compare eval_runs/base eval_runs/agentlm-7b --out eval_runs/comparison

A model's run directory holds agent/summary.json (agentlm.eval.agent) and/or general/summary.json
(agentlm.eval.general); whichever exist are reported. Scores are on the paper's scales (percent; MT-Bench 1-10),
and overall scores use the paper's normalisers (agentlm.eval.paper). When a category was only partly run, its
overall is the mean over the tasks that ran and the report names them; household (TextWorld) stands in for ALFWorld.
"""
from __future__ import annotations

import argparse
import json
import pathlib
from typing import Sequence

from agentlm.eval import paper
from agentlm.eval.records import write_json

ERROR_KINDS = ("invalid_action", "repeated_action", "round_limit", "context_limit", "error")
PAPER_REFERENCE = ("Llama-2-7B-chat", "AgentLM-7B", "AgentLM-70B", "GPT-4")
_CATEGORY_TITLE = {"held_in": "held-in overall", "held_out": "held-out overall", "general": "general overall"}


def _load(path: pathlib.Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def collect(run_dir: str | pathlib.Path) -> dict:
    """Everything known about one model's run: per-task scores (our keys), overalls, error analysis."""
    run_dir = pathlib.Path(run_dir)
    agent = _load(run_dir / "agent" / "summary.json")
    general = _load(run_dir / "general" / "summary.json")
    if agent is None and general is None:
        raise FileNotFoundError(f"{run_dir}: neither agent/summary.json nor general/summary.json exists")
    tasks, errors, details, skipped = {}, {}, {}, {}
    for key, s in ((agent or {}).get("tasks") or {}).items():
        if s.get("skipped"):  # its data or a dependency was missing: named with the reason, never scored
            skipped[s.get("paper_task") or key] = f"not run: {s['skipped']}"
            continue
        tasks[key] = {"score": s["score"], "n": s.get("scored", s.get("n")), "metric": s.get("metric", "")}
        errors[key] = s.get("errors", {})
        details[key] = {k: v for k, v in s.items() if k not in _SUMMARY_FIELDS}
    for key, s in ((general or {}).get("benchmarks") or {}).items():
        tasks[key] = {"score": s["score"], "n": s.get("n"), "metric": _GENERAL_METRIC.get(key, "")}
    name = (agent or {}).get("model") or (general or {}).get("model") or run_dir.name
    scores = paper.to_paper_names({k: v["score"] for k, v in tasks.items()})
    ran = set(scores)
    # The paper's agent tasks missing from a category that ran, those asked for whose data was missing, and the
    # ones this project cannot run at all.
    reasons = {**skipped, **NOT_RUN_REASONS}
    not_run = {t: reasons.get(t, "not evaluated in this run") for cat in ("held_in", "held_out")
               for t in paper.CATEGORIES[cat] if t not in ran and (ran & set(paper.CATEGORIES[cat])
                                                                   or t in reasons)} if agent else {}
    return {"model": name, "run_dir": str(run_dir), "tasks": tasks, "errors": errors, "details": details,
            "not_run": not_run, "overall": paper.overalls(scores),
            "stand_ins": {k: v for k, v in paper.STAND_INS.items() if k in tasks}}


# Agent tasks of the paper this project cannot run at all, and why (shown as NOT RUN rows, never dropped).
NOT_RUN_REASONS = {"WebArena": "not run: needs six self-hosted web applications (shopping, CMS, Reddit, GitLab, "
                               "maps, wiki) that this project does not provide"}
# An agent task summary's standard fields; the rest (per-level F1, per-set scores, the judge's counters) are details.
_SUMMARY_FIELDS = {"task", "paper_task", "metric", "n", "score", "scored", "unscorable", "errors", "outcomes",
                   "mean_rounds", "seconds", "note"}

_GENERAL_METRIC = {"mmlu": "accuracy, 5-shot", "gsm8k": "exact match, 8-shot CoT", "humaneval": "pass@1, greedy",
                   "mt_bench": "judge rating 1-10"}


def _fmt(value, digits=1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _detail(value) -> str:
    """A detail value in one line: numbers to two decimals, mappings as {key: value, ...}."""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_detail(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_detail(v) for v in value) + "]"
    return str(value)


def _overall_note(o: dict) -> str:
    if o["overall"] is None:
        return "not run"
    return "all tasks" if o["complete"] else "over " + ", ".join(o["tasks"]) + " only"


def model_markdown(r: dict, reference: Sequence[str] = PAPER_REFERENCE) -> str:
    rows = [f"# Evaluation report: {r['model']}", "", f"Run directory: `{r['run_dir']}`", "",
            "| task (paper name) | metric | n | score | normaliser | " + " | ".join(f"paper {m}" for m in reference)
            + " |", "|---|---|---|---|---|" + "---|" * len(reference)]
    for key, t in r["tasks"].items():
        pname = paper.TASK_TO_PAPER[key]
        ref = [paper.paper_row(m).get(pname) for m in reference]  # None (shown as —) for non-paper tasks
        rows.append(f"| {key} ({pname}) | {t['metric']} | {t['n']} | {_fmt(t['score'], 2)} | "
                    f"{_fmt(paper.NORMALISERS.get(pname), 2)} | " + " | ".join(_fmt(v, 2) for v in ref) + " |")
    for pname, why in r.get("not_run", {}).items():
        ref = [paper.paper_row(m).get(pname) for m in reference]
        rows.append(f"| NOT RUN ({pname}) | {why} | 0 | — | {_fmt(paper.NORMALISERS[pname], 2)} | "
                    + " | ".join(_fmt(v, 2) for v in ref) + " |")
    for cat, title in _CATEGORY_TITLE.items():
        o = r["overall"][cat]
        ref = [paper.PUBLISHED_OVERALLS[cat][paper.MODELS.index(m)] for m in reference]
        rows.append(f"| **{title}** | {_overall_note(o)} | | **{_fmt(o['overall'], 2)}** | | "
                    + " | ".join(_fmt(v, 2) for v in ref) + " |")
        if o["overall"] is not None and not o["complete"]:  # the paper's models over the same tasks
            same = [paper.overall({t: paper.paper_row(m)[t] for t in o["tasks"]}, cat)["overall"] for m in reference]
            rows.append(f"| {title}, paper over the same tasks | {', '.join(o['tasks'])} | | | | "
                        + " | ".join(_fmt(v, 2) for v in same) + " |")
    rows += ["", "Overall = mean over the category's tasks that ran of score / the paper's normaliser. The paper's "
             "overalls average all six held-in / held-out tasks (four general); compare a partial overall with the "
             "'paper over the same tasks' row beneath it."]
    for key, why in r["stand_ins"].items():
        rows.append(f"Note: {why}.")
    detailed = {k: d for k, d in r.get("details", {}).items() if d}
    if detailed:
        rows += ["", "## Details", ""]
        for key, d in detailed.items():
            rows.append(f"- **{key}**: " + "; ".join(f"{k} = {_detail(v)}" for k, v in d.items()))
    if r["errors"]:
        rows += ["", "## Error analysis (fraction of scored episodes)", "",
                 "| task | " + " | ".join(ERROR_KINDS) + " |", "|---|" + "---|" * len(ERROR_KINDS)]
        for key, e in r["errors"].items():
            rows.append(f"| {key} | " + " | ".join(_fmt(e.get(k), 3) for k in ERROR_KINDS) + " |")
    return "\n".join(rows) + "\n"


def _plot(path: pathlib.Path, title: str, series: dict[str, dict[str, float]], task_order: list[str]) -> None:
    """Grouped bars of score / normaliser per paper task, one bar per model (comparable across scales)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(task_order) + 2), 4.2))
    width = 0.8 / max(1, len(series))
    for k, (label, scores) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(task_order))]
        ys = [scores.get(t, float("nan")) / paper.NORMALISERS[t] for t in task_order]
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(task_order)))
    ax.set_xticklabels(task_order, rotation=30, ha="right")
    ax.set_ylabel("score / paper normaliser")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_model_report(run_dir: str | pathlib.Path, reference: Sequence[str] = PAPER_REFERENCE) -> dict:
    """Writes report.md, report.json and report.png into the run directory; returns their paths."""
    run_dir = pathlib.Path(run_dir)
    r = collect(run_dir)
    paths = {"markdown": run_dir / "report.md", "json": run_dir / "report.json", "plot": run_dir / "report.png"}
    write_json(paths["json"], {**r, "paper_reference": {m: paper.paper_row(m) for m in reference}})
    paths["markdown"].write_text(model_markdown(r, reference))
    ours = paper.to_paper_names({k: v["score"] for k, v in r["tasks"].items()})
    order = [t for cat in paper.CATEGORIES.values() for t in cat if t in ours]
    _plot(paths["plot"], f"{r['model']} vs the paper", {r["model"]: ours, **{m: paper.paper_row(m) for m in
                                                                              reference}}, order)
    return {k: str(v) for k, v in paths.items()}


def comparison(run_dirs: Sequence[str | pathlib.Path], paper_models: Sequence[str] = paper.MODELS) -> dict:
    """Per-task scores and overalls of several runs next to the paper's rows."""
    runs = [collect(d) for d in run_dirs]
    labels = _unique([r["model"] for r in runs])
    columns = {}
    for label, r in zip(labels, runs):
        columns[label] = {"scores": paper.to_paper_names({k: v["score"] for k, v in r["tasks"].items()}),
                          "overall": {c: o["overall"] for c, o in r["overall"].items()},
                          "overall_tasks": {c: o["tasks"] for c, o in r["overall"].items()}, "source": r["run_dir"]}
    for m in paper_models:
        columns[f"paper: {m}"] = {"scores": paper.paper_row(m),
                                  "overall": {c: v[paper.MODELS.index(m)] for c, v in paper.PUBLISHED_OVERALLS.items()},
                                  "source": "AgentTuning paper"}
    ran = {t for label in labels for t in columns[label]["scores"]}
    tasks = [t for cat in paper.CATEGORIES.values() for t in cat if t in ran]
    for m in paper_models:  # the paper's models over exactly the tasks that ran: the like-for-like overall
        row = paper.paper_row(m)
        columns[f"paper: {m}"]["overall_same_tasks"] = {
            c: paper.overall({t: row[t] for t in tasks if t in ts}, c)["overall"]
            for c, ts in paper.CATEGORIES.items()}
    return {"tasks": tasks, "columns": columns}


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def comparison_markdown(c: dict) -> str:
    cols = list(c["columns"])
    rows = ["# Model comparison", "", "| task | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for t in c["tasks"]:
        rows.append(f"| {t} | " + " | ".join(_fmt(c["columns"][m]["scores"].get(t), 2) for m in cols) + " |")
    for cat, title in _CATEGORY_TITLE.items():
        rows.append(f"| **{title}** | " + " | ".join(_fmt(c["columns"][m]["overall"][cat], 2) for m in cols) + " |")
        same = [c["columns"][m].get("overall_same_tasks", {}).get(cat) if m.startswith("paper: ")
                else c["columns"][m]["overall"][cat] for m in cols]
        if any(v is not None for v in same):
            rows.append(f"| {title}, over the tasks run | " + " | ".join(_fmt(v, 2) for v in same) + " |")
    rows += ["", "Bold overalls: ours average the tasks that ran (listed in comparison.json), the paper's all of a "
             "category's tasks. The rows below them put the paper's models on the tasks that ran, like for like. "
             "Household (TextWorld) is compared against ALFWorld."]
    return "\n".join(rows) + "\n"


def write_comparison(run_dirs: Sequence[str | pathlib.Path], out_dir: str | pathlib.Path,
                     paper_models: Sequence[str] = paper.MODELS) -> dict:
    out_dir = pathlib.Path(out_dir)
    c = comparison(run_dirs, paper_models)
    paths = {"markdown": out_dir / "comparison.md", "json": out_dir / "comparison.json",
             "plot": out_dir / "comparison.png"}
    write_json(paths["json"], c)
    paths["markdown"].parent.mkdir(parents=True, exist_ok=True)
    paths["markdown"].write_text(comparison_markdown(c))
    _plot(paths["plot"], "models vs the paper", {m: v["scores"] for m, v in c["columns"].items()}, c["tasks"])
    return {k: str(v) for k, v in paths.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentlm.eval.report", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_model = sub.add_parser("model", help="report of one run directory (report.md/json/png inside it)")
    p_model.add_argument("run_dir")
    p_cmp = sub.add_parser("compare", help="comparison of several run directories with the paper's rows")
    p_cmp.add_argument("run_dirs", nargs="+")
    p_cmp.add_argument("--out", required=True, help="directory for comparison.md/json/png")
    p_cmp.add_argument("--paper_models", default=",".join(paper.MODELS),
                       help="comma-separated paper columns to include (default: all)")
    args = parser.parse_args(argv)
    if args.command == "model":
        paths = write_model_report(args.run_dir)
    else:
        models = [m.strip() for m in args.paper_models.split(",") if m.strip()]
        paths = write_comparison(args.run_dirs, args.out, models)
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
