"""Run an agent over an environment's tasks and report the score and how episodes ended.

    python -m agentlm.envs.run --env db --tasks ../shared/data/agentbench/dbbench/dev.jsonl --agent oracle
    python -m agentlm.envs.run --env os --tasks ../shared/data/agentbench/os_interaction/dev.json --agent oracle
    python -m agentlm.envs.run --env household --tasks builtin:7 --agent oracle --out runs/household
    python -m agentlm.envs.run --env sciworld --tasks builtin:dev:1 --agent openai --base-url http://localhost:8000/v1 \\
        --model agentlm-7b --prompt-file scaffold.json
    python -m agentlm.envs.run --env miniwob --tasks builtin:2 --agent oracle
    python -m agentlm.envs.run --env db --tasks dev.jsonl --option backend=mariadb --option mode=sql
    python -m agentlm.envs.run --env-module my_pkg.my_env --env my_env --agent oracle

Every environment of agentlm.envs.registry can run (`--list` shows them with their options); `--option KEY=VALUE`
sets one of the environment's (or its oracle's) options, typed like the declared default. --tasks defaults to the
environment's own item source where it has one (generated games).

--agent is `oracle`, `openai` (an OpenAI-compatible endpoint), or MODULE:ATTR naming a zero-argument factory of an
object with `act(conversation, task) -> str` (e.g. a local model wrapper). Transcripts go to OUT/<env>.jsonl
(AgentInstruct rows plus reward and outcome) with OUT/summary.json beside them.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import sys

from agentlm.envs import registry
from agentlm.envs.agents import OpenAIChatAgent
from agentlm.envs.loop import LoopConfig, run_tasks, summarize
from agentlm.envs.spec import EnvSpec, MissingDependency


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default=None, help="a registered environment (see --list)")
    ap.add_argument("--list", action="store_true", help="list the registered environments and their options")
    ap.add_argument("--env-module", action="append", default=[],
                    help="module (or module:attr) holding an environment's SPEC to register first; repeatable")
    ap.add_argument("--tasks", default="", help="task file, or builtin:... for generated environments")
    ap.add_argument("--split", default=None, help="split name given to the loaded items (default: the env's)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment or oracle option; repeatable")
    ap.add_argument("--agent", default="oracle", help="oracle | openai | MODULE:ATTR")
    ap.add_argument("--out", default=None, help="directory for transcripts and summary")
    ap.add_argument("--workers", type=int, default=1, help="episodes run at once (one environment each)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    ap.add_argument("--resume", action="store_true", help="keep finished episodes already in OUT")
    ap.add_argument("--max-rounds", type=int, default=None, help="default: the environment's own limit")
    ap.add_argument("--context-tokens", type=int, default=None, help="end episodes whose conversation exceeds this")
    ap.add_argument("--repeat-limit", type=int, default=3)
    # shorthands for common options (each is an --option of the environments that have it)
    ap.add_argument("--prompt-file", default=None,
                    help="= --option prompt_file=...: scaffold JSON or an AgentInstruct .parquet/.jsonl[::ROW]")
    ap.add_argument("--backend", default=None, choices=["sqlite", "mariadb"], help="db: = --option backend=...")
    ap.add_argument("--mariadb-dir", default=None, help="db --backend mariadb: server data directory")
    ap.add_argument("--scripts-dir", default=None, help="os: = --option scripts_dir=...")
    ap.add_argument("--oracle-mode", default=None, choices=["label", "sql"], help="db oracle: = --option mode=...")
    ap.add_argument("--strict-tables", action="store_const", const=True, default=None,
                    help="db: = --option strict_tables=true (refuse items whose table AgentBench leaves empty)")
    # openai agent
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--system", default=None, help="system prompt for the chat endpoint")
    return ap


SHORTHANDS = {"prompt_file": "prompt_file", "backend": "backend", "scripts_dir": "scripts_dir", "oracle_mode": "mode",
              "strict_tables": "strict_tables"}


def options(args, spec: EnvSpec) -> dict:
    """The environment and oracle options from --option and the shorthand flags."""
    out = {}
    for flag, key in SHORTHANDS.items():
        if getattr(args, flag) is not None:
            out[key] = getattr(args, flag)
    if args.mariadb_dir:
        out["backend_options"] = {"datadir": args.mariadb_dir}
    for item in args.option:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--option {item!r}: expected KEY=VALUE")
        out[key.strip()] = spec.parse_option(key.strip(), text)
    return out


def make_agent(args, spec: EnvSpec, opts: dict):
    if args.agent == "oracle":
        return spec.make_oracle(**opts)
    if args.agent == "openai":
        if not args.model:
            raise SystemExit("--agent openai needs --model (and --base-url unless it is OpenAI itself)")
        return OpenAIChatAgent(args.base_url, args.model, api_key=os.environ.get(args.api_key_env),
                               temperature=args.temperature, max_tokens=args.max_tokens, system=args.system)
    module, _, attr = args.agent.partition(":")
    if not attr:
        raise SystemExit(f"--agent {args.agent!r}: expected oracle, openai or MODULE:ATTR")
    return getattr(importlib.import_module(module), attr)


def list_envs() -> str:
    lines = []
    for name, spec in sorted(registry.specs().items()):
        problem = spec.problem()
        unavailable = f"  [unavailable: {problem}]" if problem else ""
        lines.append(f"{name:<12} {spec.group:<10} {spec.metric.name}{unavailable}")
        opts = {**spec.oracle_options, **spec.options}
        if opts:
            lines.append("    options: " + ", ".join(f"{k}={v!r}" for k, v in opts.items()))
        if spec.task_formats:
            lines.append(f"    tasks: {spec.task_formats}" + (f" (default {spec.default_tasks})" if spec.default_tasks
                                                            else ""))
    return "\n".join(lines)


def format_table(env: str, summary: dict, scores: dict) -> str:
    lines = [f"{env}: {summary['episodes']} episodes ({summary['scored']} scored, {summary['unscorable']} unscorable)"]
    for k, v in scores.items():
        lines.append(f"  {k:<28} {v:.4f}" if isinstance(v, float) else f"  {k:<28} {v}")
    lines.append(f"  {'mean reward':<28} {summary['mean_reward']:.4f}")
    lines.append(f"  {'success rate':<28} {summary['success_rate']:.4f}")
    lines.append(f"  {'mean rounds':<28} {summary['mean_rounds']:.2f}")
    lines.append("  outcomes:")
    for k, v in summary["outcomes"].items():
        lines.append(f"    {k:<26} {v}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        registry.register_modules(args.env_module)
        if args.list:
            print(list_envs())
            return 0
        if not args.env:
            raise ValueError("give --env (see --list)")
        spec = registry.get(args.env)
        opts = options(args, spec)
        tasks = spec.tasks(args.tasks, args.split)
        env_factory = spec.env_factory(max_rounds=args.max_rounds, **opts)
        agent = make_agent(args, spec, opts)
    except (ValueError, MissingDependency) as e:
        raise SystemExit(f"error: {e}") from None
    if args.limit:
        tasks = tasks[: args.limit]
    config = LoopConfig(max_rounds=args.max_rounds, context_tokens=args.context_tokens,
                        repeat_limit=args.repeat_limit or None)
    out_dir = pathlib.Path(args.out) if args.out else None
    episodes = run_tasks(env_factory, agent, tasks, config, workers=args.workers,
                         out=out_dir / f"{args.env}.jsonl" if out_dir else None, resume=args.resume)
    if hasattr(agent, "close"):
        agent.close()
    summary = summarize(episodes)
    scores = spec.score(episodes, tasks)
    print(format_table(args.env, summary, scores))
    if out_dir:
        (out_dir / "summary.json").write_text(json.dumps({"env": args.env, "tasks": args.tasks or spec.default_tasks,
                                                          "agent": args.agent, "metric": spec.metric.name,
                                                          "scores": scores, **summary}, indent=1))
        print(f"transcripts: {out_dir / (args.env + '.jsonl')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
