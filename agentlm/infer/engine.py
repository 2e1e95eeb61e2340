"""A model plus a scheduler thread that turns concurrent requests into batched generate / score calls.

Callers (HTTP handler threads, evaluation workers calling `LocalModelAgent.act`) submit jobs and block on a
future. The scheduler takes the first waiting job, keeps collecting for `batch_wait_s` (or until
`max_batch_rows` rows), then runs one `score` call for every scoring job and one `generate_batch` for every
generation row of the collected set. One thread owns the device, so calls never interleave on it, and rows
that arrive within a few milliseconds of each other share a forward pass.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from typing import Callable, Sequence

from agentlm.infer.generate import GenerationRequest, GenerationResult, TokenScores, generate_batch, score

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Job:
    kind: str  # "generate" | "score"
    rows: list  # GenerationRequest for generate, token-id lists for score
    future: concurrent.futures.Future
    top_k: int = 0
    # streaming: called with (row index within this job, tokens so far, finished); returning True cancels the row
    on_update: Callable[[int, list[int], bool], bool | None] | None = None


class InferenceEngine:
    """Owns (cfg, params, tokenizer, mesh) and serialises device work through one batching thread."""

    def __init__(self, cfg, params, tokenizer=None, mesh=None, *, max_batch_rows: int = 32,
                 batch_wait_s: float = 0.005, decode_chunk: int = 16, prefill_chunk: int = 512,
                 min_batch_rows: int = 8):
        self.cfg, self.params, self.tokenizer, self.mesh = cfg, params, tokenizer, mesh
        self.max_batch_rows, self.batch_wait_s = max_batch_rows, batch_wait_s
        self.decode_chunk, self.prefill_chunk = decode_chunk, prefill_chunk
        # Small batches are padded up to min_batch_rows: on an accelerator a few idle rows cost next to nothing,
        # and the server then compiles one shape for every batch of up to that many requests.
        self.min_batch_rows = min_batch_rows
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=10_000)  # rows per device call
        self.finish_reasons: collections.Counter[str] = collections.Counter()  # generated rows by how they ended
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending: collections.deque[_Job] = collections.deque()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentlm-infer-scheduler", daemon=True)
        self._thread.start()

    # ---- public API -----------------------------------------------------------------------------
    def submit_generate(self, requests: Sequence[GenerationRequest],
                        on_update: Callable[[int, list[int], bool], bool | None] | None = None
                        ) -> concurrent.futures.Future:
        """Future of list[GenerationResult], one per request (all rows of a job run in the same batch)."""
        return self._submit(_Job("generate", list(requests), concurrent.futures.Future(), on_update=on_update))

    def submit_score(self, sequences: Sequence[Sequence[int]], top_k: int = 0) -> concurrent.futures.Future:
        """Future of list[TokenScores]."""
        return self._submit(_Job("score", [list(s) for s in sequences], concurrent.futures.Future(), top_k=top_k))

    def generate(self, requests: Sequence[GenerationRequest], timeout: float | None = None) -> list[GenerationResult]:
        return self.submit_generate(requests).result(timeout)

    def score(self, sequences: Sequence[Sequence[int]], top_k: int = 0,
              timeout: float | None = None) -> list[TokenScores]:
        return self.submit_score(sequences, top_k).result(timeout)

    def decode(self, ids) -> str:
        if self.tokenizer is None:
            raise ValueError("this engine has no tokenizer; text in or out needs one")
        return self.tokenizer.decode(list(ids))

    def close(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout)

    # ---- scheduler ------------------------------------------------------------------------------
    def _submit(self, job: _Job) -> concurrent.futures.Future:
        if self._stopped.is_set():
            raise RuntimeError("the inference engine is closed")
        if not job.rows:
            job.future.set_result([])
        else:
            self._queue.put(job)
        return job.future

    def _next_job(self, timeout: float | None) -> _Job | None:
        if self._pending:
            return self._pending.popleft()
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _collect(self) -> list[_Job]:
        first = self._next_job(None)
        if first is None:
            return []
        jobs, rows = [first], len(first.rows)
        deadline = time.monotonic() + self.batch_wait_s
        while rows < self.max_batch_rows:
            job = self._next_job(deadline - time.monotonic())
            if job is None:
                break
            if rows + len(job.rows) > self.max_batch_rows:
                self._pending.appendleft(job)  # first in line for the next batch
                break
            jobs.append(job)
            rows += len(job.rows)
        return jobs

    def _run(self) -> None:
        while not self._stopped.is_set():
            jobs = self._collect()
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            for kind, runner in (("score", self._run_score), ("generate", self._run_generate)):
                group = [j for j in jobs if j.kind == kind]
                if not group:
                    continue
                try:
                    runner(group)
                except Exception as err:  # a bad batch fails its own requests, never the server
                    log.exception("inference batch failed")
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(err)
        while self._pending or not self._queue.empty():  # fail whatever is left after close()
            job = self._next_job(0)
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the inference engine was closed"))

    def _slices(self, n: int):
        """Row ranges of at most max_batch_rows (one oversized request is run in several device calls)."""
        return [(s, min(s + self.max_batch_rows, n)) for s in range(0, n, self.max_batch_rows)]

    def _run_score(self, jobs: list[_Job]) -> None:
        seqs = [s for j in jobs for s in j.rows]
        top_k = max(j.top_k for j in jobs)
        scores = []
        for lo, hi in self._slices(len(seqs)):
            self.batch_sizes.append(hi - lo)
            scores += score(self.cfg, self.params, seqs[lo:hi], self.mesh, top_k=top_k,
                            prefill_chunk=self.prefill_chunk, min_batch=self.min_batch_rows)
        offset = 0
        for j in jobs:
            mine = scores[offset:offset + len(j.rows)]
            offset += len(j.rows)
            j.future.set_result([TokenScores(s.logprobs, s.top_ids[:, :j.top_k], s.top_logprobs[:, :j.top_k],
                                             s.next_top_ids[:j.top_k], s.next_top_logprobs[:j.top_k])
                                 for s in mine])

    def _run_generate(self, jobs: list[_Job]) -> None:
        rows = [r for j in jobs for r in j.rows]
        owner = [(j, i) for j in jobs for i in range(len(j.rows))]
        streaming = any(j.on_update for j in jobs)
        base = 0  # first row of the slice being generated

        def on_update(row, tokens, finished):
            job, local = owner[base + row]
            if job.on_update is None:
                return False
            try:
                return bool(job.on_update(local, tokens, finished))
            except Exception:  # a broken stream consumer cancels its own row only
                log.exception("stream callback failed; cancelling the row")
                return True

        decode = self.tokenizer.decode if self.tokenizer is not None else None
        results = []
        for base, hi in self._slices(len(rows)):
            self.batch_sizes.append(hi - base)
            results += generate_batch(self.cfg, self.params, rows[base:hi], self.mesh, decode=decode,
                                      on_update=on_update if streaming else None, decode_chunk=self.decode_chunk,
                                      prefill_chunk=self.prefill_chunk, min_batch=self.min_batch_rows)
        self.finish_reasons.update(r.finish_reason for r in results)
        offset = 0
        for j in jobs:
            j.future.set_result(results[offset:offset + len(j.rows)])
            offset += len(j.rows)
