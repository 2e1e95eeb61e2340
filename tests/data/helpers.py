"""Helpers shared by the data tests: the test mixture config and an independent Llama-2 reference layout."""
import pathlib

from agentlm.configfile import load_config_file
from agentlm.data.template import DEFAULT_SYSTEM

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mixture_config(**overrides):
    """configs/mixture/tiny.py with fields replaced (data paths default to ../shared, checked by the caller)."""
    c = load_config_file(ROOT / "configs/mixture/tiny.py")
    for k, v in overrides.items():
        c[k] = v
    return c


def meta_reference(conv, sp_tokenizer, system=DEFAULT_SYSTEM):
    """Meta's chat_completion layout, each exchange encoded in ONE call (an independent construction)."""
    ids = []
    for k in range(0, len(conv), 2):
        sys = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if k == 0 else ""
        text = f"[INST] {sys}{conv[k]['value'].strip()} [/INST] {conv[k + 1]['value'].strip()} "
        ids += [1] + sp_tokenizer.encode(text) + [2]
    return ids
