"""Orbax save/restore of parameters, onto any mesh, for model directories and training-run directories.

Layouts (docs/architecture.md):
- model directory: `model_config.json` + `params/` (an orbax PyTree checkpoint of the parameter tree);
- training run:    `model_config.json` + `checkpoints/<step>/state` (a dict with `params`, `opt_state`, ...).
Restoring reads the checkpoint's metadata first and compares every parameter's shape with what the
config implies, so a checkpoint of another model size fails naming the parameter instead of restoring
into a silently wrong model. The target sharding comes from the caller's mesh, not from how the
checkpoint was written, which is what makes restoring onto another mesh shape work.
"""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from flax import linen as nn

from agentlm import sharding, storage
from agentlm import model as model_lib
from agentlm.checkpoint.convert_hf import check_params, target_shardings
from agentlm.checkpoint.hf_io import CheckpointError
from agentlm.model.config import LlamaConfig

CONFIG_NAME = "model_config.json"
PARAMS_DIR = "params"
RUN_CHECKPOINTS_DIR = "checkpoints"


def _flat(tree, prefix=()) -> dict[str, object]:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, prefix + (str(k),)))
        return out
    return {"/".join(prefix): tree}


def save(path: str | os.PathLike, cfg: LlamaConfig, params, overwrite: bool = False) -> storage.epath.Path:
    """Writes a model directory (model_config.json + params/). Works for params sharded on any mesh."""
    check_params(cfg, params)
    path = storage.path(path)
    if (path / PARAMS_DIR).exists():
        if not overwrite:
            raise FileExistsError(f"{path / PARAMS_DIR} already exists; pass overwrite=True to replace it")
        if jax.process_index() == 0:
            (path / PARAMS_DIR).rmtree()
        ocp.multihost.sync_global_processes("agentlm_checkpoint_rm")
    if jax.process_index() == 0:
        path.mkdir(parents=True, exist_ok=True)
        cfg.to_json(path / CONFIG_NAME)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path / PARAMS_DIR, params)
        ckptr.wait_until_finished()
    return path


def _checkpoint_tree_metadata(item_dir) -> dict:
    try:
        meta = ocp.PyTreeCheckpointer().metadata(item_dir)
    except Exception as err:
        raise CheckpointError(f"{item_dir}: not a readable orbax checkpoint ({err})") from None
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    if not isinstance(tree, dict):
        raise CheckpointError(f"{item_dir}: unexpected orbax metadata of type {type(tree).__name__}")
    return tree


def restore_params(item_dir: str | os.PathLike, cfg: LlamaConfig, mesh=None, rules=sharding.DEFAULT_RULES,
                   subtree: str | None = None):
    """Restores the parameter tree stored at `item_dir` (or under key `subtree` of it) onto `mesh`.

    Arrays come back in `cfg.param_dtype` (orbax casts when the stored dtype differs).
    """
    item_dir = storage.path(item_dir)
    meta = _checkpoint_tree_metadata(item_dir)
    if subtree is not None:
        if subtree not in meta:
            raise CheckpointError(f"{item_dir}: checkpoint has no {subtree!r} entry (has {sorted(meta)})")
        meta = meta[subtree]
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, cfg.weight_dtype, sharding=s),
                            nn.unbox(model_lib.abstract_params(cfg)), target_shardings(cfg, mesh, rules))
    want = _flat(abstract)
    have = _flat(meta)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    where = f"{item_dir}" + (f" [{subtree}]" if subtree else "")
    if missing or extra:
        raise CheckpointError(f"{where}: parameters do not match the model config: missing {missing}, "
                              f"unexpected {extra}")
    for key, target in want.items():
        shape = tuple(getattr(have[key], "shape", ()) or ())
        if shape != target.shape:
            raise CheckpointError(f"{where}: parameter {key} has shape {list(shape)} in the checkpoint but the "
                                  f"model config implies {list(target.shape)} (a checkpoint of another model size?)")
    target = abstract
    if subtree is not None:
        target = {subtree: target}
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=subtree is not None)
    with ocp.PyTreeCheckpointer() as ckptr:
        restored = ckptr.restore(item_dir, args=args)
    return restored[subtree] if subtree is not None else restored


def latest_step(run_dir) -> int:
    ckpt_dir = storage.path(run_dir) / RUN_CHECKPOINTS_DIR
    steps = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit() and (p / "state").is_dir())
    if not steps:
        raise CheckpointError(f"{ckpt_dir}: no finished checkpoints (expected <step>/state directories)")
    return steps[-1]


def load(path: str | os.PathLike, mesh=None, rules=sharding.DEFAULT_RULES, step: int | None = None,
         config_overrides: dict | None = None) -> tuple[LlamaConfig, dict]:
    """(cfg, params) from a model directory or a training-run directory (latest step unless `step`).

    `mesh=None` puts everything on the first device, which is what a notebook wants; pass a mesh from
    `sharding.make_mesh` to restore sharded. `config_overrides` changes numerics-only fields such as
    `dtype` or `remat_policy` (shape fields would be caught by the shape check).
    """
    path = storage.path(path)
    if not (path / CONFIG_NAME).is_file():
        hint = " (a Hugging Face directory? convert it with `python -m agentlm.checkpoint.convert hf-to-orbax`)" \
            if (path / "config.json").is_file() else ""
        raise CheckpointError(f"{path}: no {CONFIG_NAME}; not a model or training-run directory{hint}")
    try:
        cfg = LlamaConfig.from_json(path / CONFIG_NAME)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path / CONFIG_NAME}: {err}") from None
    if config_overrides:
        cfg = cfg.replace(**config_overrides)
    if (path / PARAMS_DIR).is_dir():
        return cfg, restore_params(path / PARAMS_DIR, cfg, mesh, rules)
    if (path / RUN_CHECKPOINTS_DIR).is_dir():
        step = latest_step(path) if step is None else step
        item = path / RUN_CHECKPOINTS_DIR / str(step) / "state"
        if not item.is_dir():
            raise CheckpointError(f"{item}: no such checkpoint step")
        return cfg, restore_params(item, cfg, mesh, rules, subtree="params")
    raise CheckpointError(f"{path}: has {CONFIG_NAME} but neither {PARAMS_DIR}/ nor {RUN_CHECKPOINTS_DIR}/")
