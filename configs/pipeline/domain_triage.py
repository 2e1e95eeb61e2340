"""AgentInstruct-style data for the 'triage' tool domain (agentlm.envs.domains.triage), training templates only.

    python -m data_pipeline.run --config configs/pipeline/domain_triage.py                 # offline: oracle teacher
    OPENAI_API_KEY=... python -m data_pipeline.run --config configs/pipeline/domain_triage.py \
        --config.teacher.kind=openai --config.teacher.model=gpt-4 --config.sources.triage.env_kwargs.teacher_protocol=function_calling

The teacher plays generated instances of the domain's training templates (the held-out templates are left for
`python -m agentlm.eval.agent --tasks triage`); a few gold trajectories go through CoT annotation instead. With
teacher_protocol=function_calling the teacher is asked over OpenAI function calling and its trajectories are
recorded in the text action format, like every other source.
"""
from data_pipeline.domains import domain_source
from data_pipeline.defaults import base_config


def get_config():
    c = base_config("domain_triage")
    c.sources.triage = domain_source("triage", split="train", n=60, seed=0)
    c.sources.triage_annotated = domain_source("triage", split="train", n=12, seed=1, method="annotate")
    c.filter.max_seq_len = 4096
    return c
