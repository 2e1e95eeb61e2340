"""Reading and writing Hugging Face model directories (config.json + single or sharded safetensors).

Reading is lazy: files are opened with `safe_open` (memory-mapped) and tensors are read one slice at a
time, so importing a 70B model never holds more than one parameter shard in host memory besides the
result. Everything that can be checked from the headers alone (missing, extra, mis-shaped tensors,
corrupt or truncated files, a broken index) is checked before any tensor data is read.
"""
from __future__ import annotations

import json
import math
import os
import pathlib

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy so safetensors can return it)
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as safetensors_bytes, save_file

from agentlm import storage
from agentlm.checkpoint.layout import IGNORED_SUFFIXES, expected_hf_shapes
from agentlm.model.config import LlamaConfig

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# Files copied alongside the weights so a converted/exported directory is usable for generation/serving.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")
_ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


class CheckpointError(ValueError):
    """A model directory or checkpoint does not match what the config says it should hold."""


def read_hf_config(hf_dir: str | os.PathLike, **overrides) -> tuple[LlamaConfig, dict]:
    path = pathlib.Path(hf_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{hf_dir}: no config.json (expected a Hugging Face model directory)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    try:
        return LlamaConfig.from_hf(raw, **overrides), raw
    except KeyError as err:
        raise CheckpointError(f"{path}: required field {err} is missing") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None


class HFReader:
    """Lazy access to the tensors of a HF directory, validated against a config on construction."""

    def __init__(self, hf_dir: str | os.PathLike, cfg: LlamaConfig):
        self.dir = pathlib.Path(hf_dir)
        self.cfg = cfg
        self._handles: dict[str, object] = {}
        self.file_of = self._locate_tensors()
        self.headers = self._read_headers()
        self._validate()

    # ---- discovery ---------------------------------------------------------------------------------
    def _locate_tensors(self) -> dict[str, str]:
        index = self.dir / INDEX_NAME
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise CheckpointError(f"{index}: not a safetensors index with a 'weight_map' ({err})") from None
            missing_files = sorted({f for f in weight_map.values() if not (self.dir / f).is_file()})
            if missing_files:
                raise CheckpointError(f"{index} names shard files that do not exist: {missing_files}")
            return dict(weight_map)
        if (self.dir / SINGLE_NAME).is_file():
            return {name: SINGLE_NAME for name in self._open(SINGLE_NAME).keys()}
        found = sorted(p.name for p in self.dir.glob("*.safetensors"))
        raise CheckpointError(f"{self.dir}: neither {SINGLE_NAME} nor {INDEX_NAME} found"
                              + (f" (found {found}; an index is needed for several files)" if found else "")
                              + "; .bin/.pth checkpoints must be re-saved as safetensors")

    def _open(self, fname: str):
        if fname not in self._handles:
            path = self.dir / fname
            try:
                self._handles[fname] = safe_open(str(path), framework="numpy")
            except Exception as err:  # SafetensorError is not exported under a stable name
                raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({err})") from None
        return self._handles[fname]

    def _read_headers(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        headers = {}
        for fname in sorted(set(self.file_of.values())):
            handle = self._open(fname)
            in_file = set(handle.keys())
            for name in [n for n, f in self.file_of.items() if f == fname]:
                if name not in in_file:
                    raise CheckpointError(f"{self.dir / INDEX_NAME}: tensor {name!r} is mapped to {fname}, "
                                          "which does not contain it")
                sl = handle.get_slice(name)
                headers[name] = (sl.get_dtype(), tuple(sl.get_shape()))
        return headers

    def _validate(self) -> None:
        expected = expected_hf_shapes(self.cfg)
        present = {n for n in self.headers if not n.endswith(IGNORED_SUFFIXES)}
        tied_head = self.cfg.tie_word_embeddings and "lm_head.weight" in present
        missing = sorted(set(expected) - present)
        extra = sorted(present - set(expected) - ({"lm_head.weight"} if tied_head else set()))
        where = f"{self.dir}"
        if missing:
            raise CheckpointError(f"{where}: {len(missing)} tensor(s) the config needs are missing: "
                                  f"{_first(missing)}")
        if extra:
            raise CheckpointError(f"{where}: {len(extra)} unexpected tensor(s) not used by a Llama model with "
                                  f"this config.json: {_first(extra)}")
        for name, shape in expected.items():
            dtype, got = self.headers[name]
            if got != shape:
                raise CheckpointError(f"{where}: tensor {name!r} has shape {list(got)}, config.json implies "
                                      f"{list(shape)}")
            if dtype not in _ST_DTYPES:
                raise CheckpointError(f"{where}: tensor {name!r} has dtype {dtype}; only float tensors are "
                                      "supported")
        if tied_head:
            dtype, got = self.headers["lm_head.weight"]
            embed = self.get("model.embed_tokens.weight")
            if got != embed.shape or not np.array_equal(self.get("lm_head.weight"), embed):
                raise CheckpointError(f"{where}: config.json says tie_word_embeddings=true but lm_head.weight "
                                      "differs from model.embed_tokens.weight; refusing to drop it silently")

    # ---- reading -----------------------------------------------------------------------------------
    def dtype(self, name: str) -> str:
        return _ST_DTYPES[self.headers[name][0]]

    def get(self, name: str, slices: tuple[slice, ...] | None = None) -> np.ndarray:
        handle = self._open(self.file_of[name])
        try:
            return handle.get_tensor(name) if slices is None else handle.get_slice(name)[slices]
        except Exception as err:
            raise CheckpointError(f"{self.dir / self.file_of[name]}: reading tensor {name!r} failed "
                                  f"(corrupt or truncated file?): {err}") from None


def copy_tokenizer_files(src, dst) -> list[str]:
    """Copies the tokenizer files `src` has into `dst` (either may be a local path or a gs:// URL)."""
    src, dst = storage.path(src), storage.path(dst)
    copied = []
    for fname in TOKENIZER_FILES:
        if (src / fname).is_file():
            (src / fname).copy(dst / fname, overwrite=True)
            copied.append(fname)
    return copied


def _first(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" ... (+{len(names) - n} more)" if len(names) > n else "")


# ---- writing -------------------------------------------------------------------------------------------
def plan_shards(sizes: dict[str, int], max_shard_bytes: int) -> list[list[str]]:
    """Greedy, order-preserving grouping of tensor names into files of at most max_shard_bytes."""
    shards, current, used = [], [], 0
    for name, size in sizes.items():
        if current and used + size > max_shard_bytes:
            shards.append(current)
            current, used = [], 0
        current.append(name)
        used += size
    if current:
        shards.append(current)
    return shards


def write_hf_dir(out_dir, cfg: LlamaConfig, tensor_specs: dict[str, tuple[tuple[int, ...], str]],
                 produce, max_shard_bytes: int, progress=None, write: bool = True) -> None:
    """Writes config.json and safetensors files, producing tensors one file at a time.

    `tensor_specs[name] = (shape, dtype)`; `produce(name)` returns the numpy tensor. Only one output file's
    tensors are alive at once, so host memory stays bounded by max_shard_bytes plus the model itself.
    With write=False (non-zero processes of a multi-host job) tensors are produced, so collective
    gathers stay in step, but nothing is written.
    """
    remote = storage.is_remote(out_dir)
    out_dir = storage.path(out_dir)
    dtypes = {d for _, d in tensor_specs.values()}
    torch_dtype = dtypes.pop() if len(dtypes) == 1 else "float32"
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(cfg.to_hf(torch_dtype=torch_dtype), indent=2) + "\n")
    sizes = {n: math.prod(s) * np.dtype(d).itemsize for n, (s, d) in tensor_specs.items()}
    shards = plan_shards(sizes, max_shard_bytes)
    names = [SINGLE_NAME] if len(shards) == 1 else [
        f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for fname, shard in zip(names, shards):
        tensors = {}
        for name in shard:
            tensors[name] = produce(name)
            weight_map[name] = fname
            if progress is not None:
                progress.update(1)
        if write and remote:  # an object is written whole: serialise the shard in memory, then upload it
            (out_dir / fname).write_bytes(safetensors_bytes(tensors, metadata={"format": "pt"}))
        elif write:
            save_file(tensors, str(out_dir / fname), metadata={"format": "pt"})
        del tensors
    if not write:
        return
    stale = out_dir / INDEX_NAME
    if len(shards) > 1:
        stale.write_text(json.dumps({"metadata": {"total_size": sum(sizes.values())}, "weight_map": weight_map},
                                    indent=2) + "\n")
    elif stale.exists():
        stale.unlink()
