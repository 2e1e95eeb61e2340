"""AgentInstruct-style data for the 'tutor' domain (agentlm.envs.domains.tutor), training templates only.

    python -m data_pipeline.run --config configs/pipeline/domain_tutor.py                  # offline: oracle tutor
    OPENAI_API_KEY=... python -m data_pipeline.run --config configs/pipeline/domain_tutor.py \
        --config.teacher.kind=openai --config.teacher.model=gpt-4 --config.sources.tutor.env_kwargs.teacher_protocol=function_calling

The oracle tutor knows the simulated student's misconceptions, probes each, diagnoses, hints each concept and
asks for a retry; its trajectories carry thoughts. The held-out templates (misconceptions no training task has)
are left for `python -m agentlm.eval.agent --tasks tutor`. A few gold sessions go through CoT annotation instead.
"""
from data_pipeline.defaults import base_config
from data_pipeline.domains import domain_source


def get_config():
    c = base_config("domain_tutor")
    c.sources.tutor = domain_source("tutor", split="train", n=60, seed=0)
    c.sources.tutor_annotated = domain_source("tutor", split="train", n=12, seed=1, method="annotate")
    c.filter.max_seq_len = 4096
    return c
