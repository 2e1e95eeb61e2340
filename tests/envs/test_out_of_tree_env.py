"""An environment defined outside the package runs everywhere the built-in ones do, registered only through the
public paths: an `agentlm.envs` entry point of an installed distribution (a `*.dist-info` on sys.path) for
`agentlm.envs.run` and `agentlm.eval.agent`, and a pipeline config's `env_modules` for `data_pipeline.run` (the
oracle teacher, through filtering to an exported AgentInstruct row). Each runs as its own process, as a user would
run it; nothing inside agentlm/ or data_pipeline/ names the environment."""
import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

COUNTER_ENV = '''
"""Count up to a target, one `Action: add 1` at a time, then `Action: stop`."""
import re

from agentlm.envs.base import Environment, StepResult, Task
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, success_rate


def load_tasks(source, split="dev"):
    n = int(source.partition(":")[2] or 3)
    return [Task(f"counter_{i}", "counter", {"target": 1 + i % 3}, split) for i in range(n)]


class CounterEnv(Environment):
    name = "counter"

    def __init__(self, greeting="Count with me."):
        self.greeting, self.value, self.target = greeting, 0, 0

    def reset(self, task):
        self.value, self.target = 0, task.data["target"]
        return [{"from": "human", "value": f"{self.greeting} Reach {self.target}: reply `Action: add 1` or "
                                           "`Action: stop`.", "loss": None}]

    def step(self, action):
        m = re.search(r"^Action: (add 1|stop)$", action, re.MULTILINE)
        if not m:
            return StepResult("", 0.0, True, {}, invalid=True)
        if m.group(1) == "stop":
            return StepResult("", float(self.value == self.target), True, {})
        self.value += 1
        return StepResult(f"The counter shows {self.value}.")

    def parse_ok(self, action):
        return bool(re.search(r"^Action: (add 1|stop)$", action, re.MULTILINE))


class CounterOracle:
    def act(self, conversation, task):
        done = sum(1 for m in conversation if m["from"] == "gpt" and m.get("loss"))
        return "Not there yet.\\nAction: add 1" if done < task.data["target"] else "Reached it.\\nAction: stop"


SPEC = EnvSpec(name="counter", env=CounterEnv, load_tasks=load_tasks, group="new_domain", oracle=CounterOracle,
               metric=Metric("success rate", success_rate), action_format=ActionFormat(r"^Action:"),
               options={"greeting": "Count with me."}, default_tasks="builtin:3")
'''


def _run(args, env, cwd):
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_toy_env_outside_the_package_through_run_eval_and_pipeline(tmp_path):
    plugin = tmp_path / "site"
    (plugin / "counter_env-0.1.dist-info").mkdir(parents=True)
    (plugin / "counter_env.py").write_text(COUNTER_ENV)
    (plugin / "counter_env-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: counter-env\n"
                                                                   "Version: 0.1\n")
    (plugin / "counter_env-0.1.dist-info" / "entry_points.txt").write_text("[agentlm.envs]\n"
                                                                           "counter = counter_env:SPEC\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)]), "AGENTLM_ENVS": ""}

    # envs.run: the entry point alone makes `--env counter` known, options included.
    out = _run(["-m", "agentlm.envs.run", "--env", "counter", "--tasks", "builtin:4", "--agent", "oracle",
                "--option", "greeting=Hello.", "--out", str(tmp_path / "run")], env, tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["scores"]["score"] == 100.0 and summary["outcomes"]["success"] == 4, out
    first = json.loads((tmp_path / "run" / "counter.jsonl").read_text().splitlines()[0])
    assert first["conversations"][0]["value"].startswith("Hello. Reach 1")

    # eval.agent: its default config (built in code) has a `counter` section; the oracle scores 100.
    out = _run(["-m", "agentlm.eval.agent", "--model", "oracle", "--tasks", "counter", "--out",
                str(tmp_path / "eval"), "--config.counter.limit=5", "--config.counter.data_file=builtin:6"], env,
               tmp_path)
    s = json.loads((tmp_path / "eval" / "agent" / "summary.json").read_text())["tasks"]["counter"]
    assert s["score"] == 100.0 and s["n"] == 5 and s["metric"] == "success rate" and s["paper_task"] == "counter"

    # data_pipeline: no entry point on the path this time; the config's env_modules registers the module.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "counter_env.py").write_text(COUNTER_ENV)
    config = tmp_path / "counter_pipeline.py"
    config.write_text(textwrap.dedent(f'''
        from data_pipeline.defaults import base_config, source

        def get_config():
            c = base_config("counter")
            c.out_dir, c.progress, c.fsync = {str(tmp_path / "data")!r}, False, False
            c.env_modules = ["counter_env"]
            c.teacher.kind = "oracle"
            c.sources.counter = source("env_tasks", "counter", path="builtin:3")
            return c
        '''))
    pipeline_env = {**env, "PYTHONPATH": os.pathsep.join([str(bare), str(ROOT)])}
    _run(["-m", "data_pipeline.run", "--config", str(config)], pipeline_env, tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "data" / "export" / "agentinstruct" / "counter.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 3 and sorted(r["id"] for r in rows) == ["counter_00000", "counter_00001", "counter_00002"]
    turns = rows[0]["conversations"]
    assert turns[0]["from"] == "human" and turns[-1]["from"] == "gpt" and turns[-1]["value"].endswith("Action: stop")
    assert {t["loss"] for t in turns if t["from"] == "gpt"} == {True}
