"""Rows whose human turns carry images: validation errors name the row, and image rows round-trip
validate -> tfds -> seqio -> packed batches with placeholders, loss masks and patches where they belong."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentlm.data import images
from agentlm.data.config import default_config
from agentlm.data.validate import DataValidationError, ValidationReport, validated_rows

PATCH = 8
SEQ_LEN = 256


def _image(value: int, size=(16, 16)) -> np.ndarray:
    """A flat-colour image whose colour encodes `value`, so a patch tells which image it came from."""
    return np.full((size[1], size[0], 3), value, np.uint8)


def _file_part(dirpath, name, pixels, **extra):
    data = images.encode_png(pixels)
    (dirpath / name).write_bytes(data)
    return {"type": "image", "path": name, "sha256": images.sha256(data), **extra}


def _row(i, parts):
    return {"id": f"shot_{i}", "conversations": [
        {"from": "human", "value": parts},
        {"from": "gpt", "value": f"Action: click {i}", "loss": True}]}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _strict_error(path) -> DataValidationError:
    with pytest.raises(DataValidationError) as err:
        list(validated_rows(path, True, ValidationReport()))
    return err.value


@pytest.mark.parametrize("case,reason", [
    ("missing", "missing_image"), ("size", "wrong_image_size"), ("corrupt", "corrupt_image"),
    ("hash", "image_hash_mismatch"), ("no_hash", "bad_image_part"), ("gpt_parts", "bad_content_part")])
def test_malformed_image_rows_name_the_row(tmp_path, case, reason):
    good = _row(0, [{"type": "text", "text": "fine"}, _file_part(tmp_path, "ok.png", _image(1))])
    part = _file_part(tmp_path, "b.png", _image(2))
    if case == "missing":
        part["path"] = "nowhere.png"
    elif case == "size":
        part["width"] = 32
    elif case == "corrupt":
        (tmp_path / "bad.bin").write_bytes(b"not a png at all")
        part = {"type": "image", "path": "bad.bin", "sha256": images.sha256(b"not a png at all")}
    elif case == "hash":
        part["sha256"] = "0" * 64
    elif case == "no_hash":
        del part["sha256"]
    bad = _row(1, [{"type": "text", "text": "look"}, part])
    if case == "gpt_parts":
        bad = {"id": "shot_1", "conversations": [{"from": "human", "value": "hi"},
                                                 {"from": "gpt", "value": [part]}]}
    path = tmp_path / "shots.jsonl"
    _write_jsonl(path, [good, bad])
    err = _strict_error(path)
    assert err.reason == reason
    assert "row 1" in str(err) and "'shot_1'" in str(err) and "conversations[" in str(err), str(err)
    report = ValidationReport()
    kept = list(validated_rows(path, False, report))
    assert [r["id"] for r in kept] == ["shot_0"] and report.skipped[reason] == 1


def test_reserved_placeholder_char_in_text_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    _write_jsonl(path, [{"conversations": [{"from": "human", "value": "a" + images.IMAGE_SENTINEL},
                                           {"from": "gpt", "value": "b"}]}])
    assert _strict_error(path).reason == "reserved_char"


def test_parquet_bytes_images_and_text_rows_unchanged(tmp_path):
    """In parquet every turn's value has one type, so text turns are single text parts there."""
    data = images.encode_png(_image(7))
    text = lambda s: [{"type": "text", "text": s}]
    rows = [{"id": "shot_0", "conversations": [
                {"from": "human", "value": [{"type": "image", "bytes": data, "sha256": images.sha256(data)},
                                            {"type": "text", "text": "what now?"}]},
                {"from": "gpt", "value": text("Action: click 0"), "loss": True}]},
            {"id": "text_1", "conversations": [{"from": "human", "value": text("plain")},
                                               {"from": "gpt", "value": text("reply"), "loss": True}]}]
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    clean = list(validated_rows(path, True, ValidationReport()))
    assert clean[0]["images"] == [data]
    assert clean[0]["conversations"][0]["value"] == images.IMAGE_SENTINEL + "what now?"
    assert "images" not in clean[1] and clean[1]["conversations"][0]["value"] == "plain"


def test_template_places_placeholders_with_loss_zero(stories_tokenizer):
    from agentlm.data.template import render_detailed

    conv = [{"from": "human", "value": f"Look {images.IMAGE_SENTINEL} then {images.IMAGE_SENTINEL} done"},
            {"from": "gpt", "value": "click", "loss": True}]
    r = render_detailed(conv, stories_tokenizer, image_tokens=[4, 6], image_token_id=0)
    mask = np.asarray(r.image_mask)
    assert mask.sum() == 10 and len(mask) == len(r.ids)
    runs = np.flatnonzero(np.diff(np.r_[0, mask, 0]))
    assert [b - a for a, b in zip(runs[::2], runs[1::2])] == [4, 6]
    assert not np.asarray(r.loss_mask)[mask == 1].any() and np.asarray(r.loss_mask).sum() > 0
    text_conv = [{"from": "human", "value": "Look then done"}, {"from": "gpt", "value": "click", "loss": True}]
    plain = render_detailed(text_conv, stories_tokenizer)
    assert plain.ids == render_detailed(text_conv, stories_tokenizer, image_tokens=[]).ids
    with pytest.raises(ValueError, match="images given"):
        render_detailed(conv, stories_tokenizer, image_tokens=[4, 6, 2])


def test_image_rows_round_trip_to_packed_batches(tmp_path, stories_tokenizer):
    import seqio

    from agentlm.data import tasks
    from agentlm.data.template import render

    agent, general = tmp_path / "agent", tmp_path / "general"
    agent.mkdir(), general.mkdir()
    shots = []
    for i in range(12):     # 1 or 2 images per row, flat colour 10 * i + k; sizes 16x16 and 24x16
        parts = [{"type": "text", "text": f"Task {i}: click the box."},
                 _file_part(agent, f"s{i}a.png", _image(10 * i + 1), width=16, height=16)]
        if i % 2:
            parts += [{"type": "text", "text": "and this:"}, _file_part(agent, f"s{i}b.png", _image(10 * i + 2,
                                                                                            (24, 16)))]
        shots.append(_row(i, parts))
    _write_jsonl(agent / "shots.jsonl", shots)
    text_rows = [{"id": f"g{i}", "conversations": [{"from": "human", "value": f"Say {i}."},
                                                   {"from": "gpt", "value": f"{i} {i}"}]} for i in range(12)]
    _write_jsonl(general / "chat.jsonl", text_rows)
    config = default_config(name="image_round_trip", eta=0.5, agent_paths=(str(agent),),
                            general_paths=(str(general),), tokenizer=stories_tokenizer.path, system="",
                            image_patch=PATCH, cache_dir=str(tmp_path / "tfds"))
    tasks.register(config, verbose=False)
    ds = seqio.get_dataset(config.name, task_feature_lengths={"targets": SEQ_LEN, "loss_mask": SEQ_LEN},
                           dataset_split="train", shuffle=False, num_epochs=None, trim_output_features=False,
                           feature_converter=tasks.PackedConversationConverter(patch_dim=PATCH * PATCH * 3))
    text_ids = {tuple(render(r["conversations"], stories_tokenizer, system=None)[0][:-1]) for r in text_rows}
    seen_images, seen_text = set(), 0
    for batch in ds.take(60).as_numpy_iterator():
        mask, patches = batch["image_mask"], batch["image_patches"]
        assert not batch["loss_weights"][mask == 1].any()           # placeholders are never trained
        assert not patches[mask == 0].any()                          # patches only at placeholders
        for seg in set(batch["segment_ids"].tolist()) - {0}:
            at = batch["segment_ids"] == seg
            seg_mask, seg_patches = mask[at], patches[at]
            if not seg_mask.any():
                assert tuple(batch["inputs"][at]) in text_ids        # text rows exactly as rendered without images
                seen_text += 1
                continue
            assert batch["loss_weights"][at].sum() > 0
            colours = [int(p[0]) for p in seg_patches[seg_mask == 1]]
            assert all((p == p[0]).all() for p in seg_patches[seg_mask == 1])
            row = colours[0] // 10
            expected = [10 * row + 1] * 4 + ([10 * row + 2] * 6 if row % 2 else [])
            assert colours == expected, (row, colours)
            seen_images.add(row)
    assert len(seen_images) == 12 and seen_text > 0
