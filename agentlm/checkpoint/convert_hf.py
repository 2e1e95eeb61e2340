"""Hugging Face safetensors <-> our (sharded) parameter tree, one tensor at a time.

Import builds every parameter with `jax.make_array_from_callback` directly in its target sharding: each
device's shard is read from the memory-mapped safetensors file as just the rows/columns it needs (one
layer at a time for scanned weights). Export walks the HF tensor names, pulls one layer slice at a time
to the host and writes one output file at a time. Neither direction ever holds a second full copy.
"""
from __future__ import annotations

import os
import pathlib

import jax
import numpy as np
from flax import linen as nn
from jax.experimental import multihost_utils
from jax.sharding import SingleDeviceSharding
from tqdm import tqdm  # plain bars: tqdm.auto warns in notebooks without ipywidgets

from agentlm import sharding, storage
from agentlm import model as model_lib
from agentlm.checkpoint.hf_io import (CheckpointError, HFReader, read_hf_config, write_hf_dir)
from agentlm.checkpoint.layout import get_path, set_path, tensor_maps
from agentlm.model.config import LlamaConfig

DEFAULT_MAX_SHARD_BYTES = 5 * 1024 ** 3  # the size transformers' save_pretrained uses


def target_shardings(cfg: LlamaConfig, mesh=None, rules=sharding.DEFAULT_RULES):
    """Per-parameter shardings: the rules table on `mesh`, or everything on the first device."""
    if mesh is None:
        single = SingleDeviceSharding(jax.devices()[0])
        return jax.tree.map(lambda _: single, nn.unbox(model_lib.abstract_params(cfg)))
    return model_lib.param_shardings(cfg, mesh, rules)


def load_hf(hf_dir: str | os.PathLike, mesh=None, rules=sharding.DEFAULT_RULES, param_dtype: str | None = None,
            dtype: str | None = None, progress: bool = True, **config_overrides) -> tuple[LlamaConfig, dict]:
    """Reads a HF Llama directory into (cfg, params) laid out on `mesh` (None: first device).

    `param_dtype` defaults to the dtype stored in the files (so export gives back identical bytes);
    `dtype` (compute) defaults to `param_dtype`.
    """
    cfg, _ = read_hf_config(hf_dir, **config_overrides)
    reader = HFReader(hf_dir, cfg)
    stored = reader.dtype("model.embed_tokens.weight")
    param_dtype = param_dtype or stored
    cfg = cfg.replace(param_dtype=param_dtype, dtype=dtype or param_dtype)
    target = np.dtype(cfg.weight_dtype)
    shardings = target_shardings(cfg, mesh, rules)
    params: dict = {}
    maps = tensor_maps(cfg)
    for tm in tqdm(maps, desc=f"hf -> params ({pathlib.Path(hf_dir).name})", disable=not progress, unit="param"):

        def shard(index, tm=tm):
            index = tuple(index) + (slice(None),) * (len(tm.shape) - len(index))
            if not tm.stacked:
                return tm.read_block(lambda s: reader.get(tm.hf_name, s), index).astype(target, copy=False)
            block = None
            for j, i in enumerate(range(*index[0].indices(tm.num_layers))):  # one layer in memory at a time
                layer = tm.read_block(lambda s, i=i: reader.get(tm.hf_name.format(i=i), s), index[1:])
                if block is None:
                    block = np.empty((len(range(*index[0].indices(tm.num_layers))),) + layer.shape, target)
                block[j] = layer
            return block

        arr = jax.make_array_from_callback(tm.shape, get_path(shardings, tm.path), shard)
        set_path(params, tm.path, arr)
    return cfg, params


def _to_host(x: jax.Array) -> np.ndarray:
    if x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def check_params(cfg: LlamaConfig, params) -> None:
    """Fails naming the parameter when the tree does not have exactly the shapes `cfg` implies."""
    expected = {"/".join(tm.path): tm.shape for tm in tensor_maps(cfg)}
    got = {jax.tree_util.keystr(p, simple=True, separator="/"): tuple(x.shape)
           for p, x in jax.tree_util.tree_leaves_with_path(params)}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(f"parameter tree does not match the config: missing {missing}, unexpected {extra}")
    for key, shape in expected.items():
        if got[key] != shape:
            raise CheckpointError(f"parameter {key} has shape {list(got[key])}, the config implies {list(shape)}")


def save_hf(cfg: LlamaConfig, params, out_dir: str | os.PathLike, dtype: str | None = None,
            max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, progress: bool = True):
    """Writes a transformers-loadable directory. `dtype` defaults to the parameters' own dtype."""
    check_params(cfg, params)
    out = storage.path(out_dir)
    by_name = {}
    specs = {}
    for tm in tensor_maps(cfg):
        arr = get_path(params, tm.path)
        out_dtype = np.dtype(dtype or arr.dtype).name
        for i, name in enumerate(tm.hf_names()):
            by_name[name] = (tm, i if tm.stacked else None)
            specs[name] = (tm.hf_shape, out_dtype)

    def produce(name):
        tm, layer = by_name[name]
        arr = get_path(params, tm.path)
        host = _to_host(arr[layer] if layer is not None else arr)
        return tm.to_hf(host).astype(specs[name][1], copy=False)

    bar = tqdm(total=len(specs), desc=f"params -> hf ({out.name})", disable=not progress, unit="tensor")
    write_hf_dir(out, cfg, specs, produce, max_shard_bytes, progress=bar, write=jax.process_index() == 0)
    bar.close()
    return out
