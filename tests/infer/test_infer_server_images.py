"""Image content parts on /v1/chat/completions: a vision model sees the patches at the placeholder tokens exactly
as training renders image rows; bad images and text-only models get 400s naming the message and part."""
from __future__ import annotations

import base64
import functools

import jax
import numpy as np
import openai
import pytest

from agentlm import model as llama
from agentlm.data import images
from agentlm.data.template import render_prompt_detailed, stop_ids
from agentlm.data.tokenizer import load_tokenizer
from agentlm.infer import InferenceEngine, OpenAIServer
from agentlm.model.config import VisionConfig
from tests.conftest import shared_path
from tests.infer.conftest import random_model

MAX_TOKENS = 8
VISION = VisionConfig(patch_size=8, max_patches=64)


def _screen(seed: int, w: int = 32, h: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _data_url(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(images.encode_png(pixels)).decode()


def _messages(url: str, text: str = "Click the button.") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}]


@pytest.fixture(scope="module")
def served():
    tok = load_tokenizer(shared_path("models", "stories260K-hf"))
    cfg, params = random_model("tiny", vision=VISION)
    engine = InferenceEngine(cfg, params, tok)
    text_cfg, text_params = random_model("tiny")
    text_engine = InferenceEngine(text_cfg, text_params, tok)
    with OpenAIServer(engine, "vision", port=0) as server, OpenAIServer(text_engine, "text", port=0) as text_server:
        client = openai.OpenAI(base_url=server.url, api_key="EMPTY", max_retries=0, timeout=120)
        text_client = openai.OpenAI(base_url=text_server.url, api_key="EMPTY", max_retries=0, timeout=120)
        yield cfg, params, tok, client, text_client
    engine.close()
    text_engine.close()


WIDTH = 256  # the reference forward pads every sequence to this length, so it compiles once


@functools.lru_cache(maxsize=None)
def _forward(cfg):
    return jax.jit(lambda params, tokens, segments, mask, patches: llama.apply(
        cfg, params, tokens, None, segments, image_patches=patches, image_mask=mask)[0])


def _reference(cfg, params, tok, pixels_list, text="Click the button.", blank_images=False):
    """(greedy ids, their logprobs) by full forwards without a KV cache, the prompt rendered by the training
    code path (template + images.to_patches); `blank_images` zeroes the patches (what a model that ignored
    the image would compute)."""
    counts, patches = images.to_patches(pixels_list, VISION.patch_size)
    conv = [{"from": "human", "value": text + images.IMAGE_SENTINEL * len(pixels_list)}]
    r = render_prompt_detailed(conv, tok, "llama2", image_tokens=counts)
    ids, mask = list(r.ids), list(r.image_mask)
    full = np.zeros((len(ids) + MAX_TOKENS, VISION.patch_dim), np.uint8)
    full[np.flatnonzero(mask)] = 0 if blank_images else patches
    stops = set(stop_ids(tok, "llama2"))
    out, lps = [], []
    for _ in range(MAX_TOKENS):
        n = len(ids)
        assert n <= WIDTH
        pad = lambda x: np.pad(np.asarray(x, np.int32), (0, WIDTH - n))[None]  # noqa: E731
        patches_n = np.pad(full[:n], ((0, WIDTH - n), (0, 0)))[None]
        logits = _forward(cfg)(params, pad(ids), pad([1] * n), pad(mask), patches_n)
        logp = np.asarray(jax.nn.log_softmax(logits[0, n - 1]))
        nxt = int(np.argmax(logp))
        lps.append(float(logp[nxt]))
        if nxt in stops:
            break
        out.append(nxt)
        ids.append(nxt)
        mask.append(0)
    return out, lps


def test_image_parts_reach_the_model_at_the_placeholders(served):
    cfg, params, tok, client, _ = served
    pixels = _screen(0)
    r = client.chat.completions.create(model="vision", messages=_messages(_data_url(pixels)),
                                       max_tokens=MAX_TOKENS, temperature=0, logprobs=True)
    want_ids, want_lps = _reference(cfg, params, tok, [pixels])
    assert r.choices[0].message.content == tok.decode(want_ids)
    got = [c.logprob for c in r.choices[0].logprobs.content]
    np.testing.assert_allclose(got, want_lps[:len(got)], atol=2e-4)
    # the image changes what the model computes: a blank image gives other log-probabilities
    _, blank_lps = _reference(cfg, params, tok, [pixels], blank_images=True)
    assert not np.allclose(want_lps[:1], blank_lps[:1], atol=1e-3)
    # the Responses-style part newer clients build (image_url as a string) is read the same way
    part = {"type": "input_image", "image_url": _data_url(pixels)}
    r2 = client.chat.completions.create(model="vision", max_tokens=MAX_TOKENS, temperature=0, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Click the button."}, part]}])
    assert r2.choices[0].message.content == r.choices[0].message.content
    # two images in one message, each its own placeholder run
    second = _screen(1, 16, 16)
    r3 = client.chat.completions.create(model="vision", max_tokens=MAX_TOKENS, temperature=0, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Click the button."},
                                     {"type": "image_url", "image_url": {"url": _data_url(pixels)}},
                                     {"type": "image_url", "image_url": {"url": _data_url(second)}}]}])
    assert r3.choices[0].message.content == tok.decode(_reference(cfg, params, tok, [pixels, second])[0])


@pytest.mark.parametrize("content, fragment", [
    ([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}], "not fetched"),
    ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}], "does not decode"),
    ([{"type": "image_url", "image_url": {"url": "ftp://x"}}], "does not decode"),
    ([{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"no png").decode()}}],
     "cannot decode image"),
    ([{"type": "image_url", "image_url": {"url": _data_url(_screen(0, 30, 24))}}], "multiples of its 8-pixel"),
    ([{"type": "image_url", "image_url": {"url": _data_url(_screen(0, 80, 80))}}], "at most 64 patches"),
    ([{"type": "image_url", "image_url": {}}], "needs image_url.url"),
    ([{"type": "text", "text": "a \ue000 b"}], "reserves for image placeholders"),
    ([{"type": "audio", "audio": {}}], "only text and image_url parts"),
])
def test_bad_image_parts_are_400_naming_the_part(served, content, fragment):
    client = served[3]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="vision", max_tokens=4, messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": content}])
    assert fragment in err.value.message and f"messages[1].content[{len(content) - 1}]" in err.value.message


def test_images_outside_user_messages_and_on_a_text_model_are_400(served):
    _, _, _, client, text_client = served
    url = _data_url(_screen(0))
    with pytest.raises(openai.BadRequestError, match=r"messages\[1\].content\[0\]: images are only accepted in user"):
        client.chat.completions.create(model="vision", max_tokens=4, messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": url}}]},
            {"role": "user", "content": "and now?"}])
    with pytest.raises(openai.BadRequestError, match=r"messages\[0\].content\[1\]: this model has no vision path"):
        text_client.chat.completions.create(model="text", messages=_messages(url), max_tokens=4)
    # the text model still answers text parts
    r = text_client.chat.completions.create(model="text", max_tokens=4, temperature=0,
                                            messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert r.choices[0].finish_reason in ("stop", "length")
