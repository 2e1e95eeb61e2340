"""The mixture config schema: one place that names every field, its default and what it means.

`configs/mixture/*.py` start from `default_config()`; the trainer can too when it builds a mixture from its own
config (`default_config(eta=..., agent_paths=[...], ...)`). Defaults point at what the project produces
(`data_pipeline` export) or what the user puts in the repository, never at ../shared.
"""
from __future__ import annotations

from ml_collections import ConfigDict

from agentlm.cache import cache_root
from agentlm.data.template import DEFAULT_SYSTEM


def default_config(**overrides) -> ConfigDict:
    c = ConfigDict()
    c.name = "agenttuning"                 # the registered seqio Mixture name
    c.eta = 0.2                            # probability that an example comes from the agent pool, in [0, 1]
    # AgentInstruct-schema files or directories of them (.parquet/.jsonl/.json); one Task per file stem.
    # Tuples, so they can be overridden: --config.agent_paths="('a.jsonl', 'dir/')"
    c.agent_paths = ("data/generated/offline_small/export/agentinstruct",)
    # ShareGPT-layout general conversations (no `loss` flags: every gpt turn is trained).
    c.general_paths = ("data/general",)
    c.agent_weights = ""                   # "os:1,db:3" weights inside the agent pool (others 0); "" = by size
    c.tokenizer = "models/llama-2-7b-chat/tokenizer.model"   # .model, tokenizer.json, or a directory with one
    c.template = "llama2"                  # llama2 | chatml | llama3 (agentlm.data.template)
    c.system = DEFAULT_SYSTEM              # "" = no system block
    c.strict = True                        # False: skip and count malformed rows instead of failing
    c.overlength = "truncate"              # conversations longer than seq_len: "truncate" (whole turns) or "drop"
    c.eval_holdout = 0                     # conversations per Task held out of training for eval batches
    c.image_patch = 0                      # > 0: rows may carry images, cut into patches of this many pixels
    c.image_token_id = 0                   # the id placed at image placeholder positions (the model masks it)
    c.cache_dir = str(cache_root() / "tfds")  # prepared tfds copies (keyed by the files' size and mtime)
    for key, value in overrides.items():
        if key not in c:
            raise KeyError(f"unknown mixture config field {key!r}; fields: {sorted(c)}")
        c[key] = value
    return c
