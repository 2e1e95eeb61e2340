"""The 'export' stage: kept trajectories in the AgentInstruct schema, one file per task family, plus a manifest.

Layout (so agentlm.data's AgentInstruct builder can be pointed at `export/agentinstruct/` as-is: every file in it
is a split named after its stem, and nothing else lives there):
  export/agentinstruct/<env>.jsonl    {"id", "conversations": [{"from", "value", "loss"}]}, sorted by id
  export/parquet/<env>.parquet        the same rows (schema of the published AgentInstruct parquet files)
  export/manifest.json                sources, teacher, thresholds, counts, sha256 of every file, the config

Rows with images (human turns as content parts, e.g. miniwob_vision): the JSONL keeps the parts with each image
copied to `export/agentinstruct/images/<sha256>.png` and referenced by that relative path + sha256; the family's
parquet file holds every turn as parts with the image bytes inline in a binary column (PARTS_SCHEMA), so it is
self-contained. agentlm.data.validate reads both.

Scaffold turns keep loss=false, trajectory turns loss=true, human turns loss=null. The output is a pure function
of the kept rows (no timestamps), so two runs that keep the same trajectories export byte-identical files.
"""
from __future__ import annotations

import collections
import hashlib
import json
import pathlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_pipeline.agents import describe_teacher
from data_pipeline.pipeline import Run
from data_pipeline.store import read_jsonl, write_json_atomic, write_text_atomic

PARQUET_SCHEMA = pa.schema([
    ("conversations", pa.list_(pa.struct([("from", pa.string()), ("loss", pa.bool_()), ("value", pa.string())]))),
    ("id", pa.string()),
])


_PART = pa.struct([("type", pa.string()), ("text", pa.string()), ("bytes", pa.binary()), ("sha256", pa.string()),
                   ("width", pa.int32()), ("height", pa.int32())])
PARTS_SCHEMA = pa.schema([
    ("conversations", pa.list_(pa.struct([("from", pa.string()), ("loss", pa.bool_()),
                                          ("value", pa.list_(_PART))]))),
    ("id", pa.string()),
])


class SchemaError(ValueError):
    pass


def _has_images(row: dict[str, Any]) -> bool:
    return any(isinstance(t["value"], list) for t in row["conversations"])


def _check_parts(rid: str, i: int, who: str, value: list) -> list[dict]:
    """A human turn's content parts, checked: text parts, and image parts with a readable path and a sha256."""
    if who != "human":
        raise SchemaError(f"{rid} turn {i}: content parts only in human turns")
    out = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
        elif kind == "image" and isinstance(part.get("path"), str) and isinstance(part.get("sha256"), str):
            out.append({k: part[k] for k in ("type", "path", "sha256", "width", "height") if k in part})
        else:
            raise SchemaError(f"{rid} turn {i} part {j}: expected a text part or an image part with path + sha256")
    return out


def _localise_images(row: dict[str, Any], jsonl_dir: pathlib.Path) -> dict[str, Any]:
    """The row with every image copied under `images/` beside the JSONL and referenced relatively (hash-checked)."""
    conv = []
    for t in row["conversations"]:
        if isinstance(t["value"], list):
            parts = []
            for part in t["value"]:
                if part["type"] == "image":
                    data = pathlib.Path(part["path"]).read_bytes()
                    if hashlib.sha256(data).hexdigest() != part["sha256"]:
                        raise SchemaError(f"{row['id']}: image {part['path']} does not match its sha256")
                    rel = f"images/{part['sha256']}.png"
                    if not (jsonl_dir / rel).is_file():
                        _write_bytes_atomic(jsonl_dir / rel, data)
                    part = {**part, "path": rel}
                parts.append(part)
            t = {**t, "value": parts}
        conv.append(t)
    return {**row, "conversations": conv}


def _write_bytes_atomic(path: pathlib.Path, data: bytes) -> None:
    from agentlm.cache import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _inline_parts(row: dict[str, Any], jsonl_dir: pathlib.Path) -> dict[str, Any]:
    """The parquet form of an image row: every turn a parts list, images as bytes."""
    def parts(value):
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        return [p if p["type"] == "text" else {"type": "image", "bytes": (jsonl_dir / p["path"]).read_bytes(),
                                               "sha256": p["sha256"], "width": p.get("width"),
                                               "height": p.get("height")} for p in value]
    return {**row, "conversations": [{**t, "value": parts(t["value"])} for t in row["conversations"]]}


def to_agentinstruct(row: dict[str, Any]) -> dict[str, Any]:
    """The exported row; raises SchemaError naming the id and turn when the conversation breaks the schema."""
    rid = row.get("id")
    if not isinstance(rid, str) or not rid:
        raise SchemaError(f"row without a string id: {str(row)[:120]}")
    conv = []
    for i, t in enumerate(row.get("conversations") or []):
        who, value, loss = t.get("from"), t.get("value"), t.get("loss")
        if isinstance(value, list):
            value = _check_parts(rid, i, who, value)
        elif who not in ("human", "gpt") or not isinstance(value, str):
            raise SchemaError(f"{rid} turn {i}: from={who!r} value type {type(value).__name__}")
        if who == "human" and loss is not None:
            raise SchemaError(f"{rid} turn {i}: human turns carry loss=null, got {loss!r}")
        if who == "gpt" and not isinstance(loss, bool):
            raise SchemaError(f"{rid} turn {i}: gpt turns carry loss true/false, got {loss!r}")
        if i % 2 != (0 if who == "human" else 1):
            raise SchemaError(f"{rid} turn {i}: turns must alternate human, gpt, ... (got {who})")
        conv.append({"from": who, "value": value, "loss": loss})
    if not conv or conv[-1]["from"] != "gpt" or not any(t["loss"] for t in conv):
        raise SchemaError(f"{rid}: a conversation must end with a gpt turn and train on at least one")
    return {"id": rid, "conversations": conv}


def sha256_file(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_stage(run: Run) -> dict[str, Any]:
    src = run.path("filtered.jsonl")
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist: run the 'filter' stage first")
    rows = sorted(read_jsonl(src), key=lambda r: r["id"])
    by_env: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by_env[r["env"]].append(to_agentinstruct(r))
    out = run.path("export")
    jsonl_dir, parquet_dir = out / "agentinstruct", out / "parquet"
    for d in (jsonl_dir, parquet_dir):
        d.mkdir(parents=True, exist_ok=True)
        for stale in d.iterdir():  # a family that lost all its rows must not linger from an earlier export
            if stale.is_file() and stale.stem not in by_env:
                stale.unlink()
    files: dict[str, dict[str, Any]] = {}
    formats = tuple(run.cfg.export.formats)
    for env, env_rows in sorted(by_env.items()):
        images = any(_has_images(r) for r in env_rows)
        if images:
            env_rows = [_localise_images(r, jsonl_dir) for r in env_rows]
        if "jsonl" in formats:
            path = jsonl_dir / f"{env}.jsonl"
            write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in env_rows))
            files[str(path.relative_to(out))] = {"env": env, "rows": len(env_rows), "sha256": sha256_file(path)}
        if "parquet" in formats:
            path = parquet_dir / f"{env}.parquet"
            tmp = path.with_suffix(".parquet.tmp")
            if images:
                pq.write_table(pa.Table.from_pylist([_inline_parts(r, jsonl_dir) for r in env_rows],
                                                    schema=PARTS_SCHEMA), tmp)
            else:
                pq.write_table(pa.Table.from_pylist(env_rows, schema=PARQUET_SCHEMA), tmp)
            tmp.replace(path)
            files[str(path.relative_to(out))] = {"env": env, "rows": len(env_rows), "sha256": sha256_file(path)}
    report_path = run.path("filter_report.json")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    cfg = run.cfg
    manifest = {
        "format": "agentinstruct",
        "schema": {"id": "str", "conversations": [{"from": "human|gpt", "value": "str", "loss": "null|false|true"}]},
        "builder_dir": "agentinstruct",
        "files": files,
        "counts": {env: len(v) for env, v in sorted(by_env.items())},
        "ids_sha256": hashlib.sha256("\n".join(r["id"] for r in rows).encode()).hexdigest(),
        "teacher": describe_teacher(run.teacher),
        "thresholds": cfg.filter.thresholds.to_dict(),
        "max_seq_len": int(cfg.filter.max_seq_len),
        "sources": {name: {**s.to_dict(), **{k: v for k, v in report.get("sources", {}).get(name, {}).items()
                                             if k in ("proposed", "instructions", "trajectories", "kept")}}
                    for name, s in cfg.sources.items() if s.get("enabled", True)},
        "report_total": report.get("total", {}),
        "spend": {k: v for k, v in run.ledger.total().__dict__.items()},
        "config_name": cfg.name,
    }
    write_json_atomic(out / "manifest.json", manifest)
    write_text_atomic(out / "README.md", f"AgentInstruct-format export of pipeline config '{cfg.name}'.\n"
                      f"Point the AgentInstruct tfds builder at {jsonl_dir}.\n")
    return manifest
