"""ReWOO (held out): plan-work-solve over offline tools (data.py: the sets and answer rules; tools.py: the
workers; judge.py: the optional LLM judge; env.py: the episode, the scripted planner and the metric)."""
from __future__ import annotations

from agentlm.envs.spec import ActionFormat, EnvSpec, Metric


def load_tasks(source: str, split: str = "test"):
    from agentlm.envs.rewoo import data

    tasks = data.load_tasks(source, split)
    root = str(source).partition("::")[0]
    for t in tasks:  # the environment finds the transcript and the local wiki beside the data folder
        t.data["root"] = root
    return tasks


SPEC = EnvSpec(
    name="rewoo", env="agentlm.envs.rewoo.env:RewooEnv", load_tasks=load_tasks, group="held_out",
    paper_task="ReWOO", metric=Metric("answer accuracy, pooled (free text: F1 or judge)",
                                      "agentlm.envs.rewoo.env:aggregate"),
    oracle="agentlm.envs.rewoo.env:ScriptedPlanner", action_format=ActionFormat(r"^\s*(Plan|#E\d+)\s*[:=]"),
    split="test", options={"sotu_file": "", "wiki_source": "", "judge_url": "", "judge_model": ""},
    requires=("bm25s", "sympy"),
    task_formats="ReWOO's data folder (bigbench/, SOTU/, docs/, agenttuning/samples_seed2024_n50.json), optionally "
                 "DIR::set1,set2; GSM8K from DIR/../general_eval/gsm8k/test.jsonl or gsm8k=PATH in the set list",
    note="ReWOO runs 5 of the paper's 7 sets offline (hotpot_qa, trivia_qa missing; gsm8k from its test split); "
         "Wikipedia is the local HotpotQA corpus, no Google or WolframAlpha; free-text answers scored by F1 "
         "unless a judge endpoint is set (the paper used a GPT judge)",
    description="ReWOO (held out): plan-work-solve with offline tools (SOTU search, sympy calculator, the model as "
                "LLM, local wiki)")
