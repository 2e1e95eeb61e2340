"""The model under test, as the general benchmarks see it: raw completion, chat, and continuation log-likelihood.

Two ways in, one interface, so every benchmark runs the same code whether the model is served or in memory:
- `EndpointModel`: any OpenAI-compatible server (ours, vLLM, TGI) through the official openai client.
  Completions go to /v1/completions, chat to /v1/chat/completions, and log-likelihoods use /v1/completions with
  `echo=True, logprobs=1` (the request lm-evaluation-harness makes), summing the log-probabilities of the tokens
  that the continuation adds to its context's tokenisation.
- `LocalModel`: a checkpoint in this process, through `agentlm.infer.generate` and `agentlm.infer.score`, with the
  same chat template as training (`agentlm.data.template`, which also accepts OpenAI-style messages).
Decoding is greedy everywhere, like the paper's evaluation.
"""
from __future__ import annotations

import abc
import concurrent.futures as cf
from typing import Sequence

from agentlm.api_retry import RetryPolicy, call_with_retries

Messages = list[dict]  # OpenAI chat messages: [{"role": "system"|"user"|"assistant", "content": str}, ...]


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cuts generated text at the earliest stop string (servers may cap how many stop strings they honour)."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]


class EvalModel(abc.ABC):
    """What a benchmark needs from the model under test. All calls take batches; implementations parallelise."""

    name: str = "model"

    @abc.abstractmethod
    def complete(self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        """Greedy raw-text continuation of each prompt (no chat template), cut at the first stop string."""

    @abc.abstractmethod
    def chat(self, conversations: Sequence[Messages], max_tokens: int) -> list[str]:
        """Greedy assistant reply to each conversation, rendered with the model's chat template."""

    @abc.abstractmethod
    def loglikelihoods(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """Sum of log p(continuation tokens | context) for each (context, continuation) pair."""


class EndpointModel(EvalModel):
    """A model behind an OpenAI-compatible HTTP endpoint (base URL ending in /v1)."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 600.0, max_retries: int = 2):
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=0)
        self.retry = RetryPolicy(max_retries=max_retries)  # the project's one policy (agentlm.api_retry)
        self.base_url = base_url
        if model is None:  # a single-model server: ask it which one
            listed = [m.id for m in self.client.models.list().data]
            if not listed:
                raise RuntimeError(f"{base_url}/models lists no model; pass model=")
            model = listed[0]
        self.model = model
        self.name = model
        self.concurrency = max(1, concurrency)

    def _call(self, create, **request):
        return call_with_retries(lambda: create(**request), self.retry)

    def _map(self, fn, items):
        # Concurrent requests let the server batch them together; results keep the input order.
        with cf.ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    def complete(self, prompts, max_tokens, stop=()):
        stop = list(stop)

        def one(prompt):
            r = self._call(self.client.completions.create, model=self.model, prompt=prompt, max_tokens=max_tokens,
                           temperature=0.0, stop=stop[:4] or None)
            return truncate_at_stop(r.choices[0].text, stop)

        return self._map(one, list(prompts))

    def chat(self, conversations, max_tokens):
        def one(messages):
            r = self._call(self.client.chat.completions.create, model=self.model, messages=messages,
                           max_tokens=max_tokens, temperature=0.0)
            return r.choices[0].message.content or ""

        return self._map(one, list(conversations))

    def _prompt_logprobs(self, prompt: str) -> list[float | None]:
        """log p of each prompt token given the ones before it, as the server tokenised the prompt."""
        r = self._call(self.client.completions.create, model=self.model, prompt=prompt, max_tokens=1, echo=True,
                       logprobs=1, temperature=0.0)
        lp = r.choices[0].logprobs
        if lp is None or lp.token_logprobs is None:
            raise RuntimeError(f"{self.base_url}: /v1/completions with echo=True, logprobs=1 returned no "
                               "token_logprobs; the server cannot score log-likelihoods (use mmlu.method=generate)")
        n_prompt = r.usage.prompt_tokens if r.usage is not None else len(lp.token_logprobs) - 1
        return list(lp.token_logprobs[:n_prompt])

    def loglikelihoods(self, requests):
        # lm-evaluation-harness's split, by token counts rather than character offsets (servers differ in how
        # they count the BOS token and SentencePiece's leading space in text_offset): the context's own tokens,
        # then whatever the tokenisation of context + continuation adds. Context lengths are asked once each.
        contexts = sorted({c for c, _ in requests})
        n_ctx = dict(zip(contexts, self._map(lambda c: len(self._prompt_logprobs(c)), contexts)))

        def one(req):
            context, continuation = req
            scores = self._prompt_logprobs(context + continuation)[n_ctx[context]:]
            if not scores:
                raise RuntimeError(f"{self.base_url}: continuation {continuation!r} added no tokens to its context")
            if any(x is None for x in scores):
                raise RuntimeError(f"{self.base_url}: a continuation token of {continuation!r} has no logprob")
            return float(sum(scores))

        return self._map(one, list(requests))


class LocalModel(EvalModel):
    """A checkpoint evaluated in this process: `agentlm.infer.generate` / `agentlm.infer.score` and the training
    chat template (`agentlm.data.template`), so prompts tokenise exactly as they did in training."""

    def __init__(self, cfg, params, tokenizer, template: str = "llama2", name: str = "local", batch_size: int = 8,
                 max_len: int | None = None, mesh=None):
        from agentlm.data import template as tmpl

        self.cfg, self.params, self.tokenizer, self.template = cfg, params, tokenizer, template
        self.name, self.batch_size, self.mesh = name, batch_size, mesh
        self.max_len = max_len or int(cfg.max_position_embeddings)
        self.bos = [tokenizer.bos_id] if tokenizer.bos_id is not None else []
        self.stop_ids = tmpl.stop_ids(tokenizer, template)

    @classmethod
    def from_checkpoint(cls, path: str, tokenizer_path: str, template: str = "llama2", mesh=None,
                        **kw) -> "LocalModel":
        from agentlm.data.tokenizer import load_tokenizer
        from agentlm.infer.serve import load_model

        cfg, params = load_model(path, mesh)  # an agentlm model/run directory or a Hugging Face directory
        return cls(cfg, params, load_tokenizer(tokenizer_path), template=template, name=str(path), mesh=mesh, **kw)

    def _generate(self, prompt_ids: list[list[int]], max_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        from agentlm.infer import generate
        from agentlm.infer.openai_api import continuation_text  # decoded behind the prompt: leading spaces kept

        keep = self.max_len - max_tokens
        if keep <= 0:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for a prompt in {self.max_len} positions")
        texts = []
        for i in range(0, len(prompt_ids), self.batch_size):
            batch = [ids[-keep:] for ids in prompt_ids[i:i + self.batch_size]]
            out = generate(self.cfg, self.params, batch, max_new_tokens=max_tokens, temperature=0.0,
                           stop_token_ids=self.stop_ids, mesh=self.mesh, stop_strings=tuple(stop),
                           decode=self.tokenizer.decode)
            texts.extend(truncate_at_stop(continuation_text(self.tokenizer, ids, prompt), stop)
                         for ids, prompt in zip(out, batch))
        return texts

    def complete(self, prompts, max_tokens, stop=()):
        return self._generate([self.bos + self.tokenizer.encode(p) for p in prompts], max_tokens, stop)

    def chat(self, conversations, max_tokens):
        from agentlm.data import template as tmpl

        ids = [tmpl.render_prompt(list(m), self.tokenizer, self.template) for m in conversations]
        return [t.strip() for t in self._generate(ids, max_tokens)]  # a reply is stripped, like the server's

    def loglikelihoods(self, requests):
        from agentlm.infer import score

        # lm-evaluation-harness's split: the context's own tokens, then whatever encoding the whole string adds.
        rows = []
        for context, continuation in requests:
            n_ctx = len(self.bos + self.tokenizer.encode(context))
            full = self.bos + self.tokenizer.encode(context + continuation)
            n_cont = max(1, len(full) - n_ctx)
            rows.append((full[-self.max_len:], n_cont))
        out = [0.0] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # similar lengths share a padded batch
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            scores = score(self.cfg, self.params, [rows[i][0] for i in idx], self.mesh)
            for i, sc in zip(idx, scores):
                out[i] = float(sc.logprobs[-rows[i][1]:].sum())  # logprobs[t] = log p(ids[t+1] | ids[:t+1])
        return out


def find_tokenizer(checkpoint_dir: str, explicit: str | None = None) -> str:
    """The tokenizer for a checkpoint: the explicit path, else a tokenizer.model/.json in or beside the directory."""
    import pathlib

    if explicit:
        return explicit
    ckpt = pathlib.Path(checkpoint_dir)
    for d in (ckpt, ckpt.parent):
        for name in ("tokenizer.model", "tokenizer.json"):
            if (d / name).is_file():
                return str(d / name)
    raise ValueError(f"no tokenizer.model or tokenizer.json in or beside {checkpoint_dir}; set config.tokenizer")


def make_model(spec: str, *, model_name: str | None = None, api_key: str | None = None, tokenizer: str | None = None,
               template: str = "llama2", concurrency: int = 8, batch_size: int = 8) -> EvalModel:
    """`http(s)://...` -> EndpointModel (base URL of the /v1 API); anything else -> a checkpoint directory."""
    if spec.startswith(("http://", "https://")):
        return EndpointModel(spec, model=model_name, api_key=api_key, concurrency=concurrency)
    import pathlib

    if not pathlib.Path(spec).is_dir():
        raise ValueError(f"model {spec!r}: not an http(s) endpoint URL or an existing checkpoint directory")
    return LocalModel.from_checkpoint(spec, find_tokenizer(spec, tokenizer), template=template,
                                      batch_size=batch_size)
