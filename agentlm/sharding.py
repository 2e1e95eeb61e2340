"""Device meshes and the one table that maps the model's logical axis names onto mesh axes.

The model only ever names logical axes ("embed", "heads", "batch", ...). Which mesh axis — `data`, `fsdp`
or `tensor` — carries each of them is decided here, by a rules table that configs may override. This is
the MaxText / t5x arrangement: changing the parallelism layout never touches model code.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterable, Sequence

import jax
import numpy as np
from flax import linen as nn
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# Logical name -> mesh axis (or tuple of axes, or None for replicated). Parameters use the first group,
# activations the second. The batch is split over both data-parallel axes; FSDP shards the embed dimension
# of every weight; tensor parallelism splits heads, MLP width and vocabulary.
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    # parameters
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("layers", None),
    ("norm", None),
    ("patch", None),            # vision: pixels of one patch (input of the patch projection)
    ("image_patches", None),    # vision: rows of the patch-index table
    # activations
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("cache_length", None),
)


def rules_from_config(rules: Iterable[Sequence] | None) -> tuple:
    """Normalises a rules table from a ConfigDict (lists of [name, axis]) into nested tuples."""
    if rules is None:
        return DEFAULT_RULES
    out = []
    for row in rules:
        if len(row) != 2:
            raise ValueError(f"logical_axis_rules: row {row!r} must be [logical_name, mesh_axis_or_null]")
        name, axis = row
        if isinstance(axis, (list, tuple)):
            axis = tuple(axis)
            bad = [a for a in axis if a not in MESH_AXES]
        else:
            bad = [axis] if axis is not None and axis not in MESH_AXES else []
        if bad:
            raise ValueError(f"logical_axis_rules: {name!r} maps to unknown mesh axis {bad}; known {MESH_AXES}")
        out.append((name, axis))
    return tuple(out)


def resolve_mesh_shape(sizes: dict[str, int] | Sequence[int], num_devices: int) -> tuple[int, int, int]:
    """Turns {"data": d, "fsdp": f, "tensor": t} (one may be -1: "the rest") into concrete sizes."""
    if not isinstance(sizes, dict):
        sizes = dict(zip(MESH_AXES, sizes))
    unknown = sorted(set(sizes) - set(MESH_AXES))
    if unknown:
        raise ValueError(f"mesh: unknown axes {unknown}; axes are {MESH_AXES}")
    shape = [int(sizes.get(a, 1)) for a in MESH_AXES]
    free = [i for i, s in enumerate(shape) if s == -1]
    if len(free) > 1:
        raise ValueError(f"mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, shape))}")
    bad = [MESH_AXES[i] for i, s in enumerate(shape) if s == 0 or s < -1]
    if bad:
        raise ValueError(f"mesh: sizes of {bad} must be positive or -1, got {dict(zip(MESH_AXES, shape))}")
    known = math.prod(s for s in shape if s != -1)
    if free:
        if num_devices % known:
            raise ValueError(f"mesh: {dict(zip(MESH_AXES, shape))} does not divide {num_devices} devices "
                             f"(the fixed axes multiply to {known})")
        shape[free[0]] = num_devices // known
    if math.prod(shape) != num_devices:
        raise ValueError(f"mesh: {dict(zip(MESH_AXES, shape))} uses {math.prod(shape)} devices but "
                         f"{num_devices} are available")
    return tuple(shape)


def make_mesh(sizes: dict[str, int] | Sequence[int] | None = None, devices: Sequence | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all), GSPMD-style (Auto) axes.

    Default sizes put every device on fsdp, which is what fine-tuning a large model wants. On multi-slice TPU
    jobs the `data` axis spans the slices (only data parallelism crosses the slow DCN links); fsdp and tensor
    stay inside a slice.
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = resolve_mesh_shape(sizes or {"fsdp": -1}, len(devices))
    return Mesh(_device_array(shape, devices), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def _device_array(shape: tuple[int, int, int], devices: list) -> np.ndarray:
    num_slices = len({getattr(d, "slice_index", 0) for d in devices})
    if num_slices > 1:
        if shape[0] % num_slices:
            raise ValueError(f"mesh: data={shape[0]} must be a multiple of the {num_slices} slices (the data axis "
                             "is the one that spans slices over DCN)")
        ici = (shape[0] // num_slices, shape[1], shape[2])
        return mesh_utils.create_hybrid_device_mesh(ici, (num_slices, 1, 1), devices=devices)
    try:  # topology-aware order on TPU/GPU
        return mesh_utils.create_device_mesh(shape, devices=devices)
    except Exception:  # CPU or uneven device sets have no topology to respect: row-major order is fine
        return np.asarray(devices).reshape(shape)


def single_device_mesh() -> Mesh:
    return make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, devices=jax.devices()[:1])


def logical_to_spec(logical: Sequence[str | None], rules=DEFAULT_RULES) -> P:
    return nn.logical_to_mesh_axes(tuple(logical), rules)


def logical_sharding(mesh: Mesh, logical: Sequence[str | None], rules=DEFAULT_RULES) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(logical, rules))


def param_shardings(abstract_params, mesh: Mesh, rules=DEFAULT_RULES):
    """NamedShardings for a (possibly nn.Partitioned-boxed) parameter tree, with a divisibility check."""
    specs = nn.get_partition_spec(abstract_params)
    shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
    check_divisible(nn.unbox(abstract_params), shardings)
    return shardings


def check_divisible(tree, shardings) -> None:
    """Fails with the parameter's path when a sharded dimension does not divide by its mesh axes."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    shard_leaves = jax.tree_util.tree_leaves(shardings, is_leaf=lambda x: isinstance(x, NamedSharding))
    for (path, leaf), sharding in zip(leaves, shard_leaves):
        mesh_shape = dict(sharding.mesh.shape)
        for dim, axes in enumerate(sharding.spec):
            if axes is None:
                continue
            axes = axes if isinstance(axes, tuple) else (axes,)
            n = math.prod(mesh_shape[a] for a in axes)
            if leaf.shape[dim] % n:
                name = jax.tree_util.keystr(path, simple=True, separator="/")
                raise ValueError(f"sharding: {name} dimension {dim} of size {leaf.shape[dim]} does not divide "
                                 f"by mesh axes {axes} (size {n}); choose mesh sizes that divide it or change "
                                 "logical_axis_rules")


@contextlib.contextmanager
def activate(mesh: Mesh, rules=DEFAULT_RULES):
    """Context in which the model's logical activation constraints resolve against `mesh`."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield


def batch_sharding(mesh: Mesh, rules=DEFAULT_RULES, ndim: int = 2) -> NamedSharding:
    """Sharding of a [batch, length, ...] input array."""
    return logical_sharding(mesh, ("batch", "length") + (None,) * (ndim - 2), rules)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())
