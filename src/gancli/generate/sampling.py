"""Drawing images from a generator and writing them as PNG grids or files.

The helpers (:func:`generate`, :func:`save_grid`, ...) serve training's sample grids too;
:func:`sample_grid`, :func:`sample_class_grid` and :func:`sample_individual` are the
default, ``--class-grid`` and ``--individual`` modes of ``gan sample``. The latents and
random classes of a seed come from :mod:`gancli.seeding`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from gancli.errors import UsageError
from gancli.fsutil import atomic_dir, atomic_path
from gancli.generate.gif import GRID_MIN_PX

#: The images of one ``gan sample`` are held in memory as float32: at most this many bytes.
MAX_SAMPLE_BYTES = 4 * 2**30
#: Images per class row of a class grid when not given.
CLASS_GRID_COLUMNS = 8

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def grid_labels(num_classes: int, columns: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels of a class grid, one row per class: ``(num_classes * columns,)`` int64,
    ``[0]*columns + [1]*columns + ...``."""
    return torch.arange(num_classes, device=device).repeat_interleave(columns)


@torch.no_grad()
def generate(generator: torch.nn.Module, z: torch.Tensor, y: torch.Tensor | None = None,
             batch_size: int = 256) -> torch.Tensor:
    """Run ``generator`` in eval mode on ``z`` ``(N, nz)`` (and labels ``y`` ``(N,)``
    int64 for a conditional generator) in batches.

    Returns:
        ``(N, C, H, W)`` float32 in [-1, 1] on the CPU.
    """
    was_training = generator.training
    generator.eval()
    ys = y.split(batch_size) if y is not None else [None] * len(z.split(batch_size))
    try:
        out = [generator(zc, yc).float().cpu() for zc, yc in zip(z.split(batch_size), ys)]
    finally:
        generator.train(was_training)
    return torch.cat(out).clamp_(-1, 1)


def image_format(path: str | os.PathLike) -> str:
    """PIL format name for ``path``'s suffix. Raises UsageError for unknown suffixes."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise UsageError(f"unknown image type {suffix or '(none)'!r} in {path}; valid choices: {', '.join(_FORMATS)}")
    return _FORMATS[suffix]


def grid_scale(n: int, nrow: int, height: int, width: int, padding: int = 2, min_px: int = GRID_MIN_PX) -> int:
    """The smallest whole factor that makes the grid of ``n`` images of ``height`` x ``width``
    pixels, ``nrow`` per row, at least ``min_px`` pixels on its longer side (1 when it is
    already): ``gan sample``'s default ``--zoom`` (2 for an 8x8 grid of 28-px digits)."""
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    longer = max(rows * (height + padding), cols * (width + padding)) + padding
    return max(1, math.ceil(min_px / longer))


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2,
              scale: int | None = 1) -> int:
    """Write ``images`` ``(N, C, H, W)`` in [-1, 1] as one grid image, atomically.

    Args:
        nrow: images per row; default ``ceil(sqrt(N))`` (a square grid for 64).
        scale: enlarge the grid this many times (nearest neighbour, pixels stay sharp);
            None = :func:`grid_scale` (at least :data:`GRID_MIN_PX` pixels). Training's
            grids keep 1 (the report and ``--timeline`` enlarge them where shown).

    Returns:
        the enlargement used (``scale``, or what :func:`grid_scale` chose), a whole factor >= 1.
    """
    from gancli.generate.grid import save_image

    path = Path(path)
    fmt = image_format(path)
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    if scale is None:
        scale = grid_scale(images.shape[0], nrow, images.shape[-2], images.shape[-1], padding)
    with atomic_path(path) as tmp:
        save_image(images, str(tmp), nrow=nrow, padding=padding, value_range=(-1, 1), format=fmt, scale=scale)
    return scale


def save_individual(images: torch.Tensor, directory: str | os.PathLike, prefix: str = "sample",
                    suffix: str = ".png", progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Write each image of ``(N, C, H, W)`` in [-1, 1] to ``directory/<prefix>-<i>.png``;
    ``progress(files written, N)`` after each."""
    from gancli.generate.grid import save_image

    directory = Path(directory)
    fmt = image_format(f"x{suffix}")
    width = len(str(images.shape[0] - 1))
    paths = []
    for i, img in enumerate(images):
        p = directory / f"{prefix}-{i:0{width}d}{suffix}"
        with atomic_path(p) as tmp:
            save_image(img, str(tmp), value_range=(-1, 1), format=fmt)
        paths.append(p)
        if progress is not None:
            progress(len(paths), len(images))
    return paths


# -- the modes of gan sample ------------------------------------------------------------------
def check_memory(generator, n: int) -> None:
    """Raise :class:`UsageError` when ``n`` images of ``generator`` (``img_channels``,
    ``img_resolution``) would take more than :data:`MAX_SAMPLE_BYTES` as float32; the
    message names the largest ``-n`` that fits."""
    per_image = generator.img_channels * generator.img_resolution ** 2 * 4
    need = n * per_image
    if need > MAX_SAMPLE_BYTES:
        c, r = generator.img_channels, generator.img_resolution
        raise UsageError(f"-n {n} would hold {need / 2**30:.0f} GiB of {c}x{r}x{r} images in memory; valid choices: "
                         f"-n 1..{MAX_SAMPLE_BYTES // per_image:,} (run several commands with different --seed for more)")


def check_grid_path(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``path`` has an image suffix (:func:`image_format`)
    and its folder exists."""
    path = Path(path)
    image_format(path)
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist (for -o {path})")


def check_new_folder(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless ``path`` can take :func:`sample_individual`'s files:
    not a file, its parent exists, and it is missing or empty (nothing is overwritten)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"-o {path} is a file; --individual needs a directory")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"-o {path} already holds files; give a new or empty folder (nothing is overwritten)")


class Grid(NamedTuple):
    """What :func:`sample_grid` wrote."""

    images: torch.Tensor  # (N, C, H, W) float32 in [-1, 1] on the CPU
    zoom: int  # the grid image's enlargement (see save_grid)


def sample_grid(generator, path: str | os.PathLike, n: int, seed: int = 0,
                labels: int | torch.Tensor | None = None, nrow: int | None = None, batch_size: int = 256,
                scale: int | None = 1) -> Grid:
    """``gan sample``: ``generator.sample(n, seed, labels)`` written as one grid image at ``path``.

    Args:
        generator: a :class:`~gancli.models.layers.Generator`, on its device.
        labels: conditional generators: None = random classes from ``seed + 1``, an int =
            that class, or ``(n,)`` classes.
        nrow: images per grid row; None = a square grid.
        scale: enlarge the grid image this many times; None = :func:`grid_scale`.

    Returns:
        a :class:`Grid`: the images, ``(n, C, H, W)`` float32 in [-1, 1] on the CPU, and the
        enlargement :func:`save_grid` used.

    Raises:
        UsageError: ``n`` images would not fit in :data:`MAX_SAMPLE_BYTES`; a bad suffix.
    """
    check_memory(generator, n)
    images = generator.sample(n, seed=seed, labels=labels, batch_size=batch_size)
    return Grid(images, save_grid(images, path, nrow=nrow, scale=scale))


def sample_class_grid(generator, path: str | os.PathLike, per_class: int = CLASS_GRID_COLUMNS, seed: int = 0,
                      batch_size: int = 256, scale: int | None = 1) -> Grid:
    """``gan sample --class-grid``: one row of ``per_class`` images per class, written as one
    grid at ``path``; the images of row ``c`` have class ``c`` (:func:`grid_labels`).

    Returns:
        a :class:`Grid` of ``(num_classes * per_class, C, H, W)`` images in [-1, 1].

    Raises:
        ValueError: an unconditional generator.
        UsageError: as :func:`sample_grid`.
    """
    k = generator.num_classes
    if not k:
        raise ValueError("a class grid needs a conditional generator")
    return sample_grid(generator, path, k * per_class, seed, grid_labels(k, per_class), per_class, batch_size, scale)


def sample_individual(generator, directory: str | os.PathLike, n: int, seed: int = 0,
                      labels: int | torch.Tensor | None = None, batch_size: int = 256,
                      progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """``gan sample --individual``: the images of :func:`sample_grid` as one PNG each,
    ``directory/sample-<i>.png``, all or none (a temp folder renamed at the end);
    ``progress(files written, n)`` after each file.

    Returns:
        the files in ``directory``, sorted.

    Raises:
        UsageError: as :func:`sample_grid`.
        FileExistsError: ``directory`` holds files.
    """
    check_memory(generator, n)
    images = generator.sample(n, seed=seed, labels=labels, batch_size=batch_size)
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        save_individual(images, tmp, progress=progress)
    return sorted(p for p in directory.iterdir() if p.is_file())
