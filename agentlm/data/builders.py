"""tfds builders for local conversation files: AgentInstruct trajectories and ShareGPT general data.

Nothing is downloaded. The files come from the builder's `paths` argument (what the mixture config names) or,
when that is absent, from tfds' `manual_dir`. Every supported file (.parquet, .jsonl, .json) becomes one split
named after its stem: the published AgentInstruct files give splits `os`, `db`, `alfworld`, `webshop`, and the
data_pipeline export (`<task>.jsonl`) gives one split per task in the same way. Rows are validated
(agentlm.data.validate) while the splits are generated; the report is saved as `validation.json` next to the
prepared data and printed whenever the dataset is prepared or reused.

`prepare(kind, paths, cache_dir, strict)` keys the prepared copy by the files' paths, sizes and modification
times (and the strictness), so editing a source file re-prepares instead of silently reading a stale copy; the
copy is built once however many processes ask for it at the same time (agentlm.cache).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib

import numpy as np

# TensorFlow only reads files here; its C++ start-up chatter (CUDA probing, oneDNN notes) is noise in training logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402


def _keep_tensorflow_off_accelerators():
    """TensorFlow only reads files here; left alone it would reserve every GPU's memory that JAX needs."""
    for kind in ("GPU", "TPU"):
        try:
            tf.config.set_visible_devices([], kind)
        except (RuntimeError, ValueError):   # already initialised, or no such device type: nothing to hide
            pass


_keep_tensorflow_off_accelerators()

from agentlm import cache, storage  # noqa: E402
from agentlm.data.validate import (DataValidationError, ValidationReport, expand_paths, split_name,
                                   validated_rows)

LOSS_NONE, LOSS_FALSE, LOSS_TRUE = -1, 0, 1   # how the nullable `loss` flag is stored


def encode_loss(loss) -> int:
    return LOSS_NONE if loss is None else (LOSS_TRUE if loss else LOSS_FALSE)


def decode_loss(value: int):
    return None if value == LOSS_NONE else bool(value)


class _ConversationFiles(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared logic; subclasses differ only in name and description."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Validated conversations from local files, one split per file."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put .parquet/.jsonl/.json conversation files in manual_dir (one split per file)."
    DESCRIPTION = ""

    def __init__(self, *, paths=None, strict: bool = True, **kwargs):
        self._paths = paths
        self._strict = strict
        self.report = ValidationReport()
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            disable_shuffling=True,          # keep file order: row k of a split is row k of its file
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "conversations": tfds.features.Sequence({
                    "from": tfds.features.Text(),
                    "value": tfds.features.Text(),
                    "loss": np.int8,       # -1 null, 0 false, 1 true
                }),
                # encoded image bytes in the order of the image sentinels in the turns (empty for text rows)
                "images": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_)),
            }),
        )

    def _split_generators(self, dl_manager):
        files = expand_paths(self._paths if self._paths is not None else [dl_manager.manual_dir])
        if not files:
            raise DataValidationError("unreadable_file", str(self._paths or dl_manager.manual_dir),
                                      "no .parquet/.jsonl/.json files found")
        by_split: dict[str, list[dict]] = {}
        origin: dict[str, pathlib.Path] = {}
        for path in files:
            name = split_name(path)
            if name in origin:
                raise ValueError(f"{path} and {origin[name]} both map to split {name!r}; rename one of them")
            origin[name] = path
            by_split[name] = list(validated_rows(path, self._strict, self.report, name))
        print(self.report.summary(f"{self.name} validation ({'strict' if self._strict else 'lenient'})"))
        nonempty = {k: v for k, v in by_split.items() if v}
        if not nonempty:
            raise DataValidationError("no_valid_rows", ", ".join(map(str, files)),
                                      "no valid rows at all\n" + self.report.summary())
        return {name: self._generate_examples(name, rows) for name, rows in nonempty.items()}

    def _generate_examples(self, split, rows):
        for i, row in enumerate(rows):
            yield f"{split}-{i:08d}", {
                "id": row["id"],
                "conversations": {
                    "from": [t["from"] for t in row["conversations"]],
                    "value": [t["value"] for t in row["conversations"]],
                    "loss": [encode_loss(t["loss"]) for t in row["conversations"]],
                },
                "images": list(row.get("images", [])),
            }


class AgentInstruct(_ConversationFiles):
    """AgentInstruct trajectories: {id, conversations: [{from, value, loss}]}; one split per task file."""

    DESCRIPTION = "AgentInstruct agent trajectories from local parquet/JSON/JSONL files (one split per task)."


class ShareGpt(_ConversationFiles):
    """General-domain conversations in ShareGPT layout ({id, conversations: [{from, value}]})."""

    DESCRIPTION = "General-domain ShareGPT conversations from local JSON/JSONL/parquet files."


BUILDERS = {"agent": AgentInstruct, "general": ShareGpt}
# bump when the prepared layout changes without a tfds VERSION change (2: an agentlm.cache entry with a marker;
# 3: the `images` feature of rows with image content parts)
_FORMAT = "ordered-3-images"


def _fingerprint(files: list[pathlib.Path], strict: bool, builder_cls) -> str:
    h = hashlib.sha256()
    h.update(f"{builder_cls.name}:{builder_cls.VERSION}:{_FORMAT}:strict={strict}".encode())
    for f in files:
        try:
            st = f.stat()
            if storage.is_remote(f):  # epath's stat: size and whole-second mtime of the object
                h.update(f"{f}:{st.length}:{st.mtime}".encode())
            else:
                h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{f}:missing".encode())
    return h.hexdigest()[:16]


def _report_path(data_dir: pathlib.Path, builder_cls) -> pathlib.Path:
    """Where the validation report of a prepared copy lives (beside tfds' own files for the builder version)."""
    return data_dir / builder_cls.name / str(builder_cls.VERSION) / "validation.json"


def prepare(kind: str, paths, cache_dir, strict: bool = True, verbose: bool = True):
    """Prepare (or reuse) the tfds copy of `paths`; returns (builder, ValidationReport).

    The copy is an `agentlm.cache` directory entry: concurrent processes (a sweep's runs, a launcher's workers)
    that need the same copy wait while one prepares it in a temporary directory, and a copy left without its
    completion marker or its validation report (a killed preparation) is prepared again, with a log line."""
    builder_cls = BUILDERS[kind]
    files = expand_paths(paths)
    data_dir = pathlib.Path(cache_dir).expanduser() / f"{builder_cls.name}-{_fingerprint(files, strict, builder_cls)}"
    prepared: list[ValidationReport] = []

    def build(tmp: pathlib.Path) -> None:
        fresh = builder_cls(paths=paths, strict=strict, data_dir=str(tmp))
        fresh.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(files[0].parent) if files else None, verify_ssl=False))
        _report_path(tmp, builder_cls).write_text(json.dumps(fresh.report.to_json(), indent=1))
        prepared.append(fresh.report)

    cache.build_once(data_dir, build, directory=True, valid=lambda d: _report_path(d, builder_cls).is_file(),
                     what=f"prepared {builder_cls.name} copy of {len(files)} file(s)")
    builder = builder_cls(paths=paths, strict=strict, data_dir=str(data_dir))
    if prepared:
        return builder, prepared[0]
    report = ValidationReport.from_json(json.loads(_report_path(data_dir, builder_cls).read_text()))
    if verbose:
        print(report.summary(f"{builder_cls.name} validation (reused {builder.data_dir})"))
    return builder, report
