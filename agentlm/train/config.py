"""The trainer's config schema (defaults every config file starts from) and its validation.

Validation runs before any device work: a wrong field must cost seconds, not a compile or a pod allocation.
Every error names the config field (`config.data.mixture.eta=1.5: ...`) so the fix is obvious from the message.
"""
from __future__ import annotations

import math
import pathlib

import ml_collections

from agentlm import distributed, sharding, storage
from agentlm.data import config as mixture_schema
from agentlm.model import PRESETS, LlamaConfig

SCHEDULES = ("cosine", "linear", "constant")
DATA_SOURCES = ("synthetic", "mixture")


class ConfigError(ValueError):
    """A config value is invalid; the message starts with the offending field."""


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.run_dir = "runs/default"  # holds model_config.json, checkpoints/<step>/, metrics.jsonl, tensorboard/
    c.seed = 0
    c.init_from = ""  # converted checkpoint or run directory to fine-tune from ("" = random init)

    c.model = ml_collections.ConfigDict()
    c.model.preset = "tiny"  # agentlm.model preset; ignored for the architecture when init_from is set
    c.model.dtype = "float32"  # compute dtype of the matmuls
    c.model.param_dtype = "float32"  # master weights (and optimizer moments)
    c.model.remat_policy = "none"
    c.model.attention_impl = "dot"
    c.model.attention_chunk = 512
    # > 0: the loss applies the vocabulary head to this many positions per row at a time and computes the head's
    # gradient in the same pass, so the [B, T, V] float32 logits never exist (agentlm.train.step). Same loss
    # and gradients to float rounding; 0 = the full logits.
    c.model.loss_chunk = 0
    c.model.scan_unroll = 1  # layers per layer-scan iteration (the layer count = no loop; compile time grows)
    c.model.max_position_embeddings = 0  # > 0: train on longer rows than the base model's (RoPE has no table)
    # The optional vision path (agentlm.model.vision) on a preset: patch_size > 0 adds it (the mixture's
    # image_patch must match); 0 = the text model. A run fine-tuned from init_from keeps that model's own.
    c.model.vision = ml_collections.ConfigDict({"patch_size": 0, "max_patches": 1024, "encoder_layers": 0,
                                                "encoder_mlp": 0, "patch_norm": False})

    c.mesh = ml_collections.ConfigDict({"data": 1, "fsdp": -1, "tensor": 1})
    c.logical_axis_rules = ml_collections.config_dict.placeholder(list)  # None = agentlm.sharding defaults

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic"  # "synthetic" (built-in conversations) or "mixture" (agentlm.data seqio mixture)
    c.data.global_batch_size = 16  # rows per optimizer step, over all processes and microbatches
    c.data.seq_len = 128
    c.data.synthetic = ml_collections.ConfigDict()  # the built-in conversations (agentlm.train.synthetic)
    c.data.synthetic.alphabet = 64
    c.data.synthetic.min_len = 4
    c.data.synthetic.max_len = 12
    # The eta mixture (agentlm.data.config's schema, as configs/mixture/*.py; eta = data.mixture.eta) for source
    # "mixture": the paper's eta = 0.2 over the data_pipeline export and data/general/.
    c.data.mixture = mixture_schema.default_config()
    c.data.eval_paths = []  # held-out AgentInstruct-schema files for the eval loss (mixture source)

    c.train = ml_collections.ConfigDict()
    c.train.steps = 300
    c.train.grad_accum = 1  # microbatches per step (lax.scan); global_batch_size must divide by it

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.lr = 3e-3
    c.optimizer.schedule = "cosine"  # after warmup: cosine | linear decay to lr * end_lr_ratio, or constant
    c.optimizer.warmup_steps = 20
    c.optimizer.end_lr_ratio = 0.1
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.95
    c.optimizer.eps = 1e-8
    c.optimizer.weight_decay = 0.1
    c.optimizer.decay_norms = False  # apply weight decay to RMSNorm scales?
    c.optimizer.decay_embeddings = False  # ... to the token embedding (and an untied lm_head is always decayed)
    c.optimizer.clip_norm = 1.0  # global-norm clipping threshold (0 = off)

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every = 100  # save every K steps (and at the end, and on SIGTERM)
    c.checkpoint.keep = 3  # keep the N most recent
    c.checkpoint.async_save = True
    c.checkpoint.resume = True  # continue from the latest complete step in run_dir/checkpoints

    c.log = ml_collections.ConfigDict()
    c.log.every = 10  # metrics to JSONL / TensorBoard / progress bar every N steps
    c.log.eval_every = 100  # eval loss on held-out rows every N steps (0 = only at the end)
    c.log.eval_batches = 2
    c.log.eval_at_start = True  # a baseline eval loss before the first step of a fresh (not resumed) run
    c.log.tensorboard = True
    c.log.progress = True
    c.log.peak_flops_per_device = 0.0  # for MFU; 0 = measure an f32 matmul at start-up

    c.distributed = distributed.default_config()
    # XLA:CPU flags per detected CPU kind (agentlm.cpu_tuning): "" = $AGENTLM_CPU_TUNING, else auto; "off"; or
    # explicit --xla_... flags. Applied by `python -m agentlm.train` before jax starts its backend.
    c.cpu_tuning = ""
    return c


def _fail(field: str, value, why: str):
    raise ConfigError(f"config.{field}={value!r}: {why}")


def _exists(p: str) -> bool:
    return storage.path(p).exists() if storage.is_remote(p) else pathlib.Path(p).expanduser().exists()


def model_config(config) -> LlamaConfig:
    """The LlamaConfig a run trains: architecture from init_from's model_config.json or the preset, numerics
    (dtype, param_dtype, remat, attention kernel) from the train config."""
    numerics = dict(dtype=config.model.dtype, param_dtype=config.model.param_dtype,
                    remat_policy=config.model.remat_policy, attention_impl=config.model.attention_impl,
                    attention_chunk=config.model.attention_chunk, scan_unroll=config.model.scan_unroll)
    if config.model.max_position_embeddings > 0:
        numerics["max_position_embeddings"] = config.model.max_position_embeddings
    if config.init_from:
        path = storage.path(config.init_from) / "model_config.json"
        base = LlamaConfig.from_json(path)
    else:
        if config.model.preset not in PRESETS:
            _fail("model.preset", config.model.preset, f"unknown preset; known: {sorted(PRESETS)}")
        base = PRESETS[config.model.preset]
        vision = config.model.get("vision")
        if vision is not None and vision.get("patch_size", 0) > 0:
            numerics["vision"] = dict(vision)
    try:
        return base.replace(**numerics)
    except ValueError as e:
        raise ConfigError(f"config.model: {e}") from None


def validate(config, num_devices: int | None = None, num_processes: int = 1) -> LlamaConfig:
    """Checks every field that can be checked without devices doing work; returns the model config.

    `num_devices` (when known) enables the mesh and sharding checks.
    """
    d, o, t = config.data, config.optimizer, config.train
    eta = d.mixture.get("eta", 0.0)
    if not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        _fail("data.mixture.eta", eta, "must be in [0, 1] (the probability of drawing an agent example)")
    if d.source not in DATA_SOURCES:
        _fail("data.source", d.source, f"must be one of {DATA_SOURCES}")
    if o.schedule not in SCHEDULES:
        _fail("optimizer.schedule", o.schedule, f"must be one of {SCHEDULES}")
    for field, value in (("optimizer.lr", o.lr), ("data.seq_len", d.seq_len), ("train.steps", t.steps),
                         ("data.global_batch_size", d.global_batch_size), ("train.grad_accum", t.grad_accum),
                         ("checkpoint.every", config.checkpoint.every), ("checkpoint.keep", config.checkpoint.keep),
                         ("log.every", config.log.every)):
        if not value > 0:
            _fail(field, value, "must be positive")
    if not isinstance(config.model.loss_chunk, int) or config.model.loss_chunk < 0:
        _fail("model.loss_chunk", config.model.loss_chunk, "must be an int >= 0 (0 = full logits)")
    if not 0 <= o.warmup_steps <= t.steps:
        _fail("optimizer.warmup_steps", o.warmup_steps, f"must be in [0, train.steps={t.steps}]")
    if not 0.0 <= o.end_lr_ratio <= 1.0:
        _fail("optimizer.end_lr_ratio", o.end_lr_ratio, "must be in [0, 1]")
    if o.weight_decay < 0 or o.clip_norm < 0:
        _fail("optimizer.weight_decay/clip_norm", (o.weight_decay, o.clip_norm), "must be >= 0")
    if not (0 <= o.b1 < 1 and 0 <= o.b2 < 1):
        _fail("optimizer.b1/b2", (o.b1, o.b2), "must be in [0, 1)")
    if config.log.eval_every < 0 or config.log.eval_batches < 0:
        _fail("log.eval_every/eval_batches", (config.log.eval_every, config.log.eval_batches), "must be >= 0")
    if config.distributed.initialize not in ("auto", "never", "always"):
        _fail("distributed.initialize", config.distributed.initialize, "must be auto, never or always")
    if d.global_batch_size % t.grad_accum:
        _fail("train.grad_accum", t.grad_accum, f"does not divide data.global_batch_size={d.global_batch_size}")
    if d.global_batch_size % num_processes:
        _fail("data.global_batch_size", d.global_batch_size, f"does not divide by the {num_processes} processes")
    if d.source == "mixture":
        for field in ("agent_paths", "general_paths"):
            for p in d.mixture.get(field) or []:
                if not _exists(p):
                    _fail(f"data.mixture.{field}", list(d.mixture[field]), f"{p} does not exist")
        for p in d.eval_paths:
            if not _exists(p):
                _fail("data.eval_paths", list(d.eval_paths), f"{p} does not exist")
        if d.mixture.tokenizer and not pathlib.Path(d.mixture.tokenizer).expanduser().exists():
            _fail("data.mixture.tokenizer", d.mixture.tokenizer, "does not exist")
    if config.init_from:
        path = storage.path(config.init_from)
        if not path.exists():
            _fail("init_from", config.init_from, "does not exist")
        if not (path / "model_config.json").exists():
            _fail("init_from", config.init_from, "has no model_config.json (convert a HF model with "
                  "agentlm.checkpoint first)")
    try:
        rules = sharding.rules_from_config(config.logical_axis_rules)
    except ValueError as e:
        raise ConfigError(f"config.logical_axis_rules: {e}") from None
    cfg = model_config(config)
    patch = cfg.vision.patch_size if cfg.vision is not None else 0
    if d.source == "mixture" and int(d.mixture.get("image_patch", 0) or 0) != patch:
        _fail("data.mixture.image_patch", d.mixture.get("image_patch", 0),
              f"must equal the model's vision patch size ({patch}; 0 = a text model, see config.model.vision)")
    if d.source == "synthetic" and patch:
        _fail("model.vision.patch_size", patch, "a vision model trains on a mixture with images (data.source "
              "'mixture', data.mixture.image_patch set), not on the synthetic text source")
    if d.seq_len > cfg.max_position_embeddings:
        _fail("data.seq_len", d.seq_len, f"exceeds the model's max_position_embeddings={cfg.max_position_embeddings}")
    if num_devices is not None:
        try:
            shape = sharding.resolve_mesh_shape(config.mesh.to_dict(), num_devices)
        except ValueError as e:
            raise ConfigError(f"config.mesh={config.mesh.to_dict()}: {e}") from None
        batch_shards = math.prod(s for a, s in zip(sharding.MESH_AXES, shape)
                                 if a in _batch_axes(rules))
        micro = d.global_batch_size // t.grad_accum
        if micro % batch_shards:
            _fail("data.global_batch_size", d.global_batch_size,
                  f"the microbatch of {micro} rows (global_batch_size / train.grad_accum={t.grad_accum}) does not "
                  f"divide over the {batch_shards} batch shards of mesh {dict(zip(sharding.MESH_AXES, shape))}")
        _check_param_sharding(cfg, shape, rules)
    return cfg


def _batch_axes(rules) -> tuple[str, ...]:
    for name, axis in rules:
        if name == "batch":
            return () if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    return ()


def _check_param_sharding(cfg: LlamaConfig, shape, rules) -> None:
    """Divisibility of every parameter dimension by its mesh axes, from shapes alone (no devices used)."""
    import jax
    from flax import linen as nn

    from agentlm.model import abstract_params

    boxed = abstract_params(cfg)
    specs = nn.get_partition_spec(boxed)
    mesh_shape = dict(zip(sharding.MESH_AXES, shape))
    leaves = jax.tree_util.tree_leaves_with_path(nn.unbox(boxed))
    spec_leaves = jax.tree_util.tree_leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    for (path, leaf), logical in zip(leaves, spec_leaves):
        mesh_spec = sharding.logical_to_spec(tuple(logical), rules)
        for dim, axes in enumerate(mesh_spec):
            if axes is None:
                continue
            axes = axes if isinstance(axes, tuple) else (axes,)
            n = math.prod(mesh_shape[a] for a in axes)
            if leaf.shape[dim] % n:
                raise ConfigError(
                    f"config.mesh={mesh_shape}: parameter {jax.tree_util.keystr(path)} dimension {dim} "
                    f"(size {leaf.shape[dim]}) does not divide by mesh axes {axes} (size {n})")
