r"""Agent evaluation: run a model on the held-in and held-out agent tasks, greedily, and score it like the paper.

    python -m agentlm.eval.agent --model http://localhost:8000/v1 --tasks db,os --out eval_runs/agentlm-7b \
        --config.db.data_file=data/dbbench/dev.jsonl --config.os.data_file=data/os_interaction/dev.json
    python -m agentlm.eval.agent --model runs/agentlm-7b --config.tokenizer=tokenizer.model --tasks db ...
    python -m agentlm.eval.agent --model oracle --tasks db ...   # each environment's oracle: a harness check

`--model` is an OpenAI-compatible base URL, a checkpoint directory (evaluated in this process), or "oracle".
For each task the environments' loop (agentlm.envs.loop) plays every item; transcripts (AgentInstruct rows plus
reward and outcome) go to <out>/agent/<task>/episodes.jsonl, and a rerun skips the items already there. The
summary (<out>/agent/summary.json) has per-task scores with each environment's metric (its registry entry), the
held-in / held-out overall scores with the paper's normalisers over the tasks that ran, and the error analysis:
the fraction of episodes ending in an invalid action, a repeated action, the round limit or the context limit.
"""
from __future__ import annotations

import json
import logging
import pathlib
import time

from absl import app, flags

from agentlm.envs import loop, registry
from agentlm.envs.base import Episode
from agentlm.envs.spec import MissingDependency, scored_episodes
from agentlm.eval import agent_config, cli, paper
from agentlm.eval.records import write_json

log = logging.getLogger(__name__)

ERROR_OUTCOMES = ("invalid_action", "repeated_action", "round_limit", "context_limit", "error")


def error_rates(episodes: list[Episode]) -> dict:
    """Fraction of scored episodes ending in each of the paper's elementary mistakes (and harness errors)."""
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    return {kind: sum(e.outcome.value == kind for e in scored) / n for kind in ERROR_OUTCOMES}


def section(config, task: str):
    """The task's config section (a default one for an environment registered after the config was built)."""
    if task not in config:
        agent_config.add_env_sections(config)
    return config[task]


def make_agent(config, task: str):
    """The agent for one task from config.model (URL, checkpoint directory or "oracle")."""
    spec = config.model
    if spec == "oracle":
        env = registry.get(task)
        return env.make_oracle(**env.options_from(section(config, task)))
    if spec.startswith(("http://", "https://")):
        from agentlm.envs.agents import OpenAIChatAgent

        name = config.model_name or _served_model(spec, config.api_key)
        return OpenAIChatAgent(spec, name, api_key=config.api_key or None, temperature=0.0,
                               max_tokens=config.max_tokens, system=config.system or None)
    if not pathlib.Path(spec).is_dir():
        raise ValueError(f"--model {spec!r}: not an http(s) endpoint URL, 'oracle', or an existing checkpoint "
                         "directory")
    return _local_agent(config)


_LOCAL: dict = {}


def _local_agent(config):
    """agentlm.infer's LocalModelAgent: its engine batches the concurrent episodes' requests on the device."""
    key = (config.model, config.tokenizer, config.template, config.max_tokens)
    if key not in _LOCAL:  # one checkpoint load serves every task of the run
        from agentlm.eval.lm import find_tokenizer
        from agentlm.infer.agent import LocalModelAgent

        _LOCAL[key] = LocalModelAgent.from_checkpoint(config.model, find_tokenizer(config.model, config.tokenizer),
                                                      template=config.template, max_new_tokens=config.max_tokens,
                                                      system=config.system or None)
    return _LOCAL[key]


def close_local_agents() -> None:
    """Stops the inference engines of in-process agents (their scheduler threads)."""
    while _LOCAL:
        _, agent = _LOCAL.popitem()
        agent.close()


def _served_model(base_url: str, api_key: str) -> str:
    import openai

    listed = [m.id for m in openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY").models.list().data]
    if not listed:
        raise RuntimeError(f"{base_url}/models lists no model; set config.model_name")
    return listed[0]


def model_label(config) -> str:
    return config.label or ("oracle" if config.model == "oracle" else config.model_name or config.model)


def load_items(task: str, config) -> list:
    spec, sec = registry.get(task), section(config, task)
    if not (sec.get("data_file") or spec.default_tasks):
        raise ValueError(f"agent task {task!r}: set config.{task}.data_file ({spec.task_formats or 'its item file'})")
    items = spec.tasks(sec.get("data_file", ""), sec.get("split") or None)
    limit = int(sec.get("limit") or 0)
    return items[:limit] if limit else items


class NotRun(Exception):
    """A task whose items or dependencies are not here (e.g. WebShop without its official data files): reported
    as "not run" with the reason, never as a score of 0 and never as a crash of the whole evaluation."""


def not_run_summary(task: str, reason: str) -> dict:
    spec = registry.get(task)
    return {"task": task, "paper_task": spec.paper_task or task, "metric": spec.metric.name, "n": 0, "score": None,
            "skipped": reason}


def evaluate_task(task: str, config, out_dir: pathlib.Path, agent=None) -> dict:
    """Plays (or resumes) every item of one task and returns its summary; raises NotRun when its data or a
    dependency is missing."""
    spec, sec = registry.get(task), section(config, task)
    source = str(sec.get("data_file") or "").split("::")[0]
    if source and ":" not in source and not pathlib.Path(source).exists():  # a path (not builtin:...) that is absent
        raise NotRun(f"{source} does not exist ({spec.task_formats or 'its item file'})")
    try:
        spec.require()
        tasks = load_items(task, config)
    except (FileNotFoundError, MissingDependency) as e:
        raise NotRun(str(e)) from e
    except ValueError as e:
        if sec.get("data_file") or spec.default_tasks:
            raise  # a malformed item file is an error to fix, not a missing one
        raise NotRun(str(e)) from e
    max_rounds = sec.get("max_rounds") or None
    env_factory = spec.env_factory(max_rounds=max_rounds, **spec.options_from(sec))
    agent = agent or make_agent(config, task)
    loop_config = loop.LoopConfig(max_rounds=max_rounds, context_tokens=config.context_tokens or None)
    task_dir = out_dir / task
    start = time.time()
    episodes = loop.run_tasks(env_factory, agent, tasks, loop_config, workers=config.workers,
                              out=task_dir / "episodes.jsonl", resume=True, progress=True)
    scored = spec.score(episodes, tasks)
    outcomes: dict[str, int] = {}
    for e in episodes:
        outcomes[e.outcome.value] = outcomes.get(e.outcome.value, 0) + 1
    summary = {"task": task, "paper_task": spec.paper_task or task, "metric": spec.metric.name, "n": len(episodes),
               **scored, "errors": error_rates(episodes), "outcomes": outcomes,
               "mean_rounds": sum(e.rounds for e in episodes) / len(episodes) if episodes else 0.0,
               "seconds": round(time.time() - start, 1)}
    if spec.note:
        summary["note"] = spec.note
    write_json(task_dir / "summary.json", summary)
    return summary


def parse_tasks(spec: str) -> list[str]:
    names = [t.strip() for t in spec.split(",") if t.strip()]
    for name in names:
        registry.get(name)
    if not names:
        raise ValueError("no agent task given (--tasks db,os,...)")
    return names


def run(config) -> dict:
    if not config.model:
        raise ValueError("set --model (endpoint URL, checkpoint directory or 'oracle')")
    registry.register_modules(config.get("env_modules") or ())
    if config.model.startswith(("http://", "https://")) and not config.model_name:
        config.model_name = _served_model(config.model, config.api_key)  # also names the model in reports
    out_dir = pathlib.Path(config.out) / "agent"
    previous = {}
    if (out_dir / "summary.json").exists():  # tasks evaluated by earlier invocations stay in the summary
        previous = json.loads((out_dir / "summary.json").read_text()).get("tasks", {})
    results = dict(previous)
    try:
        for task in parse_tasks(config.tasks):
            try:
                results[task] = evaluate_task(task, config, out_dir)
            except NotRun as e:
                log.warning("%s: not run: %s", task, e)
                results[task] = not_run_summary(task, str(e))
                continue
            log.info("%s: %.2f over %d episodes", task, results[task]["score"], results[task]["n"])
    finally:
        close_local_agents()
    scores = paper.to_paper_names({t: s["score"] for t, s in results.items() if s.get("score") is not None})
    summary = {"model": model_label(config), "tasks": results,
               "overall": {c: paper.overall(scores, c) for c in ("held_in", "held_out")}}
    write_json(out_dir / "summary.json", summary)
    return summary


def _define_flags():
    # Defined only when run as a program, so importing this module registers no global flags.
    config = cli.define_config(agent_config.__file__)
    flags.DEFINE_string("model", None, "endpoint base URL (.../v1), checkpoint directory, or 'oracle'")
    flags.DEFINE_string("tasks", None, "comma-separated registered environments (default: config.tasks)")
    flags.DEFINE_string("out", None, "output directory (transcripts, summary, report)")
    return config


def main(config_flag):
    config = config_flag.value
    cli.apply_short_flags(config, {"model": "model", "tasks": "tasks", "out": "out"})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    summary = run(config)
    from agentlm.eval import report

    paths = report.write_model_report(config.out)
    for task, s in summary["tasks"].items():
        if s.get("skipped"):
            print(f"{task:10s} not run: {s['skipped']}")
            continue
        print(f"{task:10s} {s['score']:7.2f}  ({s['metric']}, n={s['n']})")
    for cat, o in summary["overall"].items():
        if o["overall"] is not None:
            print(f"{cat} overall {o['overall']:.2f} over {', '.join(o['tasks'])}")
    print(f"report: {paths['markdown']}")


if __name__ == "__main__":
    _config_flag = _define_flags()
    app.run(lambda argv: main(_config_flag) if len(argv) == 1 else
            app.usage(shorthelp=True, detailed_error=f"unexpected arguments {argv[1:]}", exitcode=2))
