"""ImageFolder-style datasets: `root/<class_name>/**/*.png|jpg|jpeg|bmp|pgm`, read with Pillow."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from search.data.base import DatasetError, RawImages, digest_arrays
from search.data.splits import resize_images

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".pgm"})
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N"})
# float32 pixels held in RAM; beyond this the user is asked for a smaller resolution
MAX_IMAGE_BYTES = 4 * 1024**3
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def is_hidden(name: str) -> bool:
    """Dot-files and macOS resource forks, which archives and file managers leave behind."""
    return name.startswith(".") or name == "__MACOSX"


def class_root(root: Path) -> Path:
    """`root` itself, or its one visible sub-folder when that holds the class folders (zip layouts)."""
    entries = [entry for entry in root.iterdir() if not is_hidden(entry.name)]
    nested = len(entries) == 1 and entries[0].is_dir()
    if nested and any(
        child.is_dir() and not is_hidden(child.name) for child in entries[0].iterdir()
    ):
        return entries[0]
    return root


def _scan(root: Path, describe: Callable[[Path], str]) -> tuple[list[str], list[tuple[Path, int]]]:
    class_dirs = sorted(
        (entry for entry in root.iterdir() if entry.is_dir() and not is_hidden(entry.name)),
        key=lambda entry: entry.name,
    )
    if not class_dirs:
        raise DatasetError(
            f"{describe(root)}: no class folders (expected <class_name>/<image> files)"
        )
    items: list[tuple[Path, int]] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            path
            for path in class_dir.rglob("*")
            if path.is_file()
            and path.suffix.lower() in IMAGE_SUFFIXES
            and not any(is_hidden(part) for part in path.relative_to(class_dir).parts)
        )
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DatasetError(
                f"{describe(class_dir)}: class {class_dir.name!r} has no images ({suffixes})"
            )
        items.extend((path, label) for path in files)
    return [class_dir.name for class_dir in class_dirs], items


def _reason(exc: BaseException, path: Path) -> str:
    """Pillow's message without the file's path (the caller names the file its own way)."""
    return str(exc).replace(f" '{path}'", "").replace(str(path), path.name)


def _header(path: Path, describe: Callable[[Path], str]) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
    except _PIL_ERRORS as exc:
        raise DatasetError(f"{describe(path)}: cannot read image ({_reason(exc, path)})") from exc
    if mode == "F" or mode.startswith("I;32") or 0 in size:
        raise DatasetError(f"{describe(path)}: unsupported image (mode {mode}, size {size})")
    return mode, size


def _pixels(
    path: Path, channels: int, describe: Callable[[Path], str]
) -> tuple[np.ndarray, np.ndarray]:
    """(decoded source pixels for hashing, float32 (C, H, W) in [0, 1])."""
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I"):  # 16-bit grayscale; Pillow's convert("L") would clip it
                source = np.clip(np.asarray(image, dtype=np.int64), 0, 65535).astype(np.uint16)
                scaled = source.astype(np.float32) / 65535.0
            else:
                source = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
                scaled = source.astype(np.float32) / 255.0
    except _PIL_ERRORS as exc:
        raise DatasetError(f"{describe(path)}: cannot read image ({_reason(exc, path)})") from exc
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[None], channels, axis=0)
    else:
        scaled = scaled.transpose(2, 0, 1)
    return source, scaled


def load_image_folder(
    root: Path,
    *,
    name: str,
    source: str,
    resolution: int | None,
    describe: Callable[[Path], str] = str,
) -> RawImages:
    """Load every image under `root/<class>/`; class names are sorted folder names.

    All images must share one size unless `resolution` is given (then each is resized to it as it
    is read). Grayscale images keep one channel; if any image is colour, all become RGB.
    """
    class_names, items = _scan(root, describe)
    headers = [_header(path, describe) for path, _ in items]
    first_size = headers[0][1]
    for (path, _), (_, size) in zip(items, headers, strict=True):
        if size != first_size and resolution is None:
            raise DatasetError(
                f"{describe(path)}: size {size[0]}×{size[1]} differs from {first_size[0]}×"
                f"{first_size[1]} of {describe(items[0][0])}; pass a resolution to resize all images"
            )
    channels = 1 if all(mode in GRAY_MODES for mode, _ in headers) else 3
    # Resizing image by image keeps RAM at the target resolution, not the source one.
    height, width = (resolution, resolution) if resolution else first_size[::-1]
    if len(items) * channels * height * width * 4 > MAX_IMAGE_BYTES:
        raise DatasetError(
            f"{describe(root)}: {len(items)} images of {channels}×{height}×{width} need more than "
            f"{MAX_IMAGE_BYTES // 1024**3} GiB of RAM; pass a smaller resolution"
        )
    images = np.empty((len(items), channels, height, width), dtype=np.float32)
    hasher = hashlib.sha256()
    for index, (path, _) in enumerate(items):
        decoded, scaled = _pixels(path, channels, describe)
        digest_arrays(decoded, hasher=hasher)
        if scaled.shape[1:] != (height, width):
            scaled = resize_images(scaled[None], height)[0]
        images[index] = scaled
    labels = np.array([label for _, label in items], dtype=np.int64)
    digest = digest_arrays(labels, np.array(class_names), hasher=hasher)
    return RawImages(name, images, labels, tuple(class_names), source, digest)


def scan_image_folder(
    root: Path, *, describe: Callable[[Path], str] = str
) -> tuple[tuple[int, int, int], np.ndarray, tuple[str, ...]]:
    """((C, H, W), labels, class names) of an ImageFolder, every image decoded and checked as
    `load_image_folder` (without a resolution) checks it, one at a time: nothing is kept."""
    class_names, items = _scan(root, describe)
    headers = [_header(path, describe) for path, _ in items]
    first_size = headers[0][1]
    for (path, _), (_, size) in zip(items, headers, strict=True):
        if size != first_size:
            raise DatasetError(
                f"{describe(path)}: size {size[0]}×{size[1]} differs from {first_size[0]}×"
                f"{first_size[1]} of {describe(items[0][0])}; all images must share one size"
            )
    channels = 1 if all(mode in GRAY_MODES for mode, _ in headers) else 3
    for path, _ in items:
        _pixels(path, channels, describe)
    labels = np.array([label for _, label in items], dtype=np.int64)
    return (channels, first_size[1], first_size[0]), labels, tuple(class_names)
