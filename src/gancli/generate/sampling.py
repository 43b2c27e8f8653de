"""Drawing images from a generator and writing them as PNG grids or files."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch

from gancli.errors import UsageError
from gancli.fsutil import atomic_path

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose ("z", "fixed-z", ...) derived from the run seed,
    so the streams of different purposes are unrelated."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def latents(n: int, nz: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n, nz)`` float32 ~ N(0, I), drawn on the CPU from ``seed`` so the same seed
    gives the same latents on every device."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, nz, generator=g).to(device)


def random_labels(n: int, num_classes: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n,)`` int64 classes uniform in [0, num_classes), drawn on the CPU from
    ``seed + 1`` (so they do not repeat the stream of the latents drawn from ``seed``);
    the classes of ``gan sample --seed S`` for a conditional run."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, num_classes, (n,), generator=g).to(device)


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


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """Write ``images`` ``(N, C, H, W)`` in [-1, 1] as one grid image, atomically.

    Args:
        nrow: images per row; default ``ceil(sqrt(N))`` (a square grid for 64).
    """
    from torchvision.utils import save_image

    path = Path(path)
    fmt = image_format(path)
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    with atomic_path(path) as tmp:
        save_image(images, str(tmp), nrow=nrow, padding=padding, normalize=True, value_range=(-1, 1), format=fmt)
    return path


def save_individual(images: torch.Tensor, directory: str | os.PathLike, prefix: str = "sample",
                    suffix: str = ".png") -> list[Path]:
    """Write each image of ``(N, C, H, W)`` in [-1, 1] to ``directory/<prefix>-<i>.png``."""
    from torchvision.utils import save_image

    directory = Path(directory)
    fmt = image_format(f"x{suffix}")
    width = len(str(images.shape[0] - 1))
    paths = []
    for i, img in enumerate(images):
        p = directory / f"{prefix}-{i:0{width}d}{suffix}"
        with atomic_path(p) as tmp:
            save_image(img, str(tmp), normalize=True, value_range=(-1, 1), format=fmt)
        paths.append(p)
    return paths
