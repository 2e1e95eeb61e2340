"""AgentInstruct-style data for the 'back_office' tool domain (agentlm.envs.domains.back_office), training templates only.

    python -m data_pipeline.run --config configs/pipeline/domain_back_office.py                 # offline: oracle teacher
    OPENAI_API_KEY=... python -m data_pipeline.run --config configs/pipeline/domain_back_office.py \
        --config.teacher.kind=openai --config.teacher.model=gpt-4 --config.sources.back_office.env_kwargs.teacher_protocol=function_calling

The teacher plays generated instances of the domain's training templates (the held-out templates are left for
`python -m agentlm.eval.agent --tasks back_office`); a few gold trajectories go through CoT annotation instead. With
teacher_protocol=function_calling the teacher is asked over OpenAI function calling and its trajectories are
recorded in the text action format, like every other source.
"""
from data_pipeline.domains import domain_source
from data_pipeline.defaults import base_config


def get_config():
    c = base_config("domain_back_office")
    c.sources.back_office = domain_source("back_office", split="train", n=60, seed=0)
    c.sources.back_office_annotated = domain_source("back_office", split="train", n=12, seed=1, method="annotate")
    c.filter.max_seq_len = 4096
    return c
