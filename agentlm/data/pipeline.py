"""The trainer's entry point: a deterministic, resumable, per-process iterator of packed numpy batches.

    it = make_batch_iterator(config, batch_size=64, seq_len=4096, seed=0, start_step=0,
                             process_index=jax.process_index(), process_count=jax.process_count())
    batch = next(it)     # {"inputs", "targets", "positions", "segment_ids", "loss_weights"}: [64 // P, 4096]
                         # (+ "image_mask" [.., 4096] and "image_patches" [.., 4096, p*p*3] when image_patch > 0)

Data path: the config's files -> tfds builders (validated) -> seqio Tasks (rendered with the chat template) ->
the registered seqio Mixture `config.name` whose rates carry eta -> `SourceSchedule` (stratified proportional
sampling, agentlm.data.sampling) -> over-length policy (per source, before sampling) -> first-fit packing.

Determinism and resume: the conversation stream is a pure function of (seed, stream index), and batch s starts
where batch s - 1 ended. `start_step=s` replays the packing plan of steps 0..s-1 from conversation *lengths*
only (a few ms per step at 64 x 4096), so a restarted run yields exactly batches s, s+1, ... of an uninterrupted
run. `it.position` is the stream index of the next batch; passing it back as `start_position` (with
`start_step`) skips the replay -- store it in the checkpoint's `meta` if runs are very long.

Sharding across processes: every process plans the same global batch of `batch_size` rows and materialises
only rows [p * batch_size / P, (p + 1) * batch_size / P) -- the contiguous block that
`jax.make_array_from_process_local_data` expects for a batch axis sharded over processes in order.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import zlib

import numpy as np
import seqio

from agentlm.data import packing, tasks
from agentlm.data.sampling import SourceSchedule

# What determines the rendered examples (eta and weights only change rates, so they are not part of the key).
_HOLDOUT_SALT = 0x401D
DATA_FIELDS = ("agent_paths", "general_paths", "tokenizer", "template", "system", "strict", "cache_dir", "image_patch",
               "image_token_id")


@dataclasses.dataclass
class Source:
    name: str           # seqio task name, e.g. "agent_os"
    kind: str           # "agent" or "general"
    row_ids: list       # the rows' "id" fields, in file order
    ids: list           # int32 token id arrays, one per conversation
    masks: list         # int32 loss masks
    exchange_ends: list
    # vision mixtures (config.image_patch > 0): per conversation (image_mask int32 [n], uint8 patches [k, P])
    images: list | None = None

    @property
    def num_tokens(self) -> int:
        return int(sum(len(x) for x in self.ids))

    @property
    def num_loss_tokens(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks))


@dataclasses.dataclass
class LoadedData:
    sources: list[Source]
    sizes: dict          # {"agent": {split: n}, "general": {split: n}}
    reports: dict        # kind -> ValidationReport
    _views: dict = dataclasses.field(default_factory=dict)

    def view(self, seq_len: int, policy: str, holdout: int = 0) -> "PolicyView":
        key = (int(seq_len), policy, int(holdout))
        if key not in self._views:
            self._views[key] = PolicyView(self, seq_len, policy, holdout)
        return self._views[key]


class PolicyView:
    """Per-source conversations after the over-length policy and the eval hold-out, with slot counts.

    `holdout` conversations of every source (a fixed pseudo-random choice that depends only on the source name,
    not on the seed) are removed from training and kept in `eval_examples`.
    """

    def __init__(self, data: LoadedData, seq_len: int, policy: str, holdout: int = 0):
        self.seq_len, self.policy, self.holdout = seq_len, policy, holdout
        self.examples, self.origin, self.slots, self.counts, self.eval_examples = [], [], [], [], []
        for src in data.sources:
            n = len(src.ids)
            if holdout and holdout >= n:
                raise ValueError(f"eval_holdout={holdout} would hold out all {n} conversations of {src.name}")
            held = set(np.random.default_rng([_HOLDOUT_SALT, zlib.crc32(src.name.encode())])
                       .permutation(n)[:holdout].tolist())
            kept, origin, evals, counts = [], [], [], collections.Counter()
            for k, (ids, mask, ends) in enumerate(zip(src.ids, src.masks, src.exchange_ends)):
                ids2, mask2, status = packing.apply_length_policy(ids, mask, ends, seq_len, policy)
                example = (ids2, mask2)
                if ids2 is not None and src.images is not None:   # the patches of the kept prefix ride along
                    example += packing.cut_images(*src.images[k], len(ids2))
                if k in held:
                    if ids2 is not None:
                        evals.append(example)
                    continue
                counts[status] += 1
                if ids2 is not None:
                    kept.append(example)
                    origin.append(k)
            self.examples.append(kept)
            self.origin.append(np.asarray(origin, np.int64))   # index in src.ids of each kept conversation
            self.slots.append(np.asarray([len(ex[0]) - 1 for ex in kept], np.int64))
            self.counts.append(counts)
            self.eval_examples.append(evals)


def _config_key(config) -> str:
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.dumps({k: d.get(k) for k in DATA_FIELDS}, sort_keys=True, default=str)


_LOADED: dict[str, LoadedData] = {}


def load(config, verbose: bool = True) -> LoadedData:
    """Prepare + register the config's Tasks and read every Task into memory (cached per data fields)."""
    key = _config_key(config)
    if key in _LOADED:
        return _LOADED[key]
    sizes, reports = tasks.register_tasks(config, verbose=verbose)
    sources = []
    for kind in ("agent", "general"):
        for split in sorted(sizes[kind]):
            task = seqio.get_mixture_or_task(f"{kind}_{split}")
            row_ids, ids, masks, ends, images = [], [], [], [], []
            ds = task.get_dataset(sequence_length=None, split="train", shuffle=False, use_cached=False, num_epochs=1)
            for ex in ds.as_numpy_iterator():
                row_ids.append(ex["id"].decode("utf-8"))
                ids.append(ex["targets"])
                masks.append(ex["loss_mask"])
                ends.append(ex["exchange_ends"])
                if "image_mask" in ex:
                    images.append((ex["image_mask"], ex["image_patches"]))
            sources.append(Source(task.name, kind, row_ids, ids, masks, ends,
                                  images if patch_dim(config) and images else None))
    data = LoadedData(sources, sizes, reports)
    _LOADED[key] = data
    return data


def patch_dim(config) -> int:
    """Values per image patch of a vision mixture (config.image_patch > 0), 0 for a text-only one."""
    p = int(config.get("image_patch", 0) or 0)
    return p * p * 3


def source_rates(config, data: LoadedData) -> list[float]:
    """Register the Mixture `config.name` (rates from eta) and return each source's rate, in data.sources order."""
    mixture = tasks.register_mixture(config, data.sizes)
    return [float(mixture.get_rate(seqio.get_mixture_or_task(src.name))) for src in data.sources]


class BatchIterator:
    """Iterator of this process's share of the packed global batches; see the module docstring."""

    def __init__(self, data: LoadedData, rates, batch_size: int, seq_len: int, seed: int, start_step: int = 0,
                 process_index: int = 0, process_count: int = 1, policy: str = "truncate",
                 start_position: int | None = None, rows: tuple[int, int] | None = None, holdout: int = 0,
                 patch_dim: int = 0):
        if batch_size <= 0 or seq_len <= 1:
            raise ValueError(f"need batch_size > 0 and seq_len > 1, got {batch_size}, {seq_len}")
        if process_count <= 0 or not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} is not in [0, process_count={process_count})")
        if batch_size % process_count:
            raise ValueError(f"global batch_size={batch_size} is not divisible by process_count={process_count}")
        self.data, self.view = data, data.view(seq_len, policy, holdout)
        self.batch_size, self.seq_len, self.patch_dim = batch_size, seq_len, patch_dim
        self.rows = _row_block(batch_size, process_index, process_count, rows)
        self.source_names = [s.name for s in data.sources]
        self.rates = [float(r) for r in rates]
        active = [i for i, r in enumerate(self.rates) if r > 0]
        for i in active:
            if not self.view.examples[i]:
                hint = "raise seq_len" + (" or use policy 'truncate'" if policy == "drop" else
                                          " (even the first trained exchange of every conversation is longer)")
                raise ValueError(f"source {self.source_names[i]} has no conversation that fits seq_len={seq_len} "
                                 f"under policy {policy!r} ({dict(self.view.counts[i])}): {hint}, or give it "
                                 "weight 0 in config.agent_weights")
        self._active = active
        # slot counts as one [source, example] table (ragged rows padded with 0) for vectorised look-ups
        width = max((len(x) for x in self.view.slots), default=0)
        self._slot_table = np.zeros((len(self.view.slots), max(width, 1)), np.int64)
        for i, sl in enumerate(self.view.slots):
            self._slot_table[i, :len(sl)] = sl
        self._min_slots = int(min((sl.min() for sl in self.view.slots if len(sl)), default=1))
        self.schedule = SourceSchedule([self.rates[i] for i in active],
                                       [len(self.view.examples[i]) for i in active], seed)
        self.step, self.position = 0, 0
        self.last_sources = np.zeros(0, np.int64)     # source index of every conversation of the last global batch
        if start_position is not None:
            self.step, self.position = int(start_step), int(start_position)
        else:
            while self.step < start_step:
                self._plan()
                self.step += 1

    def _lookup(self, start: int, count: int):
        src, idx = self.schedule.lookup(start, count)
        return np.asarray(self._active)[src], idx

    def _plan(self):
        """Plan the global batch at self.position; advance the position; return (rows, sources, indices)."""
        chunk = max(256, 16 * self.batch_size)
        srcs, idxs, lens = [], [], []        # looked-up stream entries from self.position on, in chunks

        def extend():
            src, idx = self._lookup(self.position + sum(len(x) for x in srcs), chunk)
            srcs.append(src)
            idxs.append(idx)
            lens.extend(self._slot_table[src, idx].tolist())

        def slots(i):
            while i >= len(lens):
                extend()
            return lens[i]

        rows, consumed = packing.plan_batch(slots, self.batch_size, self.seq_len, self._min_slots)
        self.position += consumed
        return rows, np.concatenate(srcs)[:consumed], np.concatenate(idxs)[:consumed]

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rows, src, idx = self._plan()
        self.step += 1
        self.last_sources = src
        mine = rows[self.rows[0]:self.rows[1]]
        examples = [[self.view.examples[src[i]][idx[i]] for i in row] for row in mine]
        return packing.pack_rows(examples, self.seq_len, self.patch_dim)

    def state(self) -> dict:
        """JSON-able position for checkpoint metadata (the next batch's step and stream index)."""
        return {"step": self.step, "position": self.position}

    def restore(self, state: dict) -> None:
        """Continue from a `state()`: the next batch is the one that followed it in the original run."""
        self.step, self.position = int(state["step"]), int(state["position"])


def _row_block(batch_size, process_index, process_count, rows):
    if rows is None:
        per = batch_size // process_count
        rows = (process_index * per, (process_index + 1) * per)
    if not 0 <= rows[0] < rows[1] <= batch_size:
        raise ValueError(f"rows={rows} is not a non-empty range inside the global batch of {batch_size}")
    return int(rows[0]), int(rows[1])


def make_batch_iterator(config, batch_size: int, seq_len: int, seed: int = 0, start_step: int = 0,
                        process_index: int = 0, process_count: int = 1, start_position: int | None = None,
                        rows: tuple[int, int] | None = None, verbose: bool = True) -> BatchIterator:
    """The trainer's iterator; `config` is a mixture ConfigDict (configs/mixture/*.py, agentlm.data.config).

    `rows=(start, stop)` overrides the process_index/process_count block when the mesh decides which global
    rows this process holds.
    """
    data = load(config, verbose)
    return BatchIterator(data, source_rates(config, data), batch_size, seq_len, seed, start_step, process_index,
                         process_count, config.get("overlength", "truncate"), start_position, rows,
                         int(config.get("eval_holdout", 0)), patch_dim(config))


def make_eval_batches(config, batch_size: int, seq_len: int, pool: str = "agent", process_index: int = 0,
                      process_count: int = 1, rows: tuple[int, int] | None = None,
                      verbose: bool = False) -> list[dict[str, np.ndarray]]:
    """Every held-out conversation (`config.eval_holdout` per Task) of `pool` exactly once, packed first-fit in
    Task order into global batches; returns this process's rows of each. `pool`: "agent", "general", "all" or a
    Task name. The last batch may have empty (all-padding) rows; they carry zero loss weight.
    """
    holdout = int(config.get("eval_holdout", 0))
    if holdout <= 0:
        raise ValueError("config.eval_holdout is 0: no conversations are held out for evaluation")
    if batch_size % process_count:
        raise ValueError(f"global batch_size={batch_size} is not divisible by process_count={process_count}")
    block = _row_block(batch_size, process_index, process_count, rows)
    data = load(config, verbose)
    view = data.view(seq_len, config.get("overlength", "truncate"), holdout)
    names = [s.name for s in data.sources]
    if pool in ("agent", "general", "all"):
        chosen = [i for i, s in enumerate(data.sources) if pool in ("all", s.kind)]
    elif pool in names:
        chosen = [names.index(pool)]
    else:
        raise ValueError(f"eval pool {pool!r} is not agent/general/all or one of {names}")
    examples = [ex for i in chosen for ex in view.eval_examples[i]]
    if not examples:
        raise ValueError(f"no held-out conversation of pool {pool!r} fits seq_len={seq_len}")
    batches, start = [], 0
    while start < len(examples):
        plan, used = packing.plan_batch(
            lambda i: len(examples[start + i][0]) - 1 if start + i < len(examples) else None, batch_size, seq_len)
        batches.append(packing.pack_rows([[examples[start + i] for i in row] for row in plan[block[0]:block[1]]],
                                         seq_len, patch_dim(config)))
        start += used
    return batches
