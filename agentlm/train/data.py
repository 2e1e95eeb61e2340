"""Where the trainer's batches come from, and how each process's rows become one global array.

A batch source yields this process's rows of every global batch as numpy arrays (docs/architecture.md, Batches)
and reports its data position as JSON (`state()` / `restore(state)`), which checkpoints save next to the model.
Which rows a process must load is decided by the batch sharding on the mesh, never assumed: a process builds
exactly the rows its devices hold, and `jax.make_array_from_process_local_data` stitches the global array.
"""
from __future__ import annotations

import jax
import numpy as np

from agentlm.train.step import BATCH_KEYS, IMAGE_KEYS
from agentlm.train.synthetic import SyntheticSource


def process_rows(batch_sharding, global_batch: int, seq_len: int) -> tuple[int, int]:
    """The contiguous block [start, stop) of batch rows this process's devices hold."""
    index_map = batch_sharding.addressable_devices_indices_map((global_batch, seq_len))
    rows = set()
    for idx in index_map.values():
        rows.update(range(*idx[0].indices(global_batch)))
    start, stop = min(rows), max(rows) + 1
    if len(rows) != stop - start:
        raise ValueError(f"this process's devices hold non-contiguous batch rows {sorted(rows)}; order the mesh so "
                         "that each process's devices are adjacent on the batch axes")
    return start, stop


def to_global(local: dict[str, np.ndarray], shardings, global_batch: int) -> dict[str, jax.Array]:
    """Assembles the global [B, T] arrays from every process's rows (no cross-host copy of the data); the keys
    are those of `shardings` (a vision model's also hold the image arrays)."""
    out = {}
    for key in shardings:
        if key not in local:
            hint = (" (a vision model needs a mixture with image_patch set to its patch size)"
                    if key in IMAGE_KEYS else "")
            raise KeyError(f"batch is missing {key!r}; the batch contract needs {tuple(shardings)}{hint}")
        x = np.asarray(local[key])
        out[key] = jax.make_array_from_process_local_data(shardings[key], x, (global_batch, *x.shape[1:]))
    return out


def make_sources(config, cfg, rows: tuple[int, int]):
    """(train source, eval source or None) for data.source; the eval source yields held-out rows of the same shape."""
    d = config.data
    if d.source == "synthetic":
        common = dict(seq_len=d.seq_len, global_batch_size=d.global_batch_size, row_start=rows[0], row_stop=rows[1],
                      seed=config.seed, vocab_size=cfg.vocab_size, alphabet=d.synthetic.alphabet,
                      min_len=d.synthetic.min_len, max_len=d.synthetic.max_len)
        return SyntheticSource(split="train", **common), SyntheticSource(split="eval", **common)
    return _mixture_sources(config, cfg, rows)


def _mixture_sources(config, cfg, rows):
    from agentlm.train import mixture  # imports TensorFlow/seqio only when the mixture is used

    return mixture.make_sources(config, cfg, rows)
