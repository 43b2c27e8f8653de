"""What every graph format exports: the generator with a fixed signature, and its metadata; for an
image-to-image run, the translator (:class:`TranslatorGraph`, dynamic height and width)."""

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

    def export_inputs(self) -> tuple[torch.Tensor, ...]:
        """The example the exporters trace: :meth:`example_inputs` for a batch of 2."""
        return self.example_inputs(2)

    def dynamic_shapes(self) -> dict[str, dict[int, Any]]:
        """torch.export's ``dynamic_shapes``: axis 0 of every input is one dynamic dimension,
        ``batch`` >= 1."""
        batch = torch.export.Dim("batch", min=1)
        return {name: {0: batch} for name in self.input_names}


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


# -- image-to-image runs (issue #24) ------------------------------------------------------
#: Inputs of the verification of a translator export: (batch size, (height, width) or None =
#: the training size); the other size is the training size + (13, 29), odd on both sides (45 x 61
#: for 32 px), so a graph that baked in the training size or the multiple fails it.
TRANSLATOR_VERIFY = ((1, None), (3, (13, 29)))


def reflect_index(n: Any, padded: Any, before: Any) -> torch.Tensor:
    """Source rows (or columns) of a reflection padding, as one gather: position ``i`` of the
    ``padded``-long result, ``before`` of them in front of the ``n`` original ones, reads
    ``reflect(i - before)``, the image mirrored without repeating its edge, again and again
    where the padding is wider than the image (period ``2 (n - 1)``), the edge repeated for
    ``n = 1``: exactly :func:`gancli.translate.tiling.pad_to_multiple` ``mode="reflect"``.
    Written with tensor ops on the sizes, so ``torch.jit.trace`` and ``torch.export`` keep
    ``n`` symbolic. Returns ``(padded,)`` int64 in [0, n)."""
    i = torch.arange(padded) - before
    size = n if isinstance(n, torch.Tensor) else torch.full((), n, dtype=torch.long)
    period = torch.clamp(2 * (size - 1), min=1)
    j = torch.remainder(i, period)
    return torch.where(j < size, j, period - j)


class TranslatorGraph(nn.Module):
    """The exported function of an image-to-image run: ``source (N, in_channels, H, W)``
    float32 in [-1, 1] (the task's input: e.g. inpaint: the damaged image and the hole mask,
    1 = hole, as its last channel) -> ``images (N, img_channels, H, W)`` float32 in [-1, 1]
    (uint8 in [0, 255] with ``uint8=True``), any N, H and W >= 1.

    As the generator does in PyTorch, the input is padded by reflection to the next multiples
    of ``multiple`` (the padding split between the two sides) and the output cropped back; here
    the padding and the crop are gathers whose indices are computed from the input's size
    (:func:`reflect_index`), so every exporter keeps H and W dynamic. With ``keep_known``
    (inpainting) the output keeps the input's known pixels (``mask <= 0.5``) exactly, as
    :meth:`gancli.translate.load.Translator.repair` does.

    Args:
        generator: the translator's G (eval mode), with ``net``, a network defined on multiples
            of ``multiple`` only, and ``multiple`` (:class:`gancli.models.pix2pix.Pix2PixGenerator`).
        img_channels: C of the output. image_size: the training side, pixels (the verification size).
        keep_known: the last input channel is a hole mask and the first ``img_channels`` the damaged image.
        uint8: append :func:`to_uint8`; False = float32 images.
    """

    input_names = ["source"]

    def __init__(self, generator: nn.Module, img_channels: int, image_size: int, keep_known: bool = False,
                 uint8: bool = False):
        super().__init__()
        if not hasattr(generator, "net") or not hasattr(generator, "multiple"):
            raise TypeError(f"{type(generator).__name__} has no net / multiple: cannot export it with a dynamic size")
        self.generator = generator
        self.multiple = int(generator.multiple)
        self.in_channels = int(generator.in_channels)
        self.img_channels, self.image_size = int(img_channels), int(image_size)
        self.keep_known = keep_known
        self.uint8 = uint8

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        h, w = source.shape[-2], source.shape[-1]
        m = self.multiple
        height, width = (h + m - 1) // m * m, (w + m - 1) // m * m
        top, left = (height - h) // 2, (width - w) // 2
        padded = source.index_select(2, reflect_index(h, height, top)).index_select(3, reflect_index(w, width, left))
        out = self.generator.net(padded)
        out = out.index_select(2, torch.arange(h) + top).index_select(3, torch.arange(w) + left)
        if self.keep_known:
            out = torch.where(source[:, -1:] > 0.5, out, source[:, :self.img_channels])
        out = out.clamp(-1, 1)
        return to_uint8(out) if self.uint8 else out

    @torch.no_grad()
    def reference(self, source: torch.Tensor) -> torch.Tensor:
        """What the export must compute, by the eager PyTorch path: the generator's own forward
        (:func:`~gancli.translate.tiling.pad_to_multiple` and crop), inpainting's
        :func:`~gancli.translate.corrupt.keep_known`, clamp (and :func:`to_uint8`); the
        verification compares every artifact with this, not with :meth:`forward`."""
        out = self.generator(source)
        if self.keep_known:
            from gancli.translate.corrupt import keep_known

            out = keep_known(out, source[:, :self.img_channels], source[:, -1:])
        out = out.clamp(-1, 1)
        return to_uint8(out) if self.uint8 else out

    def dynamic_shapes(self) -> dict[str, dict[int, Any]]:
        """torch.export's ``dynamic_shapes``: batch, height and width, each >= 1."""
        return {"source": {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("height", min=1),
                           3: torch.export.Dim("width", min=1)}}

    def export_inputs(self) -> tuple[torch.Tensor, ...]:
        """The example the exporters trace: 2 images of (multiple + multiple/2 + 1) x (2 multiple
        + 3) pixels, sides that are no multiple, differ, and leave the U-Net's innermost map
        larger than 1 x 1 (a 1-px map would be taken as a constant size by torch.export)."""
        m = self.multiple
        return self.example_inputs(2, seed=0, size=(m + m // 2 + 1, 2 * m + 3))

    def example_inputs(self, n: int, seed: int = 0, size: tuple[int, int] | None = None) -> tuple[torch.Tensor]:
        """``(source,)``: ``n`` inputs of ``size`` (None = the training size), uniform in [-1, 1]
        from ``seed``; with ``keep_known`` the mask channel holds {0, 1} (about 30% holes)."""
        h, w = size or (self.image_size, self.image_size)
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, self.in_channels, h, w, generator=g) * 2 - 1
        if self.keep_known:
            x[:, -1:] = (torch.rand(n, 1, h, w, generator=g) < 0.3).float()
        return (x,)

    def verify_inputs(self) -> list[tuple[tuple[torch.Tensor, ...], str]]:
        """The verification cases: ``(inputs, "batch size N at H x W")`` per :data:`TRANSLATOR_VERIFY`."""
        cases = []
        for seed, (n, extra) in enumerate(TRANSLATOR_VERIFY):
            s = self.image_size
            size = (s, s) if extra is None else (s + extra[0], s + extra[1])
            cases.append((self.example_inputs(n, seed, size), f"batch size {n} at {size[0]} x {size[1]}"))
        return cases


def translator_metadata(translator: Any, uint8: bool = False, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-able metadata of a translator export (:class:`TranslatorGraph`).

    Keys: ``gancli_version``, ``kind`` (``"translator"``), ``arch``, ``task``, ``task_options``
    (the corruption's, as trained), ``in_channels``, ``img_channels``, ``image_size`` (training
    side), ``multiple``, ``dynamic_size`` (True), ``keeps_known``, ``inputs``, ``outputs``,
    ``dtype``, ``value_range``, ``source_run``, ``source_checkpoint``, ``step``, ``ema``, then
    ``source``'s entries.
    """
    t = translator
    cfg = t.config
    meta: dict[str, Any] = {
        "gancli_version": __version__,
        "kind": "translator",
        "arch": cfg.model.arch,
        "task": t.task,
        "task_options": dict(t.options),
        "in_channels": int(t.in_channels),
        "img_channels": int(t.img_channels),
        "image_size": int(cfg.model.img_resolution),
        "multiple": int(t.multiple),
        "dynamic_size": True,
        "keeps_known": t.corruption == "inpaint",
        "inputs": ["source"],
        "outputs": ["images"],
        "dtype": "uint8" if uint8 else "float32",
        "value_range": list(UINT8_RANGE if uint8 else FLOAT_RANGE),
        "source_run": None,
        "source_checkpoint": None,
        "step": t.step,
        "ema": bool(t.uses_ema),
    }
    meta.update(source or {})
    return meta
