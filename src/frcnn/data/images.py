"""Decoding images to 3-channel arrays; confining image paths to the dataset root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class UnsafePathError(InputError):
    """An annotation names a file outside the dataset root."""


def safe_join(root: Path, name: str) -> Path:
    """``root / name``, refusing absolute names and names that resolve outside ``root``
    (through ``..`` or a symbolic link).

    Raises:
        UnsafePathError: with the offending name.
    """
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or Path(name).is_absolute() or (name[1:2] == ":"):
        raise UnsafePathError(f"absolute file name {name!r} refused: names must be relative")
    path = (root / Path(*posix.parts)).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UnsafePathError(f"file name {name!r} escapes the dataset root {root}")
    return path


def image_size(path: Path, exif: bool = True) -> tuple[int, int]:
    """``(width, height)`` from the header, after EXIF orientation when ``exif``."""
    with Image.open(path) as im:
        width, height = im.size
        if exif:
            orientation = im.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
                width, height = height, width
    return width, height


# The bytes a complete file of these formats ends with (JPEG's end-of-image marker may be
# followed by padding, so it is searched for near the end).
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"
_TAIL = 4096

# Longest side over shortest side beyond which an image cannot be resized sensibly for a
# detector (its short side would shrink to a few pixels): such images must be tiled.
MAX_ASPECT = 32


def truncation(path: Path) -> str | None:
    """Why a JPEG or PNG file is incomplete (its end marker is missing), or None. Reads only
    the file's tail: a header check stays fast yet catches truncated downloads and copies."""
    suffix = path.suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png"):
        return None
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - _TAIL))
        tail = f.read()
    if suffix == ".png" and _PNG_IEND not in tail:
        return "truncated PNG (no IEND chunk at the end)"
    if suffix != ".png" and _JPEG_EOI not in tail:
        return "truncated JPEG (no end-of-image marker)"
    return None


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """A PIL image as an HxWx3 array: uint8 for 8-bit images, float32 in 0..1 for 16-bit and
    float ones. Grayscale is replicated to three channels; alpha is dropped; palette images
    are expanded."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float32)
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / scale, 0.0, 1.0)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode in ("1", "L", "LA", "La"):
        arr = np.asarray(im.convert("L"))
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "RGB":
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))  # P, PA, RGBA, CMYK, YCbCr, LAB, HSV ...


def load_image(path: Path, exif: bool = True) -> np.ndarray:
    """Decode an image file to HxWx3 (see :func:`to_rgb_array`). Pillow's decompression-bomb
    guard stays on: absurdly large images raise ``PIL.Image.DecompressionBombError``."""
    with Image.open(path) as im:
        if exif:
            im = ImageOps.exif_transpose(im)
        im.load()
        return to_rgb_array(im)


def to_pil(image: np.ndarray) -> Image.Image:
    """An HxWx3 array from :func:`load_image` (uint8, or float in 0..1) as an 8-bit PIL image."""
    return Image.fromarray(image if image.dtype == np.uint8 else (image * 255).astype(np.uint8))


def read_image(path: str | Path, exif: bool = True) -> torch.Tensor:
    """An image file as the detector takes it: float CHW RGB in 0..1 (:func:`load_image`,
    EXIF orientation applied unless ``exif`` is False, then :func:`to_tensor`)."""
    return to_tensor(load_image(Path(path), exif))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 or float array -> float CHW tensor in 0..1."""
    if not image.flags.writeable:  # arrays viewing PIL memory are read-only
        image = image.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()
