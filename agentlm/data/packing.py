"""Packing rendered conversations into fixed-length rows (the batch contract of docs/architecture.md).

A conversation of n tokens occupies n - 1 slots: inputs = ids[:-1], targets = ids[1:], loss_weights =
loss_mask[1:] (a weight belongs to the token being predicted), positions 0..n-2, and one segment id. Nothing
attends across segments (segment ids) and positions restart, so a packed row computes exactly what the
conversations would compute one by one; padding has segment 0 and weight 0.

Over-length conversations (n - 1 > seq_len) follow a policy: "drop", or "truncate" to the longest prefix of
whole exchanges (human turn + reply) that fits and still has a trained token (else dropped). The policy is
applied per source *before* sampling, so it cannot bias the mixture's agent fraction.

Rows are filled first-fit in stream order: each next conversation goes into the first row of the batch with
room; the batch closes at the first conversation that fits in no row (it opens the next batch). A batch is
therefore a pure function of the stream position where it starts, which makes resuming exact.

Images (vision mixtures): an example may be (ids, loss_mask, image_mask, patches) with one uint8 patch row per
placeholder token. `pack_rows(..., patch_dim=P)` then adds `image_mask` [B, T] (1 where an input token is an image
placeholder) and `image_patches` [B, T, P] (that placeholder's patch, zeros elsewhere), aligned with `inputs`;
`cut_images` keeps the patches of a truncated prefix.
"""
from __future__ import annotations

import numpy as np

POLICIES = ("drop", "truncate")
BATCH_KEYS = ("inputs", "targets", "positions", "segment_ids", "loss_weights")


def apply_length_policy(ids: np.ndarray, mask: np.ndarray, exchange_ends: np.ndarray, seq_len: int, policy: str):
    """(ids, mask, status) with status in {"ok", "truncated", "dropped"}; ids/mask are None when dropped."""
    if policy not in POLICIES:
        raise ValueError(f"over-length policy must be one of {POLICIES}, got {policy!r}")
    if len(ids) - 1 <= seq_len:
        return ids, mask, "ok"
    if policy == "truncate":
        for end in sorted((int(e) for e in exchange_ends), reverse=True):
            if end - 1 <= seq_len and mask[1:end].any():
                return ids[:end], mask[:end], "truncated"
    return None, None, "dropped"


def cut_images(image_mask: np.ndarray, patches: np.ndarray, length: int):
    """(image_mask, patches) of the first `length` tokens of an example (after whole-exchange truncation)."""
    return image_mask[:length], patches[:int(np.sum(image_mask[:length]))]


def plan_batch(slots, batch_size: int, seq_len: int, min_slots: int = 1) -> tuple[list[list[int]], int]:
    """First-fit rows over the stream; `slots(i)` is the slot count of the i-th conversation from here, or None
    where a finite stream ends. `min_slots` (the smallest conversation there can be) lets rows with less room
    drop out of the search.

    Returns (rows of stream offsets, number of conversations consumed).
    """
    free = [seq_len] * batch_size
    rows: list[list[int]] = [[] for _ in range(batch_size)]
    lo, i = 0, 0                 # rows before `lo` have less than min_slots left: nothing fits there any more
    while True:
        need = slots(i)
        if need is None:
            return rows, i
        if need > seq_len:
            raise ValueError(f"conversation of {need} slots exceeds seq_len={seq_len}; apply the length policy first")
        while lo < batch_size and free[lo] < min_slots:
            lo += 1
        for r in range(lo, batch_size):
            if free[r] >= need:
                free[r] -= need
                rows[r].append(i)
                break
        else:
            return rows, i
        i += 1


def pack_rows(row_examples, seq_len: int, patch_dim: int = 0) -> dict[str, np.ndarray]:
    """Materialise rows; `row_examples` is a list (rows) of lists of (ids, loss_mask) int arrays, or with
    `patch_dim` > 0 of (ids, loss_mask, image_mask, patches) (a 2-tuple there is a text-only example)."""
    b = len(row_examples)
    out = {k: np.zeros((b, seq_len), np.int32) for k in BATCH_KEYS[:4]}
    out["loss_weights"] = np.zeros((b, seq_len), np.float32)
    if patch_dim:
        out["image_mask"] = np.zeros((b, seq_len), np.int32)
        out["image_patches"] = np.zeros((b, seq_len, patch_dim), np.uint8)
    for r, examples in enumerate(row_examples):
        at = 0
        for seg, example in enumerate(examples, 1):
            ids, mask = example[0], example[1]
            n = len(ids) - 1
            if at + n > seq_len:
                raise ValueError(f"row {r} overflows seq_len={seq_len}")
            out["inputs"][r, at:at + n] = ids[:-1]
            out["targets"][r, at:at + n] = ids[1:]
            out["positions"][r, at:at + n] = np.arange(n, dtype=np.int32)
            out["segment_ids"][r, at:at + n] = seg
            out["loss_weights"][r, at:at + n] = mask[1:]
            if len(example) > 2:
                if not patch_dim:
                    raise ValueError(f"row {r}: an example carries images but pack_rows got patch_dim=0")
                _place_images(out, r, at, n, np.asarray(example[2]), np.asarray(example[3]))
            at += n
    return out


def _place_images(out, r: int, at: int, n: int, image_mask: np.ndarray, patches: np.ndarray):
    where = np.flatnonzero(image_mask[:n])
    if len(where) != len(patches) or (image_mask[n:] != 0).any():
        raise ValueError(f"row {r}: {int(image_mask.sum())} placeholders (input positions {len(where)}) but "
                         f"{len(patches)} patches")
    out["image_mask"][r, at + where] = 1
    out["image_patches"][r, at + where] = patches
