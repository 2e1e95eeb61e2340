"""Image content parts of chat requests: OpenAI's data-URL parts decoded, checked against the served model's vision
path, and turned into placeholder counts + patches by the same code that renders training rows
(agentlm.data.images.to_patches). Every problem is a 400 naming the message and part."""
from __future__ import annotations

from typing import Any

from agentlm.infer.openai_api import ApiError

# OpenAI chat's {"type": "image_url", "image_url": {"url": ...}}; the Responses-style {"type": "input_image",
# "image_url": "..."} that newer clients also build; both carry a URL, of which only data: URLs are read.
IMAGE_PART_TYPES = ("image_url", "input_image")


def image_pixels(part: dict, where: str):
    """A data-URL image part -> uint8 [H, W, 3]; every problem is a 400 naming the part."""
    import base64
    import binascii

    from agentlm.data.images import ImageError, decode

    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise ApiError(400, f"{where}: an image part needs image_url.url (a data: URL)", "messages")
    if url.startswith(("http://", "https://")):
        raise ApiError(400, f"{where}: image URLs are not fetched (this server downloads nothing); send the image "
                            "inline as a data URL: data:image/png;base64,...", "messages", "image_url_not_supported")
    if url.startswith("data:"):
        head, sep, payload = url.partition(",")
        if not (head.startswith("data:image/") and sep and head.endswith(";base64")):
            raise ApiError(400, f"{where}: image_url.url must be a base64 data URL (data:image/png;base64,...), "
                                f"got {url[:40]!r}", "messages")
    else:  # OpenAI's image_url.url may also be the bare base64 image data
        payload = url
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}: the image's base64 data does not decode (image_url.url must be a data URL "
                            "or base64 image data)", "messages") from None
    try:
        return decode(data)
    except ImageError as err:
        raise ApiError(400, f"{where}: {err.message}", "messages") from None


def image_inputs(images: list, cfg) -> tuple[list[int], Any]:
    """(placeholder count per image, patches) for the model, through the training code (images.to_patches);
    a text-only model, or an image the vision path cannot take, is a 400 naming the part."""
    from agentlm.data.images import image_tokens, to_patches

    if cfg.vision is None:
        raise ApiError(400, f"{images[0][0]}: this model has no vision path; it does not accept images",
                       "messages", "images_not_supported")
    p, most = cfg.vision.patch_size, cfg.vision.max_patches
    for where, pixels in images:
        h, w = pixels.shape[:2]
        try:
            n = image_tokens(w, h, p)
        except ValueError:
            raise ApiError(400, f"{where}: the image is {w}x{h}; this model takes images whose width and height "
                                f"are multiples of its {p}-pixel patch", "messages", "bad_image_size") from None
        if n > most:
            raise ApiError(400, f"{where}: the image is {w}x{h} = {n} patches of {p} pixels; this model takes at "
                                f"most {most} patches per image", "messages", "bad_image_size")
    return to_patches([pixels for _, pixels in images], p)
