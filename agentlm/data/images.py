"""Images inside conversations: the content-part format, loading with hash checks, and patchification.

A human turn's `value` may be a list of content parts, as in the OpenAI chat format, instead of a string:

    {"type": "text", "text": "Click the button."}
    {"type": "image", "path": "shots/0001.png", "sha256": "<hex>", "width": 160, "height": 160}
    {"type": "image", "bytes": b"<png bytes>", "sha256": "<hex>"}

Any turn may be a list of parts (a parquet column needs one type for every turn's value); images are only
allowed in human turns. An image is stored as a file referenced by path (relative paths resolve against the directory of the data file
that names them) or as raw bytes in a binary column; either way with the sha256 of those bytes, so a swapped or
damaged file is caught instead of being trained on. Never as base64 inside text. `width`/`height` are optional;
when given they must match the decoded image.

Inside the project a validated turn carries its text with `IMAGE_SENTINEL` at each image's place and the row
carries the image bytes in order (`images`); the chat template turns each sentinel into `n` placeholder tokens
(n = number of patches) with loss 0, and the model replaces those positions' embeddings by projected patches.
Text-only rows contain no sentinel and render exactly as before.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import pathlib

import numpy as np

# A private-use code point: never produced by tokenizers' normal text and rejected in row text by the validator.
IMAGE_SENTINEL = "\ue000"


class ImageError(ValueError):
    """A malformed image part; `reason` is a validation reason name, `field` the part's field."""

    def __init__(self, reason: str, field: str, message: str):
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    data: bytes           # the encoded file bytes (PNG/JPEG/...), hash-checked
    width: int
    height: int


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 [H, W, 3] (RGB); raises ImageError("corrupt_image") when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageError("corrupt_image", "bytes", f"cannot decode image: {type(err).__name__}: {err}") from None


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (what the environments and tests write)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_part(part: dict, base_dir: pathlib.Path | None, field: str) -> LoadedImage:
    """Read, hash-check and decode one image part; every problem is an ImageError naming the field."""
    # None counts as absent: parquet gives every part of a column the union of the parts' fields
    has_path, has_bytes = part.get("path") is not None, part.get("bytes") is not None
    if has_path == has_bytes:
        raise ImageError("bad_image_part", field, "an image part needs exactly one of 'path' or 'bytes'")
    want = part.get("sha256")
    if not isinstance(want, str) or len(want) != 64:
        raise ImageError("bad_image_part", field + ".sha256", f"needs the 64-hex sha256 of the image, got {want!r}")
    if has_path:
        path = pathlib.Path(str(part["path"])).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ImageError("missing_image", field + ".path", f"cannot read image file {path}: {err}") from None
    else:
        data = part["bytes"]
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError("bad_image_part", field + ".bytes", f"is {type(data).__name__}, expected bytes")
        data = bytes(data)
    if sha256(data) != want.lower():
        raise ImageError("image_hash_mismatch", field + ".sha256", f"sha256 of the image is {sha256(data)}, "
                         f"the row says {want}")
    try:
        pixels = decode(data)
    except ImageError as err:
        raise ImageError(err.reason, field, err.message) from None
    h, w = pixels.shape[:2]
    for key, actual in (("width", w), ("height", h)):
        declared = part.get(key)
        if declared is not None and (isinstance(declared, bool) or declared != actual):
            raise ImageError("wrong_image_size", f"{field}.{key}", f"declares {key}={declared!r}, the image is "
                             f"{w}x{h}")
    return LoadedImage(data, w, h)


def flatten_parts(parts, base_dir: pathlib.Path | None, field: str) -> tuple[str, list[LoadedImage]]:
    """A content-part list -> (text with IMAGE_SENTINEL per image, loaded images in order)."""
    texts, images = [], []
    for j, part in enumerate(parts):
        f = f"{field}[{j}]"
        if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
            raise ImageError("bad_content_part", f, f"a content part must be {{'type': 'text'|'image', ...}}, "
                             f"got {part!r:.80}")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise ImageError("bad_content_part", f + ".text", "a text part needs a string 'text'")
            texts.append(part["text"])
        else:
            images.append(load_part(part, base_dir, f))
            texts.append(IMAGE_SENTINEL)
    return "".join(texts), images


def image_tokens(width: int, height: int, patch: int) -> int:
    """Placeholder tokens one image takes: one per patch; the size must be a multiple of the patch."""
    if width % patch or height % patch:
        raise ValueError(f"image of {width}x{height} is not a multiple of the {patch}-pixel patch size")
    return (width // patch) * (height // patch)


def patchify(pixels: np.ndarray, patch: int) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [(H/p) * (W/p), p * p * C], patches in row-major order (Fuyu's layout)."""
    h, w, c = pixels.shape
    image_tokens(w, h, patch)
    x = pixels.reshape(h // patch, patch, w // patch, patch, c).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(x.reshape((h // patch) * (w // patch), patch * patch * c))


def to_patches(pixels: list[np.ndarray], patch: int) -> tuple[list[int], np.ndarray]:
    """Decoded images of one conversation -> (placeholder count per image, uint8 patches [sum of counts,
    patch * patch * 3]): what the chat template's `image_tokens` and the model's `image_patches` take. Training
    (agentlm.data.tasks) and serving (agentlm.infer.openai_api) both call this, so they cannot disagree."""
    counts = [image_tokens(p.shape[1], p.shape[0], patch) for p in pixels]
    patches = (np.concatenate([patchify(p, patch) for p in pixels]) if pixels
               else np.zeros((0, patch * patch * 3), np.uint8))
    return counts, patches
