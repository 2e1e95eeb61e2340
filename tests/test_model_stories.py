"""A real pretrained model (stories260K, HF layout): conversion, round trip and greedy decoding vs transformers."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sentencepiece as spm
import torch
import transformers
from safetensors.torch import load_file

from agentlm import checkpoint
from agentlm import model as llama
from agentlm.checkpoint import convert
from tests.conftest import shared_path

torch.set_num_threads(1)  # the suite shares two cores; torch's spinning worker threads only add contention

NEW_TOKENS = 200


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    hf_dir = shared_path("models", "stories260K-hf")
    out = tmp_path_factory.mktemp("stories")
    assert convert.main(["hf-to-orbax", "--hf_dir", str(hf_dir), "--out", str(out / "ckpt")]) == 0
    return hf_dir, out


@functools.partial(jax.jit, static_argnums=(0, 3))
def _greedy(cfg, params, buf, start: int):
    def step(t, buf):
        logits, _ = llama.apply(cfg, params, buf)
        return buf.at[0, t].set(jnp.argmax(logits[0, t - 1]).astype(jnp.int32))

    return jax.lax.fori_loop(start, buf.shape[1], step, buf)


def greedy_no_cache(cfg, params, prompt: list[int], n: int) -> list[int]:
    """Reference greedy decoding without a KV cache: the full forward pass over one fixed-size buffer per step.

    Causal attention makes the not-yet-written tail of the buffer invisible to earlier positions.
    """
    buf = jnp.zeros((1, len(prompt) + n), jnp.int32).at[0, :len(prompt)].set(jnp.asarray(prompt))
    return [int(x) for x in np.asarray(_greedy(cfg, params, buf, len(prompt))[0, len(prompt):])]


def test_greedy_200_tokens_from_bos_match_transformers(stories):
    hf_dir, out = stories
    cfg, params = checkpoint.load(out / "ckpt")
    assert cfg.tie_word_embeddings and cfg.vocab_size == 512 and "lm_head" not in params
    ours = greedy_no_cache(cfg, params, [cfg.bos_token_id], NEW_TOKENS)
    hf = transformers.LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf.generate(torch.tensor([[cfg.bos_token_id]]), max_new_tokens=NEW_TOKENS, do_sample=False)
    ref = ref[0, 1:].tolist()
    assert len(ref) == NEW_TOKENS, "transformers stopped early (EOS); the comparison needs 200 tokens"
    assert ours == ref
    text = spm.SentencePieceProcessor(model_file=str(hf_dir / "tokenizer.model")).decode(ours)
    assert text.startswith("Once upon a time, there was a little girl named Lily.")


def test_logits_match_transformers_on_real_weights(stories):
    hf_dir, out = stories
    cfg, params = checkpoint.load(out / "ckpt")
    tokens = np.random.RandomState(0).randint(0, cfg.vocab_size, (2, 64))
    ours, _ = llama.apply(cfg, params, jnp.asarray(tokens, jnp.int32))
    hf = transformers.LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(torch.tensor(tokens)).logits.numpy()
    assert float(np.max(np.abs(np.asarray(ours) - ref))) <= 1e-4


def test_real_model_round_trip_is_bit_identical(stories):
    hf_dir, out = stories
    assert convert.main(["orbax-to-hf", "--ckpt", str(out / "ckpt"), "--out", str(out / "hf")]) == 0
    before, after = load_file(hf_dir / "model.safetensors"), load_file(out / "hf" / "model.safetensors")
    assert sorted(before) == sorted(after) and "lm_head.weight" not in after
    for name, tensor in before.items():
        assert after[name].dtype == tensor.dtype and torch.equal(after[name], tensor), name
    assert (out / "hf" / "tokenizer.model").read_bytes() == (hf_dir / "tokenizer.model").read_bytes()
