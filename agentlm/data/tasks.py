"""seqio Tasks (one per source file) and the "agenttuning" Mixture whose rates encode eta.

Each Task reads one split of a prepared tfds builder and renders every conversation with the configured chat
template into `targets` (token ids), `loss_mask` and `exchange_ends` (token offsets where whole exchanges end,
used by whole-turn truncation). Task names are `agent_<split>` and `general_<split>`.

Mixture rates (DESIGN.md section 4): the agent pool gets total rate eta and the general pool 1 - eta. Inside the
agent pool tasks share eta in proportion to their sizes, or to `config.agent_weights` when given; general sources
share 1 - eta in proportion to size. Rates are normalised to sum to 1, so a rate is the probability that an
example comes from that task.
"""
from __future__ import annotations

import functools

import numpy as np
import seqio
import tensorflow as tf

from agentlm.data import builders
from agentlm.data import images as images_lib
from agentlm.data.builders import decode_loss
from agentlm.data.template import TEMPLATES, render_detailed
from agentlm.data.tokenizer import Tokenizer, load_tokenizer


class TokenizerVocabulary(seqio.Vocabulary):
    """seqio view of an agentlm Tokenizer (SentencePiece or HF JSON); no extra ids."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        super().__init__(extra_ids=0)

    @property
    def bos_id(self):
        return self.tokenizer.bos_id

    @property
    def eos_id(self):
        return self.tokenizer.eos_id

    @property
    def unk_id(self):
        return None

    @property
    def _base_vocab_size(self):
        return self.tokenizer.vocab_size

    def _encode(self, s):
        return self.tokenizer.encode(s)

    def _decode(self, ids):
        return self.tokenizer.decode([i for i in ids if 0 <= i < self.tokenizer.vocab_size])

    def _encode_tf(self, s):
        out = tf.numpy_function(lambda x: np.asarray(self._encode(x.decode("utf-8")), np.int32), [s], tf.int32)
        out.set_shape([None])
        return out

    def _decode_tf(self, ids):
        out = tf.numpy_function(lambda x: self._decode(x.tolist()).encode("utf-8"), [ids], tf.string)
        out.set_shape([])
        return out

    def __eq__(self, other):
        return isinstance(other, TokenizerVocabulary) and other.tokenizer.path == self.tokenizer.path


def validate_eta(eta) -> float:
    try:
        value = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"mixture eta must be a number in [0, 1], got {eta!r}") from None
    if not 0.0 <= value <= 1.0 or value != value:
        raise ValueError(f"mixture eta must be in [0, 1] (the agent-data sampling probability), got {eta!r}")
    return value


def parse_weights(value) -> dict[str, float] | None:
    """`agent_weights` as a mapping, or from the command-line form "os:1,db:3"; None/"" means by size."""
    if not value:
        return None
    if isinstance(value, str):
        weights = {}
        for item in value.split(","):
            name, sep, weight = item.partition(":")
            try:
                if not sep:
                    raise ValueError
                weights[name.strip()] = float(weight)
            except ValueError:
                raise ValueError(f"agent_weights={value!r}: expected 'task:weight,task:weight'") from None
        return weights
    return {str(k): float(v) for k, v in dict(value).items()}


def mixture_rates(eta, agent_sizes: dict[str, int], general_sizes: dict[str, int],
                  agent_weights: dict | None = None) -> dict[str, float]:
    """Task name -> sampling probability; agent tasks sum to eta, general tasks to 1 - eta."""
    eta = validate_eta(eta)
    if eta > 0 and not agent_sizes:
        raise ValueError(f"eta={eta} needs agent data, but no agent sources were found")
    if eta < 1 and not general_sizes:
        raise ValueError(f"eta={eta} needs general data, but no general sources were found")
    weights = dict(agent_sizes)
    if agent_weights:
        unknown = set(agent_weights) - set(agent_sizes)
        if unknown:
            raise ValueError(f"agent_weights names unknown agent tasks {sorted(unknown)}; known: {sorted(agent_sizes)}")
        bad = {k: v for k, v in agent_weights.items() if not float(v) >= 0}
        if bad:
            raise ValueError(f"agent_weights must be >= 0, got {bad}")
        weights = {k: float(agent_weights.get(k, 0.0)) for k in agent_sizes}
        if eta > 0 and sum(weights.values()) <= 0:
            raise ValueError("agent_weights are all zero but eta > 0")
    rates = {}
    total_w = sum(weights.values())
    for name, w in weights.items():
        rates[f"agent_{name}"] = eta * w / total_w if total_w else 0.0
    total_g = sum(general_sizes.values())
    for name, n in general_sizes.items():
        rates[f"general_{name}"] = (1.0 - eta) * n / total_g if total_g else 0.0
    return rates


def _render_images(image_bytes, image_patch: int):
    """Decoded rows' images -> (placeholder count per image, uint8 patches [sum of counts, patch*patch*3])."""
    if len(image_bytes) and not image_patch:
        raise ValueError("a row carries images but config.image_patch is 0 (a text-only mixture); set the patch size")
    return images_lib.to_patches([images_lib.decode(bytes(b)) for b in image_bytes], image_patch)


def _render_preprocessor(ds, tokenizer, template, system, image_patch: int = 0, image_token_id: int = 0):
    """tfds rows -> {id, targets, loss_mask, exchange_ends} via the shared Python template code; with
    `image_patch` > 0 also `image_mask` (1 at placeholder tokens) and `image_patches` (uint8, one row per
    placeholder, in order)."""

    def render_np(roles, values, losses, image_bytes):
        conv = [{"from": r.decode("utf-8"), "value": v.decode("utf-8"), "loss": decode_loss(int(l))}
                for r, v, l in zip(roles, values, losses)]
        counts, patches = _render_images(image_bytes, image_patch)
        r = render_detailed(conv, tokenizer, template, system, counts, image_token_id)
        return (np.asarray(r.ids, np.int32), np.asarray(r.loss_mask, np.int32),
                np.asarray(r.exchange_ends, np.int32), np.asarray(r.image_mask, np.int32), patches)

    def fn(ex):
        c = ex["conversations"]
        ids, mask, ends, image_mask, patches = tf.numpy_function(
            render_np, [c["from"], c["value"], c["loss"], ex["images"]],
            [tf.int32, tf.int32, tf.int32, tf.int32, tf.uint8], stateful=False)
        for t in (ids, mask, ends, image_mask):
            t.set_shape([None])
        out = {"id": ex["id"], "targets": ids, "loss_mask": mask, "exchange_ends": ends}
        if image_patch:
            patches.set_shape([None, image_patch * image_patch * 3])
            out.update(image_mask=image_mask, image_patches=patches)
        return out

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def output_features(tokenizer: Tokenizer):
    return {
        "targets": seqio.Feature(TokenizerVocabulary(tokenizer), add_eos=False, dtype=tf.int32),
        "loss_mask": seqio.Feature(seqio.PassThroughVocabulary(2), add_eos=False, dtype=tf.int32),
        "exchange_ends": seqio.Feature(seqio.PassThroughVocabulary(2 ** 31 - 1), add_eos=False, dtype=tf.int32,
                                       required=False),
        # vision mixtures only (config.image_patch > 0): placeholder mask and the patches that fill it
        "image_mask": seqio.Feature(seqio.PassThroughVocabulary(2), add_eos=False, dtype=tf.int32, required=False),
        "image_patches": seqio.Feature(seqio.PassThroughVocabulary(256), add_eos=False, dtype=tf.uint8, rank=2,
                                       required=False),
    }


class OrderedTfdsSource(seqio.TfdsDataSource):
    """A prepared split read in file order, whatever `shuffle` asks.

    The builders write every split in file order (`disable_shuffling`: row k of a split is row k of its file,
    which the trainer's exact resume relies on), and tfds refuses to shuffle the files of such a dataset. seqio
    passes its `shuffle` flag on as `shuffle_files`, so a seqio user's default `get_dataset(shuffle=True)` failed.
    Here the files are always read in order and shuffling happens where seqio does it for every Task anyway: in
    the Task's example shuffle buffer, which is sized to hold the whole split (`SHUFFLE_BUFFER_LIMIT`)."""

    def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None, shard_info=None):
        return super().get_dataset(split=split, shuffle=False, seed=seed, shard_info=shard_info)


class RenderedTask(seqio.Task):
    """A Task whose examples are never held in tf.data's in-memory cache.

    seqio caches small sources in memory by default (`try_in_mem_cache`) before the repeat; a mixture sampler
    or any caller that stops reading before the first pass ends then leaves a partial cache, which tf.data
    throws away with a warning ("the calling iterator did not fully read the dataset being cached") at every
    such stop. The prepared tfrecords are local and read fast, so the cache buys nothing here."""

    def get_dataset(self, sequence_length=None, split="train", use_cached=False, shuffle=True,
                    shuffle_buffer_size=None, seed=None, shard_info=None, num_epochs=1, trim_output_features=True,
                    try_in_mem_cache=True):
        return super().get_dataset(sequence_length=sequence_length, split=split, use_cached=use_cached,
                                   shuffle=shuffle, shuffle_buffer_size=shuffle_buffer_size, seed=seed,
                                   shard_info=shard_info, num_epochs=num_epochs,
                                   trim_output_features=trim_output_features, try_in_mem_cache=False)


SHUFFLE_BUFFER_LIMIT = 100_000  # examples; a split up to this size is shuffled uniformly


def _add_task(name: str, builder, split: str, tokenizer, template: str, system, image_patch: int = 0,
              image_token_id: int = 0):
    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    source = OrderedTfdsSource(tfds_name=f"{builder.name}:{builder.VERSION}",
                               tfds_data_dir=str(builder.data_dir_root), splits={"train": split})
    n = int(builder.info.splits[split].num_examples)
    seqio.TaskRegistry.add_provider(name, RenderedTask(
        name, source=source,
        preprocessors=[functools.partial(_render_preprocessor, tokenizer=tokenizer, template=template, system=system,
                                         image_patch=image_patch, image_token_id=image_token_id)],
        output_features=output_features(tokenizer), metric_fns=[],
        shuffle_buffer_size=max(1, min(n, SHUFFLE_BUFFER_LIMIT))))


def register_tasks(config, verbose: bool = True):
    """Prepare the config's tfds data and register one Task per split; returns ({kind: {split: n}}, reports).

    `config` fields used: agent_paths, general_paths, tokenizer, template, system, strict, cache_dir (and eta,
    only to tell whether an empty path list is an error). See configs/mixture/agenttuning.py.
    """
    if config.template not in TEMPLATES:
        raise ValueError(f"config.template={config.template!r} is not one of {sorted(TEMPLATES)}")
    eta = validate_eta(config.eta)
    tokenizer = load_tokenizer(config.tokenizer)
    system = config.system if config.system else None
    sizes, reports = {"agent": {}, "general": {}}, {}
    for kind, paths in (("agent", config.agent_paths), ("general", config.general_paths)):
        if not paths:
            continue
        builder, reports[kind] = builders.prepare(kind, list(paths), config.cache_dir, bool(config.strict), verbose)
        for split, info in sorted(builder.info.splits.items()):
            sizes[kind][split] = int(info.num_examples)
            _add_task(f"{kind}_{split}", builder, split, tokenizer, config.template, system,
                      int(config.get("image_patch", 0)), int(config.get("image_token_id", 0)))
    for kind, needed in (("agent", eta > 0), ("general", eta < 1)):
        if needed and not sizes[kind]:
            raise ValueError(f"eta={eta} needs {kind} data but config.{kind}_paths gave none ({config[kind + '_paths']})")
    return sizes, reports


def register_mixture(config, sizes) -> seqio.Mixture:
    """Register (replacing) the Mixture `config.name` over the Tasks of `sizes` with the rates of eta."""
    weights = parse_weights(config.get("agent_weights"))
    rates = mixture_rates(config.eta, sizes["agent"], sizes["general"], weights)
    if config.name in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove(config.name)
    return seqio.MixtureRegistry.add(config.name, sorted(rates.items()))


def register(config, verbose: bool = True):
    """Tasks + Mixture for `config`; returns (mixture, sizes, validation reports)."""
    sizes, reports = register_tasks(config, verbose)
    return register_mixture(config, sizes), sizes, reports


class PackedConversationConverter(seqio.FeatureConverter):
    """seqio FeatureConverter: rendered task examples -> packed rows of the batch contract.

    For `seqio.get_dataset(mixture, task_feature_lengths={"targets": T, "loss_mask": T}, feature_converter=...,
    trim_output_features=False)` (t5x/seqio pipelines; docs/seqio.md). It applies the same over-length policy and
    packing code as the trainer's iterator, so each conversation becomes the same tokens, positions and loss
    weights in a row of T; rows are filled one at a time in input order, while the trainer plans first-fit over
    the stream (agentlm.data.pipeline, for exact resume). seqio's own trimming would cut a conversation
    mid-turn before the policy sees it, so a trimmed example is refused with that advice.

    Vision mixtures (`image_patch` > 0 in the mixture config): pass the same `patch_dim` (patch * patch * 3) here;
    the packed rows then also hold `image_mask` and `image_patches` (agentlm.data.packing).
    """

    TASK_FEATURES = {"targets": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
                     "loss_mask": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32)}
    MODEL_FEATURES = {k: seqio.FeatureConverter.FeatureSpec(dtype=tf.float32 if k == "loss_weights" else tf.int32)
                      for k in ("inputs", "targets", "positions", "segment_ids", "loss_weights")}
    PACKING_FEATURE_DTYPES = {"segment_ids": tf.int32, "positions": tf.int32}

    def __init__(self, policy: str = "truncate", patch_dim: int = 0, **kwargs):
        kwargs.setdefault("apply_length_check", False)     # over-length inputs are handled by the policy
        # this converter packs by itself (never with seqio's packing ops); the flag only lifts seqio's rank-1 check
        # so the [T, patch_dim] patches can be a model feature
        kwargs.setdefault("use_custom_packing_ops", bool(patch_dim))
        super().__init__(pack=True, **kwargs)
        self.policy = policy
        self.patch_dim = int(patch_dim)
        if self.patch_dim:
            spec = seqio.FeatureConverter.FeatureSpec
            self.MODEL_FEATURES = {**type(self).MODEL_FEATURES, "image_mask": spec(dtype=tf.int32),
                                   "image_patches": spec(dtype=tf.uint8, rank=2)}
        self.counts = {"ok": 0, "truncated": 0, "dropped": 0}

    def _convert_features(self, ds, task_feature_lengths):
        from agentlm.data import packing

        seq_len = int(task_feature_lengths["targets"])
        has_ends = "exchange_ends" in ds.element_spec
        has_images = "image_mask" in ds.element_spec
        if has_images and not self.patch_dim:
            raise ValueError("the tasks carry images (image_patch > 0): pass patch_dim=patch*patch*3 to the converter")

        def rows():
            current, used = [], 0
            for ex in ds.as_numpy_iterator():
                ends = ex["exchange_ends"] if has_ends else [len(ex["targets"])]
                if has_ends and len(ends) and int(max(ends)) > len(ex["targets"]):
                    raise ValueError(
                        f"example {ex.get('id', b'?')!r} reached the converter cut to {len(ex['targets'])} tokens "
                        f"(it has {int(max(ends))}): seqio trimmed it mid-turn. Call seqio.get_dataset(..., "
                        "trim_output_features=False) so the converter applies the trainer's whole-exchange policy")
                ids, mask, status = packing.apply_length_policy(ex["targets"], ex["loss_mask"], ends, seq_len,
                                                                self.policy)
                self.counts[status] += 1
                if ids is None:
                    continue
                if used + len(ids) - 1 > seq_len:
                    yield {k: v[0] for k, v in packing.pack_rows([current], seq_len, self.patch_dim).items()}
                    current, used = [], 0
                if has_images:
                    current.append((ids, mask) + packing.cut_images(ex["image_mask"], ex["image_patches"], len(ids)))
                else:
                    current.append((ids, mask))
                used += len(ids) - 1
            if current:
                yield {k: v[0] for k, v in packing.pack_rows([current], seq_len, self.patch_dim).items()}

        signature = {k: tf.TensorSpec([seq_len], spec.dtype) for k, spec in self.MODEL_FEATURES.items()}
        if self.patch_dim:
            signature["image_patches"] = tf.TensorSpec([seq_len, self.patch_dim], tf.uint8)
        return tf.data.Dataset.from_generator(rows, output_signature=signature)

    def get_model_feature_lengths(self, task_feature_lengths):
        return {k: int(task_feature_lengths["targets"]) for k in self.MODEL_FEATURES}
