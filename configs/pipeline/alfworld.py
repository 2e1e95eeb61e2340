"""AgentInstruct-style ALFWorld data: games of ALFWorld's train split, the expert plan as the offline teacher (a
teacher model with --config.teacher.kind=openai), reward filtering (success only), AgentInstruct export.

    ALFWORLD_DATA=/path/to/alfworld python -m data_pipeline.run --config configs/pipeline/alfworld.py \
        --config.sources.alfworld.env_kwargs.prompts_file=.../alfworld_multiturn_react.json \
        --config.sources.alfworld.env_kwargs.instruction_file=.../task_instruction.txt

`data` is the ALFWorld data root (json_2.1.1/ or json_2.1.1.tar.xz; default $ALFWORLD_DATA). With AgentBench's
prompt files the rows carry AgentBench's instruction and example, as AgentInstruct's ALFWorld rows do; without
them, the environment's own instruction. AgentTuning kept 336 of 954 ALFWorld instructions; `n` sets how many
games are played here.
"""
import os

from data_pipeline.defaults import base_config, source


def get_config():
    c = base_config("alfworld")
    c.sources.alfworld = source("alfworld_games", "alfworld", data=os.environ.get("ALFWORLD_DATA", ""), split="train",
                                n=60, seed=0, env_kwargs={"prompts_file": "", "instruction_file": ""})
    c.sources.alfworld_annotated = source("alfworld_games", "alfworld", method="annotate",
                                          data=os.environ.get("ALFWORLD_DATA", ""), split="train", n=12, seed=0,
                                          offset=60,
                                          env_kwargs={"prompts_file": "", "instruction_file": ""})
    return c
