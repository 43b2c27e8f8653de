"""``--dataset PATH``: a folder of image files, labelled by subfolder or not.

Layouts (torchvision's ``ImageFolder`` convention):

* class subfolders: no image directly in PATH, and two or more direct
  subfolders holding images (at any depth below them). Labels are indices into
  the sorted subfolder names.
* otherwise: every image in or below PATH, unlabelled (labels all 0). A single
  subfolder is no labelling, so ``celeba/img_align_celeba/*.jpg`` is unlabelled.

Names starting with "." are ignored. :meth:`ImageFolder.info` only lists file
names; decoding happens in :meth:`ImageFolder.load`, one file at a time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gancli.data.base import DatasetInfo, DatasetSource, ImageData, first_line
from gancli.data.manifest import read_manifest
from gancli.errors import GancliError

if TYPE_CHECKING:
    import torch

    from gancli.config import DataConfig

#: Accepted file extensions, compared lower-case.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
DEFAULT_CHANNELS = 3  # RGB unless --channels 1
DEFAULT_RESOLUTION = 64  # pixels, unless --image-size


def is_folder_path(name: str) -> bool:
    """Whether ``--dataset name`` means a folder: it looks like a path (holds a
    separator, starts with "." or "~", is absolute) or is an existing directory."""
    seps = [s for s in (os.sep, os.altsep) if s]
    return (any(s in name for s in seps) or name.startswith((".", "~")) or os.path.isabs(name)
            or os.path.isdir(name))


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def images_under(folder: Path) -> list[Path]:
    """Image files in or below ``folder``, sorted, hidden names skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if _is_image(f)]
    return found


def scan(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """The image files of ``folder``: ``(paths, labels, classes)``; see the module doc.

    Raises:
        GancliError: ``folder`` is missing, not a directory, or holds no image.
    """
    accepted = ", ".join(IMAGE_EXTENSIONS)
    if not folder.exists():
        raise GancliError(f"image folder {folder} not found; --dataset takes a dataset name or a folder "
                          f"of {accepted} images")
    if not folder.is_dir():
        raise GancliError(f"{folder} is not a folder; --dataset takes a dataset name or a folder of {accepted} images")
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    if not any(e.is_file() and _is_image(e.name) for e in entries):
        per_class = [(e.name, images_under(Path(e.path))) for e in entries if e.is_dir()]
        per_class = [(name, files) for name, files in per_class if files]
        if len(per_class) >= 2:
            paths = [p for _, files in per_class for p in files]
            labels = [k for k, (_, files) in enumerate(per_class) for _ in files]
            return paths, labels, [name for name, _ in per_class]
    paths = images_under(folder)
    if not paths:
        raise GancliError(f"no images in {folder}; accepted extensions (any case): {accepted}, directly in the "
                          "folder, below it, or in one subfolder per class")
    return paths, [0] * len(paths), []


def read_images(paths: Sequence[Path], labels: Sequence[int], channels: int, size: int, crop: int = 0,
                skip_bad: bool = False, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode image files with PIL, one at a time.

    Args:
        paths: image files; ``labels``: their class indices, same length.
        channels: 1 (grayscale) or 3 (RGB). size: output H = W, pixels.
        crop: side of the centered square cut before resizing; 0 = the shorter side.
        skip_bad: leave unreadable files out instead of failing.
        limit: stop after this many decoded images; 0 = all.

    Returns:
        ``(images (N, C, size, size) uint8, labels (N,) int64, skipped paths)``.

    Raises:
        GancliError: an unreadable file (unless ``skip_bad``), or none readable.
    """
    import numpy as np
    import torch
    from PIL import Image

    from gancli.data.transforms import pil_to_array

    n = min(len(paths), limit) if limit else len(paths)
    images = torch.empty((n, channels, size, size), dtype=torch.uint8)
    kept: list[int] = []
    skipped: list[str] = []
    for path, label in zip(paths, labels):
        if len(kept) == n:
            break
        try:
            with Image.open(path) as im:
                a = pil_to_array(im, channels, size, crop)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            if not skip_bad:
                raise GancliError(f"cannot read image {path} ({first_line(e)}); fix or delete it, "
                                  "or pass --skip-bad-images to leave unreadable files out") from None
            skipped.append(str(path))
            continue
        images[len(kept)] = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
        kept.append(label)
    if not kept:
        raise GancliError(f"none of the {len(skipped)} image files could be read (first: {skipped[0]})")
    if len(kept) < n:
        images = images[:len(kept)].clone()
    return images, torch.tensor(kept, dtype=torch.int64), skipped


class ImageFolder(DatasetSource):
    """The folder ``cfg.dataset`` (``root``, the data directory, is not used): split "train" only,
    RGB 64x64 unless ``--channels`` / ``--image-size``, or the image shape in the folder's
    ``manifest.json`` when ``gan sample --dataset-out`` wrote it (:mod:`gancli.data.manifest`)."""

    @staticmethod
    def folder(cfg: DataConfig) -> Path:
        return Path(cfg.dataset).expanduser().absolute()

    @classmethod
    def shape(cls, cfg: DataConfig) -> tuple[int, int]:
        """``(channels, resolution)``: the flags, else a gancli dataset manifest's, else RGB 64."""
        manifest = read_manifest(cls.folder(cfg)) if not (cfg.channels and cfg.image_size) else None
        c, _, h = (manifest or {}).get("image_shape") or (0, 0, 0)
        c = c if c in (1, 3) else 0
        h = h if isinstance(h, int) and h > 0 else 0
        return cfg.channels or c or DEFAULT_CHANNELS, cfg.image_size or h or DEFAULT_RESOLUTION

    @classmethod
    def info(cls, cfg: DataConfig) -> DatasetInfo:
        paths, _, classes = scan(cls.folder(cfg))
        return DatasetInfo(*cls.shape(cfg), len(classes), {"train": len(paths)})

    @classmethod
    def load(cls, root: Path, cfg: DataConfig) -> ImageData:
        paths, labels, classes = scan(cls.folder(cfg))
        images, labels_t, skipped = read_images(
            paths, labels, *cls.shape(cfg), skip_bad=cfg.skip_bad_images, limit=cfg.limit)
        return ImageData(images, labels_t, classes, skipped)
