"""Batched KV-cache generation and log-likelihood scoring on the Llama model, on one device or a mesh.

How a batch runs:
- Rows are right-padded into a [B, T] prompt block (segment 0 marks padding, so padded slots are never
  attended) and prefilled through the KV cache in chunks of at most `prefill_chunk` tokens, which bounds the
  [B, chunk, E] hidden states that live at once. Only each row's last prompt token goes through the vocabulary head.
- Decoding writes every row's new token at the same cache slot (T + step) but at the row's own position
  (len + step), which the model's (segment, position) attention rule turns into exactly the unpadded result.
- The decode loop is a `lax.while_loop` inside one jit that stops as soon as every row is finished (stop token
  or its own max_new_tokens). Stop *strings* need decoded text, so when any row has them (or a caller streams)
  the loop runs in chunks of `decode_chunk` steps and the host checks text in between; the cache stays on
  device and is donated from one chunk to the next.
- Batch size, prompt length and generation length are rounded up to powers of two, so a server sees a handful
  of compiled shapes instead of one per request.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from agentlm import model as llama
from agentlm import sharding
from agentlm.infer.sampling import select_tokens
from agentlm.model.llama import head_kernel

MIN_PROMPT_BUCKET = 16
MIN_NEW_BUCKET = 16
MAX_TOP_LOGPROBS = 20  # alternatives recorded per step when any row asks for them (OpenAI's chat limit)

FINISH_RUNNING, FINISH_STOP_TOKEN, FINISH_LENGTH = 0, 1, 2


@dataclasses.dataclass
class GenerationRequest:
    """One row of a batch. Sampling is greedy when temperature == 0; top_k == 0 means no top-k cut."""

    prompt: Sequence[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop_token_ids: Sequence[int] = ()
    stop_strings: Sequence[str] = ()
    top_logprobs: int = 0  # how many alternatives (with their log-probabilities) to report per step
    # vision models: 1 at the prompt's image placeholder tokens, and one uint8 patch row per placeholder
    # (agentlm.data.images.patchify of each image, in order), exactly as training packs them
    image_mask: Sequence[int] | None = None
    image_patches: np.ndarray | None = None


@dataclasses.dataclass
class GenerationResult:
    """Generated ids (prompt, stop token and anything after a stop string excluded) and why generation ended.

    `logprobs[i]` is log p(tokens[i]) under the model's unscaled distribution (temperature 1, no filtering),
    `top_logprobs[i]` the most likely (id, logprob) pairs at that step when requested. When a stop token ended
    the row, both lists carry one extra, last entry for that token (OpenAI-style logprobs list it).
    """

    tokens: list[int]
    finish_reason: str  # "stop" (stop token or stop string), "length", or "cancelled" (on_update asked)
    stop: int | str | None = None  # the stop token id or stop string that ended the row
    logprobs: list[float] = dataclasses.field(default_factory=list)
    top_logprobs: list[list[tuple[int, float]]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TokenScores:
    """Per-token log-likelihood of a sequence: logprobs[t] = log p(ids[t + 1] | ids[:t + 1])."""

    logprobs: np.ndarray  # [n - 1] float32
    top_ids: np.ndarray  # [n - 1, k] int32 (k = 0 unless requested)
    top_logprobs: np.ndarray  # [n - 1, k] float32
    # the k most likely tokens *after* the sequence (a greedy first step of generation comes for free)
    next_top_ids: np.ndarray | None = None  # [k]
    next_top_logprobs: np.ndarray | None = None  # [k]

    @property
    def total(self) -> float:
        return float(self.logprobs.sum())


def bucket(n: int, minimum: int) -> int:
    """Smallest power of two >= max(n, minimum)."""
    return 1 << (max(int(n), int(minimum), 1) - 1).bit_length()


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def batch_multiple(mesh) -> int:
    """How many ways the batch dimension is split on `mesh` (batch buckets must divide by it)."""
    if mesh is None:
        return 1
    axes = sharding.logical_to_spec(("batch",))[0]
    if axes is None:
        return 1
    axes = axes if isinstance(axes, tuple) else (axes,)
    return math.prod(mesh.shape[a] for a in axes)


def _batch_bucket(n: int, mesh, minimum: int = 1) -> int:
    size, mult = bucket(n, minimum), batch_multiple(mesh)
    return -(-size // mult) * mult


def _context(mesh):
    return sharding.activate(mesh) if mesh is not None else contextlib.nullcontext()


@functools.lru_cache(maxsize=None)
def _cache_maker(cfg, batch: int, length: int, mesh):
    fn = lambda: llama.init_cache(cfg, batch, length)
    if mesh is None:
        return jax.jit(fn)
    return jax.jit(fn, out_shardings=llama.cache_shardings(mesh))


def _check_prompts(cfg, prompts: Sequence[Sequence[int]]) -> None:
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty; generation needs at least one token (e.g. BOS)")
        lo, hi = min(p), max(p)
        if lo < 0 or hi >= cfg.vocab_size:
            raise ValueError(f"prompt {i} has token id {lo if lo < 0 else hi} outside the vocabulary "
                             f"[0, {cfg.vocab_size})")


# ---- jitted pieces ------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames=("cfg",), donate_argnames=("cache",))
def _prefill_chunk(cfg, params, cache, tokens, start, lengths, last_logits, image_patches=None, image_mask=None):
    """Runs prompt tokens [start, start + C) through the cache; keeps logits at each row's last prompt token.
    Only that position goes through the vocabulary head: [B, C, V] logits are never formed. Image prompts pass
    `image_patches` [B, C, P] / `image_mask` [B, C] (None for text: a separate compiled shape)."""
    c = tokens.shape[1]
    positions = start + jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), tokens.shape)
    segments = (positions < lengths[:, None]).astype(jnp.int32)
    hidden, cache = llama.Llama(cfg).apply({"params": params}, tokens, positions, segments, cache,
                                           return_hidden=True, image_patches=image_patches, image_mask=image_mask)
    idx = lengths - 1 - start
    picked = jnp.take_along_axis(hidden, jnp.clip(idx, 0, c - 1)[:, None, None], axis=1)[:, 0]  # [B, E]
    picked = jnp.einsum("be,ev->bv", picked, head_kernel(cfg, params).astype(cfg.compute_dtype))
    in_chunk = (idx >= 0) & (idx < c)
    return cache, jnp.where(in_chunk[:, None], picked.astype(jnp.float32), last_logits)


@functools.partial(jax.jit, static_argnames=("cfg", "num_top"), donate_argnames=("state",))
def _decode(cfg, num_top, params, state, lengths, max_new, temperature, top_k, top_p, seeds, stop_ids, limit):
    """Decodes until step == limit or every row is done. See the module docstring for the slot/position rule."""

    def cond(s):
        return (s["step"] < limit) & ~jnp.all(s["done"])

    def body(s):
        step, logits, was_done = s["step"], s["last_logits"], s["done"]
        token = select_tokens(logits, temperature, top_k, top_p, seeds, step)
        token = jnp.where(was_done, 0, token)
        log_z = jax.nn.logsumexp(logits, axis=-1)  # one reduction; [B, V] log-probabilities only for top-n
        out = dict(s)
        out["tokens"] = s["tokens"].at[:, step].set(token)
        out["logprobs"] = s["logprobs"].at[:, step].set(jnp.take_along_axis(logits, token[:, None], -1)[:, 0] - log_z)
        if num_top:
            top_lp, top_id = jax.lax.top_k(logits - log_z[:, None], num_top)
            out["top_ids"] = s["top_ids"].at[:, step].set(top_id.astype(jnp.int32))
            out["top_lps"] = s["top_lps"].at[:, step].set(top_lp)
        hit_stop = jnp.any(token[:, None] == stop_ids, axis=-1) & ~was_done
        hit_len = (step + 1 >= max_new) & ~was_done & ~hit_stop
        done = was_done | hit_stop | hit_len
        out["finish"] = jnp.where(hit_stop, FINISH_STOP_TOKEN, jnp.where(hit_len, FINISH_LENGTH, s["finish"]))
        out["gen_len"] = jnp.where(was_done, s["gen_len"], step + 1)
        out["done"] = done

        def forward(cache):
            positions = (lengths + step)[:, None]
            segments = (~done).astype(jnp.int32)[:, None]
            new_logits, cache = llama.apply(cfg, params, token[:, None], positions, segments, cache)
            return new_logits[:, 0], cache

        # Always forward, even on the step that finishes the last row (its logits are then unused): a cond
        # here cost more over a generation than the one spare forward it saves.
        out["last_logits"], out["cache"] = forward(s["cache"])
        out["step"] = step + 1
        return out

    return jax.lax.while_loop(cond, body, state)


@functools.partial(jax.jit, static_argnames=("cfg", "num_top"), donate_argnames=("cache",))
def _score_chunk(cfg, num_top, params, cache, tokens, targets, start, lengths):
    c = tokens.shape[1]
    positions = start + jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), tokens.shape)
    segments = (positions < lengths[:, None]).astype(jnp.int32)
    logits, cache = llama.apply(cfg, params, tokens, positions, segments, cache)
    logp = jax.nn.log_softmax(logits, axis=-1)
    target_lp = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    if num_top:
        top_lp, top_id = jax.lax.top_k(logp, num_top)
    else:
        top_lp = jnp.zeros(tokens.shape + (0,), jnp.float32)
        top_id = jnp.zeros(tokens.shape + (0,), jnp.int32)
    return cache, target_lp, top_id.astype(jnp.int32), top_lp


# ---- host side ----------------------------------------------------------------------------------------

def _padded_block(prompts, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.zeros((batch, length), np.int32)
    lengths = np.ones((batch,), np.int32)  # padding rows: one (never used) token
    for i, p in enumerate(prompts):
        tokens[i, :len(p)] = p
        lengths[i] = len(p)
    return tokens, lengths


def _image_block(cfg, requests, batch: int, length: int):
    """([B, T, P] uint8 patches, [B, T] int32 mask) of the rows' images, or (None, None) when no row has one."""
    if not any(r.image_mask is not None and any(r.image_mask) for r in requests):
        return None, None
    if cfg.vision is None:
        raise ValueError("a prompt carries images but the model has no vision path (LlamaConfig.vision is None)")
    patches = np.zeros((batch, length, cfg.vision.patch_dim), np.uint8)
    mask = np.zeros((batch, length), np.int32)
    for i, r in enumerate(requests):
        if r.image_mask is None:
            continue
        m = np.asarray(r.image_mask, np.int32)
        where = np.flatnonzero(m)
        rows = np.zeros((0, cfg.vision.patch_dim), np.uint8) if r.image_patches is None else r.image_patches
        if len(m) != len(r.prompt) or rows.shape != (len(where), cfg.vision.patch_dim):
            raise ValueError(f"request {i}: image_mask has {len(m)} entries ({len(where)} placeholders) for a "
                             f"{len(r.prompt)}-token prompt; image_patches must be [{len(where)}, "
                             f"{cfg.vision.patch_dim}], got {tuple(rows.shape)}")
        mask[i, :len(m)] = m
        patches[i, where] = rows
    return patches, mask


def _prefill(cfg, params, tokens, lengths, cache_len, prefill_chunk, mesh, images=(None, None)):
    b, t = tokens.shape
    patches, mask = images
    # The vision path numbers patches within each run of placeholders it is given, so a prompt with images is
    # prefilled in one piece (a chunk boundary inside an image would restart its patch numbering).
    chunk = t if patches is not None else min(t, prefill_chunk)
    cache = _cache_maker(cfg, b, cache_len, mesh)()
    last = jnp.zeros((b, cfg.vocab_size), jnp.float32)
    for start in range(0, t, chunk):
        extra = () if patches is None else (patches[:, start:start + chunk], mask[:, start:start + chunk])
        cache, last = _prefill_chunk(cfg, params, cache, tokens[:, start:start + chunk], np.int32(start),
                                     lengths, last, *extra)
    return cache, last


def generate_batch(cfg, params, requests: Sequence[GenerationRequest], mesh=None, *,
                   decode: Callable[[list[int]], str] | None = None,
                   on_update: Callable[[int, list[int], bool], bool | None] | None = None,
                   decode_chunk: int = 16, prefill_chunk: int = 512, min_batch: int = 1
                   ) -> list[GenerationResult]:
    """Generates for every request in one batch; rows may differ in every setting.

    decode: token ids -> text; required when any request has stop strings.
    on_update(row, tokens_so_far, finished): called between decode chunks (streaming); tokens_so_far follows
    the same exclusions as the final result. Returning True cancels that row (finish_reason "cancelled").
    min_batch: pad the batch to at least this many rows (a server trades a little padding for fewer compiles).
    """
    if not requests:
        return []
    if not _is_pow2(prefill_chunk):
        raise ValueError(f"prefill_chunk={prefill_chunk} must be a power of two")
    prompts = [list(map(int, r.prompt)) for r in requests]
    _check_prompts(cfg, prompts)
    if any(r.stop_strings for r in requests) and decode is None:
        raise ValueError("stop strings need a `decode` function (token ids -> text)")
    for i, r in enumerate(requests):
        if r.max_new_tokens < 0 or r.temperature < 0 or not 0 < r.top_p <= 1 or r.top_k < 0:
            raise ValueError(f"request {i}: need max_new_tokens >= 0, temperature >= 0, 0 < top_p <= 1, "
                             f"top_k >= 0; got {r.max_new_tokens}, {r.temperature}, {r.top_p}, {r.top_k}")
        if not 0 <= r.top_logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"request {i}: top_logprobs={r.top_logprobs} is outside [0, {MAX_TOP_LOGPROBS}]")

    n = len(requests)
    b = _batch_bucket(n, mesh, min_batch)
    t = bucket(max(map(len, prompts)), MIN_PROMPT_BUCKET)
    if t > prefill_chunk:
        t = -(-t // prefill_chunk) * prefill_chunk
    new = bucket(max(r.max_new_tokens for r in requests), MIN_NEW_BUCKET)
    num_top = MAX_TOP_LOGPROBS if any(r.top_logprobs for r in requests) else 0

    def per_row(field, dtype, pad):
        return np.array([getattr(r, field) for r in requests] + [pad] * (b - n), dtype)

    max_new = per_row("max_new_tokens", np.int32, 0)
    temperature = per_row("temperature", np.float32, 0.0)
    top_p = per_row("top_p", np.float32, 1.0)
    top_k = per_row("top_k", np.int32, 0)
    seeds = np.array([r.seed & 0xFFFFFFFF for r in requests] + [0] * (b - n), np.uint32)
    n_stop = bucket(max(len(r.stop_token_ids) for r in requests), 1)
    stop_ids = np.full((b, n_stop), -1, np.int32)
    for i, r in enumerate(requests):
        stop_ids[i, :len(r.stop_token_ids)] = list(r.stop_token_ids)
    tokens, lengths = _padded_block(prompts, b, t)
    images = _image_block(cfg, requests, b, t)

    stepwise = on_update is not None or any(r.stop_strings for r in requests)
    chunk = max(1, decode_chunk) if stepwise else new
    host_final: dict[int, GenerationResult] = {}
    reported = [0] * n

    with _context(mesh):
        cache, last = _prefill(cfg, params, tokens, lengths, t + new, prefill_chunk, mesh, images)
        state = {
            "cache": cache, "last_logits": last, "step": np.int32(0), "done": max_new <= 0,
            "finish": np.where(max_new <= 0, FINISH_LENGTH, FINISH_RUNNING).astype(np.int32),
            "gen_len": np.zeros((b,), np.int32), "tokens": np.zeros((b, new), np.int32),
            "logprobs": np.zeros((b, new), np.float32),
        }
        if num_top:
            state["top_ids"] = np.zeros((b, new, num_top), np.int32)
            state["top_lps"] = np.zeros((b, new, num_top), np.float32)
        while True:
            step = int(state["step"])
            state = _decode(cfg, num_top, params, state, lengths, max_new, temperature, top_k, top_p, seeds,
                            stop_ids, np.int32(min(step + chunk, new)))
            if stepwise:
                _between_chunks(state, requests, decode, on_update, host_final, reported)
            if bool(jnp.all(state["done"])) or int(state["step"]) >= new:
                break
        host = jax.device_get({k: v for k, v in state.items() if k not in ("cache", "last_logits")})

    results = []
    for i, r in enumerate(requests):
        results.append(host_final[i] if i in host_final else _row_result(host, i, r))
    return results


def _row_tokens(host, i) -> tuple[list[int], int | None]:
    toks = host["tokens"][i, :host["gen_len"][i]].tolist()
    if host["finish"][i] == FINISH_STOP_TOKEN:
        return toks[:-1], toks[-1]
    return toks, None


def _row_result(host, i, request: GenerationRequest, keep: int | None = None, stop=None,
                reason: str = "stop") -> GenerationResult:
    toks, stop_token = _row_tokens(host, i)
    if keep is not None:
        toks = toks[:keep]
    else:
        reason, stop = ("stop", stop_token) if stop_token is not None else ("length", None)
    k = len(toks) + (1 if keep is None and stop_token is not None else 0)
    top = []
    if request.top_logprobs:
        ids, lps = host["top_ids"][i, :k, :request.top_logprobs], host["top_lps"][i, :k, :request.top_logprobs]
        top = [list(zip(map(int, a), map(float, v))) for a, v in zip(ids, lps)]
    return GenerationResult(toks, reason, stop, host["logprobs"][i, :k].tolist(), top)


def _between_chunks(state, requests, decode, on_update, host_final, reported) -> None:
    """Checks stop strings on decoded text, marks rows that hit one as done, and reports progress."""
    keys = ["tokens", "gen_len", "finish", "done", "logprobs"] + [k for k in ("top_ids", "top_lps") if k in state]
    host = jax.device_get({k: state[k] for k in keys})
    done = np.array(host["done"])
    for i, r in enumerate(requests):
        if i in host_final:
            continue
        toks, _ = _row_tokens(host, i)
        if r.stop_strings and len(toks) > reported[i]:
            # A new stop string must end in the new tokens: decode only them plus enough earlier tokens to
            # hold the rest of it (every token decodes to at least one character, save special ones).
            start = max(0, reported[i] - max(map(len, r.stop_strings)) - 2)
            text = decode(toks[start:])
            keep = None
            if any(s in text for s in r.stop_strings):  # the shortest prefix whose full text holds a stop string
                keep = next((k for k in range(reported[i] + 1, len(toks) + 1)
                             if any(s in decode(toks[:k]) for s in r.stop_strings)), None)
            if keep is not None:
                hit = decode(toks[:keep])
                stop = min((s for s in r.stop_strings if s in hit), key=hit.find)
                host_final[i] = _row_result(host, i, r, keep=keep, stop=stop)
                done[i] = True
                toks = toks[:keep]
        finished = bool(done[i])
        if on_update is not None and (len(toks) > reported[i] or finished):
            if on_update(i, toks, finished) and not finished:  # the consumer went away: stop the row
                host_final[i] = _row_result(host, i, r, keep=len(toks), reason="cancelled")
                done[i] = True
        reported[i] = len(toks)
        if finished and i not in host_final:
            host_final[i] = _row_result(host, i, r)
    state["done"] = done


def generate(cfg, params, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, top_k: int = 0, seed: int = 0, stop_token_ids: Sequence[int] | None = None,
             mesh=None, *, stop_strings: Sequence[str] = (), decode: Callable[[list[int]], str] | None = None,
             prefill_chunk: int = 512) -> list[list[int]]:
    """Generated token ids per prompt (prompt and the stop token excluded).

    stop_token_ids defaults to (cfg.eos_token_id,); pass () to generate exactly max_new_tokens. Row i samples
    with seed `seed + i`, so a row's text does not depend on the other rows. `params` may be sharded over
    `mesh` (e.g. from agentlm.checkpoint.load(path, mesh)); the batch is then split like training batches.
    """
    stops = (cfg.eos_token_id,) if stop_token_ids is None else tuple(stop_token_ids)
    requests = [GenerationRequest(p, max_new_tokens, temperature, top_p, top_k, seed + i, stops,
                                  tuple(stop_strings)) for i, p in enumerate(prompts)]
    results = generate_batch(cfg, params, requests, mesh, decode=decode, prefill_chunk=prefill_chunk)
    return [r.tokens for r in results]


def score(cfg, params, ids: Sequence[Sequence[int]], mesh=None, *, top_k: int = 0,
          prefill_chunk: int = 512, min_batch: int = 1) -> list[TokenScores]:
    """Log-likelihood of each token given the ones before it, for every sequence (one forward pass, batched).

    This is what /v1/completions echo + logprobs and log-likelihood benchmarks need.
    """
    if not ids:
        return []
    seqs = [list(map(int, s)) for s in ids]
    _check_prompts(cfg, seqs)
    if not 0 <= top_k <= MAX_TOP_LOGPROBS:
        raise ValueError(f"top_k={top_k} is outside [0, {MAX_TOP_LOGPROBS}]")
    n = len(seqs)
    b = _batch_bucket(n, mesh, min_batch)
    t = bucket(max(map(len, seqs)), MIN_PROMPT_BUCKET)
    if t > prefill_chunk:
        t = -(-t // prefill_chunk) * prefill_chunk
    tokens, lengths = _padded_block(seqs, b, t)
    targets = np.zeros_like(tokens)
    targets[:, :-1] = tokens[:, 1:]
    chunk = min(t, prefill_chunk)
    num_top = MAX_TOP_LOGPROBS if top_k else 0
    parts = []
    with _context(mesh):
        cache = _cache_maker(cfg, b, t, mesh)()
        for start in range(0, t, chunk):
            cache, lp, tid, tlp = _score_chunk(cfg, num_top, params, cache, tokens[:, start:start + chunk],
                                               targets[:, start:start + chunk], np.int32(start), lengths)
            parts.append(jax.device_get((lp, tid, tlp)))
    lp = np.concatenate([p[0] for p in parts], axis=1)
    tid = np.concatenate([p[1] for p in parts], axis=1)[..., :top_k]
    tlp = np.concatenate([p[2] for p in parts], axis=1)[..., :top_k]
    return [TokenScores(lp[i, :len(s) - 1], tid[i, :len(s) - 1], tlp[i, :len(s) - 1], tid[i, len(s) - 1],
                        tlp[i, len(s) - 1]) for i, s in enumerate(seqs)]
