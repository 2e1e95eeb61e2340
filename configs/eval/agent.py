r"""Agent-task evaluation (held-in: db, os, household; held-out: sciworld, miniwob) for one model.

    python -m agentlm.eval.agent --model http://localhost:8000/v1 --tasks db,os --out eval_runs/agentlm-7b \
        --config.db.data_file=/data/dbbench/dev.jsonl --config.os.data_file=/data/os_interaction/dev.json

Decoding is greedy (the paper's setting). Every registered environment has a section here (built from its registry
entry by agentlm.eval.agent_config: data_file, split, limit, max_rounds and the environment's options, e.g.
`--config.db.backend=mariadb --config.db.mode=sql`). Item files are explicit (nothing is bundled or downloaded);
a limit of 0 means every item. `prompt_file` lets an environment take its instruction prompt from an AgentInstruct
row or a scaffold.json (agentlm.envs.prompts), so a model is evaluated with the prompts it was trained on.
An environment outside the package: list its module in `env_modules` below (or set AGENTLM_ENVS, or install it with
an `agentlm.envs` entry point) and name it in --tasks.
"""
from agentlm.eval.agent_config import default_config


def get_config():
    c = default_config(env_modules=[])
    # Household and ScienceWorld games are generated locally: "builtin:N" = N TextWorld games per kind (cooking,
    # treasure, coin at three levels); "builtin:dev:K" = the first K dev variations of each of the 30 task types.
    # A JSONL file of {"kind", "level", "seed"} / {"task", "variation"} picks items explicitly.
    c.household.data_file = "builtin:7"
    c.sciworld.data_file = "builtin:dev:1"
    # MiniWoB++: "builtin:N" = N seeds of each task the scripted oracle solves; a JSONL of {"task", "seed"} names
    # any of MiniWoB's tasks. Needs Debian chromium + chromium-driver.
    c.miniwob.data_file = "builtin:5"
    # Tool-use domains (agentlm.envs.domains, not in the paper): "builtin:test:N[:SEED]" = N generated items of the
    # domain's held-out task templates; or a JSONL file of task instances.
    c.back_office.data_file = "builtin:test:50"
    c.triage.data_file = "builtin:test:50"
    # Held-out tasks on their upstream data (docs/heldout_tasks.md), e.g. from ../shared:
    #   --config.hotpotqa.data_file=DIR (AgentTuning's {easy,medium,hard}.jsonl) [--config.hotpotqa.prompt_dir=DIR/prompts]
    #   --config.rewoo.data_file=DIR (ReWOO's data folder; DIR::sotu_qa,gsm8k picks sets) [--config.rewoo.judge_url=...]
    #   --config.card_game.engine_source=DIR (AgentBench's card_game source; data_file std | dev | ext | games:N)
    return c
