"""What a request to ``POST /predict`` carries, read in memory and checked: the body within
its size limit, the image out of a multipart form or the raw body, decoded within a pixel
limit. Every refusal is a :class:`BadUpload` with the HTTP status and a message saying what
was wrong; nothing is written to disk (the form is parsed here, not spooled to a file)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.images import to_rgb_array

# Raw bodies are taken with these content types; anything else that is not a form is refused.
RAW_TYPES = ("image/", "application/octet-stream")
FORM_TYPE = "multipart/form-data"


class BadUpload(Exception):
    """A request refused: ``status`` (4xx) and what to tell the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """One uploaded image: its name (the form's file name, else ``upload``) and bytes."""

    name: str
    data: bytes


def too_large(size: int, limit: int) -> BadUpload:
    return BadUpload(
        413,
        f"the upload is {size:,} bytes, over this server's limit of {limit:,} (--max-upload-mb)",
    )


def upload_from(body: bytes, content_type: str) -> Upload:
    """The image a request body carries: the first file of a ``multipart/form-data`` body,
    or the body itself with an ``image/*`` or ``application/octet-stream`` type.

    Raises:
        BadUpload: 415 for another content type (or a form file of a non-image type), 400
            for a form without a file or an empty body.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == FORM_TYPE:
        upload = _form_file(body, content_type)
    elif kind.startswith(RAW_TYPES):
        upload = Upload("upload", body)
    else:
        raise BadUpload(
            415,
            f"content type {kind or '(none)'!r} is not an image: send the image as a "
            "multipart form file or as the body with an image/* content type",
        )
    if not upload.data:
        raise BadUpload(400, "the upload is empty")
    return upload


def _form_file(body: bytes, content_type: str) -> Upload:
    """The first file part of a multipart body, parsed in memory."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise BadUpload(400, "a multipart form without a boundary")
    parts: list[dict] = []
    field: list[bytes] = [b"", b""]

    def on_part_begin() -> None:
        parts.append({"headers": {}, "data": []})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        field[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1]["headers"][field[0].decode("latin-1").lower()] = field[1].decode("latin-1")
        field[0] = field[1] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"].append(data[start:end])

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except Exception as err:  # python-multipart raises its own error types
        raise BadUpload(400, f"a malformed multipart form ({err})") from None
    return _first_file(parts)


def _first_file(parts: list[dict]) -> Upload:
    for part in parts:
        disposition = part["headers"].get("content-disposition", "")
        options = _disposition(disposition)
        if "filename" not in options:
            continue
        kind = part["headers"].get("content-type", "application/octet-stream").lower()
        if not kind.startswith(RAW_TYPES):
            raise BadUpload(415, f"the form's file {options['filename']!r} is {kind}, not an image")
        return Upload(options["filename"] or "upload", b"".join(part["data"]))
    raise BadUpload(400, "the multipart form holds no file: send the image as a file field")


def _disposition(header: str) -> dict[str, str]:
    from python_multipart.multipart import parse_options_header

    return {
        k.decode("latin-1"): v.decode("utf-8", "replace")
        for k, v in parse_options_header(header)[1].items()
    }


def decode(upload: Upload, max_pixels: int, exif: bool = True) -> np.ndarray:
    """The upload as an HxWx3 RGB array (EXIF orientation applied), as ``frcnn predict``
    reads a file.

    Raises:
        BadUpload: 400 not an image or a truncated or corrupt one; 413 more than
            ``max_pixels`` pixels (checked from the header, before decoding: a
            decompression bomb is refused without expanding it).
    """
    try:
        with Image.open(io.BytesIO(upload.data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise BadUpload(
                    413,
                    f"{upload.name} is {w}x{h}, over this server's limit of {max_pixels:,} "
                    "pixels (--max-megapixels)",
                )
            if exif:
                im = ImageOps.exif_transpose(im)
            im.load()
            return to_rgb_array(im)
    except BadUpload:
        raise
    except Image.DecompressionBombError as err:
        raise BadUpload(413, f"{upload.name} is refused as a decompression bomb: {err}") from None
    except UnidentifiedImageError:
        raise BadUpload(400, f"{upload.name} is not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadUpload(400, f"{upload.name} could not be decoded: {err}") from None
