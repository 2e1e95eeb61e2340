"""A stand-in for InferenceEngine whose "model" is a tool domain's gold-solution oracle, so the real OpenAI server
(FastAPI app, chat template, tool rendering, tool_calls parsing) can be driven end to end without a trained model.

It sees only what a model sees: the prompt token ids the server rendered. It decodes them, finds the episode's
task by its goal text, counts the assistant replies already given after the goal (each ends with EOS in the
Llama-2 template) and answers the next gold step in the text action format, as token ids. Every prompt is
recorded, so a test can compare what the model was shown under each protocol.
"""
from __future__ import annotations

import concurrent.futures
import threading
import types

from agentlm.envs.tools.oracle import solution_step, step_text
from agentlm.infer.generate import GenerationResult


class OracleEngine:
    def __init__(self, tokenizer, tasks, max_model_len: int = 16384):
        self.tokenizer = tokenizer
        self.cfg = types.SimpleNamespace(max_position_embeddings=max_model_len, vocab_size=tokenizer.vocab_size,
                                         eos_token_id=tokenizer.eos_id)
        self.tasks = {t.data["goal"]: t for t in tasks}
        self.prompts: list[tuple[int, ...]] = []
        self._lock = threading.Lock()

    def _reply(self, prompt: list[int]) -> list[int]:
        eos = self.tokenizer.eos_id
        segments, current = [], []
        for t in prompt:
            current.append(t)
            if t == eos:
                segments.append(current)
                current = []
        segments.append(current)
        texts = [self.tokenizer.decode(s) for s in segments]
        for g, text in enumerate(texts):
            hits = [goal for goal in self.tasks if goal in text]
            if hits:
                task = self.tasks[max(hits, key=len)]
                return self.tokenizer.encode(step_text(solution_step(task, len(segments) - 1 - g)))
        return self.tokenizer.encode("Final Answer: I do not recognise this task.")

    def submit_generate(self, requests, on_update=None) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        results = []
        for r in requests:
            with self._lock:
                self.prompts.append(tuple(r.prompt))
            tokens = self._reply(list(r.prompt))[:r.max_new_tokens]
            if on_update is not None:
                on_update(len(results), tokens, True)
            results.append(GenerationResult(tokens, "stop", self.tokenizer.eos_id, [0.0] * (len(tokens) + 1)))
        future.set_result(results)
        return future

    def close(self) -> None:
        pass
