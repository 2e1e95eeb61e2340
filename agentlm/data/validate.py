"""Reading conversation files (parquet, JSON, JSONL) and validating their rows before anything trains on them.

Bad training data is silent: a mislabelled role or an empty trained reply only shows up as a worse model.
So every row is checked once, when the tfds builders prepare a dataset, and each problem has a *reason*
(a stable short name used in counts and tests). Strict mode raises `DataValidationError` at the first problem,
naming the file, the row (and line for JSONL), the row id and the field; lenient mode skips the row and counts
the reason. Either way a `ValidationReport.summary()` is printed.

Clean rows have canonical roles ("system" only first, then "human"/"gpt" alternating, human first), string
values, and `loss` in {None, False, True}. A trailing human turn (nothing answers it) is trimmed and counted.

Human turns may carry images as a list of content parts (agentlm.data.images): each image is read, hash-checked,
decoded and size-checked here, so a missing file, corrupt bytes, a wrong size or a hash mismatch is a row problem
like any other. A clean row with images holds the turn text with an image sentinel per image and `images`, the
image bytes in order; a text-only row is unchanged.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib
import re
from typing import Any, Iterator

from agentlm import storage
from agentlm.data.images import IMAGE_SENTINEL, ImageError, flatten_parts
from agentlm.data.template import ROLE_ALIASES

SUPPORTED_SUFFIXES = (".parquet", ".jsonl", ".json")

# reason -> what it means (the summary prints these; tests assert each one is reachable)
REASONS = {
    "unreadable_file": "file missing, unreadable or not valid parquet/JSON",
    "unsupported_file": "file extension is not .parquet, .jsonl or .json",
    "bad_top_level": "a .json file whose top level is not a list of rows",
    "bad_json_line": "a JSONL line that is not valid JSON",
    "bad_encoding": "a JSONL line that is not valid UTF-8",
    "row_not_object": "a row that is not a JSON object",
    "missing_conversations": "row has no 'conversations' field",
    "conversations_not_list": "'conversations' is not a list",
    "empty_conversation": "'conversations' is empty",
    "turn_not_object": "a turn that is not an object",
    "missing_from": "a turn without 'from'",
    "missing_value": "a turn without 'value'",
    "unknown_role": "'from' is not human/user, gpt/assistant or a leading system",
    "misplaced_system": "a system turn that is not the first turn",
    "value_not_string": "'value' is not a string",
    "empty_value": "an empty or whitespace-only untrained turn",
    "empty_trained_turn": "a trained gpt turn with no content",
    "starts_with_gpt": "the first (non-system) turn is not a human turn",
    "not_alternating": "two turns of the same role in a row",
    "bad_loss": "'loss' is not true, false or null",
    "loss_on_human": "a human turn marked loss=true",
    "no_reply": "no gpt turn at all",
    "no_trained_turn": "no gpt turn is trained (all loss=false)",
    "bad_id": "'id' present but not a non-empty string or integer",
    "duplicate_id": "an id already seen in the same source",
    "bad_content_part": "a content part that is not {type: text|image, ...}, or parts in a gpt turn",
    "bad_image_part": "an image part without exactly one of path/bytes, or without a sha256",
    "missing_image": "an image file that does not exist or cannot be read",
    "corrupt_image": "image bytes that do not decode as an image",
    "wrong_image_size": "an image whose width/height differ from the ones the part declares",
    "image_hash_mismatch": "an image whose sha256 differs from the one the part declares",
    "reserved_char": "text containing U+E000, the code point reserved for image placeholders",
}
NOTES = {"trailing_human_trimmed": "a final human turn with no reply was dropped (row kept)",
         "empty_file": "a file with no rows"}


class DataValidationError(ValueError):
    """Strict-mode failure; the message names file, row, id, field and the reason."""

    def __init__(self, reason: str, where: str, message: str):
        self.reason = reason
        super().__init__(f"{where}: {message} [{reason}]")


class _RowProblem(Exception):
    def __init__(self, reason: str, field: str, message: str):
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


@dataclasses.dataclass
class ValidationReport:
    """Counts of kept rows per source and of skipped rows per reason (plus the first few messages)."""

    kept: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    samples: dict = dataclasses.field(default_factory=dict)   # reason -> first messages

    def record(self, reason: str, message: str, count: int = 1):
        self.skipped[reason] += count
        self.samples.setdefault(reason, [])
        if len(self.samples[reason]) < 3:
            self.samples[reason].append(message)

    def to_json(self) -> dict:
        return {"kept": dict(self.kept), "skipped": dict(self.skipped), "notes": dict(self.notes),
                "samples": self.samples}

    @classmethod
    def from_json(cls, d: dict) -> "ValidationReport":
        return cls(collections.Counter(d["kept"]), collections.Counter(d["skipped"]),
                   collections.Counter(d["notes"]), dict(d["samples"]))

    def summary(self, title: str = "data validation") -> str:
        lines = [f"{title}: kept {sum(self.kept.values())} rows "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(self.kept.items())) or 'none'}); "
                 f"skipped {sum(self.skipped.values())}"]
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n:6d} {reason}: {REASONS.get(reason, '')}")
            lines += [f"           e.g. {m}" for m in self.samples.get(reason, [])[:1]]
        for note, n in sorted(self.notes.items()):
            lines.append(f"  note    {n:6d} {note}: {NOTES.get(note, '')}")
        return "\n".join(lines)


def split_name(path: pathlib.Path) -> str:
    """The source/split name of a file: its stem with non-word characters replaced ("os.jsonl" -> "os")."""
    name = re.sub(r"\W", "_", path.name.split(".")[0]).strip("_").lower()
    return name or "data"


def expand_paths(paths) -> list[pathlib.Path]:
    """Files named directly, plus every supported file inside named directories (sorted, non-recursive).

    Local paths come back as pathlib paths; bucket URLs (gs://...) as `storage.path`s, read the same way."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in map(_as_path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUPPORTED_SUFFIXES)
        else:
            files.append(p)      # missing files surface as unreadable_file during validation
    return files


def _as_path(p):
    return storage.path(p) if storage.is_remote(p) else pathlib.Path(p).expanduser()


def _read_rows(path: pathlib.Path) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs; a row that cannot be parsed comes as a _RowProblem instance."""
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    suffix = path.suffix
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with path.open("rb") as fh:
            table = pq.read_table(fh)
        for i, row in enumerate(table.to_pylist()):
            yield f"row {i}", row
    elif suffix == ".jsonl":
        with path.open("rb") as fh:
            row_index = 0
            for line_no, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                where = f"row {row_index} (line {line_no})"
                row_index += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    yield where, _RowProblem("bad_encoding", "<line>", f"not UTF-8: {err}")
                    continue
                try:
                    yield where, json.loads(text)
                except json.JSONDecodeError as err:
                    yield where, _RowProblem("bad_json_line", "<line>", f"invalid JSON: {err}")
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise _RowProblem("bad_top_level", "<file>", f"top level is {type(data).__name__}, expected a list of rows")
        for i, row in enumerate(data):
            yield f"row {i}", row
    else:
        raise _RowProblem("unsupported_file", "<file>", f"unsupported extension {suffix!r}; use {SUPPORTED_SUFFIXES}")


def clean_row(row: Any, base_dir: pathlib.Path | None = None) -> tuple[dict, bool]:
    """(canonical row, trimmed_trailing_human) or raise _RowProblem naming the field.

    `base_dir` resolves relative image paths (the directory of the data file)."""
    if not isinstance(row, dict):
        raise _RowProblem("row_not_object", "<row>", f"row is {type(row).__name__}, expected an object")
    row_id = row.get("id")
    if row_id is not None and not ((isinstance(row_id, str) and row_id.strip()) or
                                   (isinstance(row_id, int) and not isinstance(row_id, bool))):
        raise _RowProblem("bad_id", "id", f"id {row_id!r} is not a non-empty string or integer")
    if "conversations" not in row:
        raise _RowProblem("missing_conversations", "conversations", "no 'conversations' field")
    conv = row["conversations"]
    if not isinstance(conv, list):
        raise _RowProblem("conversations_not_list", "conversations", f"is {type(conv).__name__}, expected a list")
    if not conv:
        raise _RowProblem("empty_conversation", "conversations", "is empty")
    turns, images = [], []
    for i, turn in enumerate(conv):
        f = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise _RowProblem("turn_not_object", f, f"is {type(turn).__name__}, expected an object")
        if "from" not in turn and "role" not in turn:
            raise _RowProblem("missing_from", f + ".from", "missing")
        raw_role = turn.get("from", turn.get("role"))
        role = ROLE_ALIASES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise _RowProblem("unknown_role", f + ".from", f"unknown role {raw_role!r}")
        if "value" not in turn and "content" not in turn:
            raise _RowProblem("missing_value", f + ".value", "missing")
        value = turn.get("value", turn.get("content"))
        if isinstance(value, str) and IMAGE_SENTINEL in value:
            raise _RowProblem("reserved_char", f + ".value", "contains U+E000 (reserved for image placeholders)")
        if isinstance(value, (list, tuple)):
            if any(isinstance(p, dict) and IMAGE_SENTINEL in str(p.get("text", "")) for p in value):
                raise _RowProblem("reserved_char", f + ".value", "contains U+E000 (reserved for image placeholders)")
            try:
                value, turn_images = flatten_parts(value, base_dir, f + ".value")
            except ImageError as err:
                raise _RowProblem(err.reason, err.field, err.message) from None
            if turn_images and role != "human":
                raise _RowProblem("bad_content_part", f + ".value", f"images are only allowed in human turns, "
                                  f"not in a {role} turn")
            images += turn_images
        if not isinstance(value, str):
            raise _RowProblem("value_not_string", f + ".value", f"is {type(value).__name__}, expected a string")
        loss = turn.get("loss")
        if loss is not None and not isinstance(loss, bool):
            raise _RowProblem("bad_loss", f + ".loss", f"{loss!r} is not true, false or null")
        if role == "system":
            if i != 0:
                raise _RowProblem("misplaced_system", f + ".from", "a system turn is only allowed first")
            turns.append({"from": "system", "value": value, "loss": None})
            continue
        position = len(turns) - (1 if turns and turns[0]["from"] == "system" else 0)
        expected = "human" if position % 2 == 0 else "gpt"
        if role != expected:
            reason = "starts_with_gpt" if position == 0 else "not_alternating"
            raise _RowProblem(reason, f + ".from", f"expected a {expected} turn, got {raw_role!r}")
        if role == "human" and loss is True:
            raise _RowProblem("loss_on_human", f + ".loss", "loss=true on a human turn")
        trained = role == "gpt" and loss is not False
        if not value.replace(IMAGE_SENTINEL, "x").strip():
            reason = "empty_trained_turn" if trained else "empty_value"
            raise _RowProblem(reason, f + ".value", "empty or whitespace-only")
        turns.append({"from": role, "value": value, "loss": loss if role == "gpt" else None})
    trimmed = False
    if turns[-1]["from"] == "human":
        dropped = turns.pop()
        trimmed = True
        if IMAGE_SENTINEL in dropped["value"]:
            images = images[:len(images) - dropped["value"].count(IMAGE_SENTINEL)]
    gpt = [t for t in turns if t["from"] == "gpt"]
    if not gpt:
        raise _RowProblem("no_reply", "conversations", "no gpt turn")
    if not any(t["loss"] is not False for t in gpt):
        raise _RowProblem("no_trained_turn", "conversations", "every gpt turn has loss=false")
    clean = {"id": "" if row_id is None else str(row_id), "conversations": turns}
    if images:
        clean["images"] = [im.data for im in images]
    return clean, trimmed


def validated_rows(path: pathlib.Path, strict: bool, report: ValidationReport, source: str | None = None):
    """Yield clean rows of one file; count (lenient) or raise (strict) every problem."""
    source = source or split_name(path)
    seen_ids: set[str] = set()
    kept = rows_seen = 0

    def problem(reason, where, message):
        if strict:
            raise DataValidationError(reason, where, message)
        report.record(reason, f"{where}: {message}")

    try:
        for where, row in _read_rows(path):
            rows_seen += 1
            location = f"{path}: {where}"
            if isinstance(row, _RowProblem):
                problem(row.reason, location, f"{row.field}: {row.message}")
                continue
            row_id = row.get("id") if isinstance(row, dict) else None
            if row_id is not None:
                location += f" (id {row_id!r})"
            try:
                clean, trimmed = clean_row(row, path.parent)
            except _RowProblem as p:
                problem(p.reason, location, f"field {p.field}: {p.message}")
                continue
            if clean["id"]:
                if clean["id"] in seen_ids:
                    problem("duplicate_id", location, f"field id: {clean['id']!r} already seen in {source}")
                    continue
                seen_ids.add(clean["id"])
            else:
                clean["id"] = f"{source}_{where.split()[1]}"
            if trimmed:
                report.notes["trailing_human_trimmed"] += 1
            kept += 1
            yield clean
    except DataValidationError:
        raise
    except _RowProblem as p:
        problem(p.reason, str(path), p.message)
    except (OSError, ValueError, UnicodeDecodeError) as err:     # missing file, bad parquet, bad whole-file JSON
        problem("unreadable_file", str(path), f"cannot read: {type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own error types for corrupt files
        if type(err).__module__.startswith("pyarrow"):
            problem("unreadable_file", str(path), f"cannot read: {type(err).__name__}: {err}")
        else:
            raise
    if rows_seen == 0 and path.is_file():
        report.notes["empty_file"] += 1
    report.kept[source] += kept
