"""What every graph format exports: the generator with a fixed signature, and its metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gancli._version import __version__
from gancli.seeding import latents

FLOAT_RANGE = (-1, 1)
UINT8_RANGE = (0, 255)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` in [-1, 1] -> uint8 in [0, 255], rounding as ``gan sample``'s
    PNGs do (torchvision ``save_image``: ``floor((x + 1) / 2 * 255 + 0.5)``)."""
    scaled = (images.clamp(-1, 1) + 1) / 2 * 255 + 0.5
    return scaled.clamp(0, 255).floor().to(torch.uint8)


class GeneratorGraph(nn.Module):
    """The exported function: ``z (N, nz) float32`` [+ ``labels (N,) int64`` in
    [0, num_classes), conditional generators only] -> ``images (N, C, H, W)``,
    float32 in [-1, 1], or uint8 in [0, 255] with ``uint8=True``.

    Args:
        generator: a gancli generator (eval mode: BatchNorm uses its running statistics).
        uint8: append :func:`to_uint8` to the graph; False = float32 images.
    """

    def __init__(self, generator: nn.Module, uint8: bool = False):
        super().__init__()
        self.generator = generator
        self.uint8 = uint8

    @property
    def input_names(self) -> list[str]:
        return ["z", "labels"] if self.generator.num_classes else ["z"]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = self.generator(z, labels).clamp(-1, 1)
        return to_uint8(images) if self.uint8 else images

    def example_inputs(self, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(z,)`` or ``(z, labels)`` for a batch of ``n``: ``latents(n, nz, seed)``
        and classes ``(seed + i) % num_classes``."""
        g = self.generator
        z = latents(n, g.nz, seed)
        if not g.num_classes:
            return (z,)
        return z, (torch.arange(n) + seed) % g.num_classes


def export_metadata(generator: nn.Module, uint8: bool = False, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-able metadata every export carries.

    Keys: ``gancli_version``, ``arch``, ``nz``, ``num_classes``, ``image_shape``
    ``[C, H, W]``, ``inputs``, ``outputs``, ``dtype``, ``value_range``,
    ``source_run``, ``source_checkpoint``, ``step``, ``ema`` (None where unknown),
    then ``source``'s entries, which may override the provenance ones.
    """
    g = generator
    cfg = g.config
    meta: dict[str, Any] = {
        "gancli_version": __version__,
        "arch": cfg.arch if cfg is not None else type(g).__name__,
        "nz": int(g.nz),
        "num_classes": int(g.num_classes),
        "image_shape": [int(g.img_channels), int(g.img_resolution), int(g.img_resolution)],
        "inputs": ["z", "labels"] if g.num_classes else ["z"],
        "outputs": ["images"],
        "dtype": "uint8" if uint8 else "float32",
        "value_range": list(UINT8_RANGE if uint8 else FLOAT_RANGE),
        "source_run": None,
        "source_checkpoint": None,
        "step": g.step,
        "ema": bool(g.uses_ema),
    }
    meta.update(source or {})
    return meta
