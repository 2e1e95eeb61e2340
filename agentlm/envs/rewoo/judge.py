"""The pluggable answer judge for ReWOO's free-text answers: any OpenAI-compatible chat endpoint says CORRECT or
INCORRECT for (question, gold answer, model answer), as the paper's GPT judge (LangChain's QAEvalChain) did. With
no judge configured, free-text answers are scored by F1 and reports say so."""
from __future__ import annotations

import os

from agentlm.api_retry import RetryPolicy, chat_completion

PROMPT = """You grade an answer to a question against the reference answer. Judge only whether the student's
answer agrees with the reference in substance; ignore wording, style and extra detail that does not contradict it.

Question: {question}
Reference answer: {gold}
Student answer: {answer}

Reply with one word: CORRECT or INCORRECT."""


class OpenAIJudge:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, client=None):
        if client is None:
            import openai

            client = openai.OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
                                   max_retries=0, timeout=120.0)
        self.client, self.model = client, model
        self.retry = RetryPolicy(max_retries=2, backoff_max_s=20.0)  # the project's one policy (agentlm.api_retry)

    def _ask(self, prompt: str) -> str:
        out = chat_completion(self.client, self.retry, model=self.model, temperature=0.0, max_tokens=5,
                              messages=[{"role": "user", "content": prompt}])
        return out.choices[0].message.content or ""

    def __call__(self, question: str, gold: str, answer: str) -> bool:
        verdict = self._ask(PROMPT.format(question=question, gold=gold, answer=answer)).strip().upper()
        if verdict.startswith("CORRECT"):
            return True
        if verdict.startswith("INCORRECT"):
            return False
        raise ValueError(f"judge {self.model}: expected CORRECT or INCORRECT, got {verdict[:80]!r}")
