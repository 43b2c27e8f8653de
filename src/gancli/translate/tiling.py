"""Running a fully convolutional network at any input size: pad to the network's multiple and
crop back (:func:`pad_to_multiple`, :func:`crop`), or, for images too large for one pass, run
it over overlapping tiles and cross-fade the overlaps (:func:`tiled_apply`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

#: how :func:`pad_to_multiple` fills the border: mirror the image without repeating its edge
#: (repeatedly where the padding is wider than the image), repeat the edge pixels, or a constant
PAD_MODES = ("reflect", "replicate", "constant")

Pads = tuple[int, int, int, int]  # (top, bottom, left, right), pixels


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect",
                    value: float = 0.0) -> tuple[torch.Tensor, Pads]:
    """Pad ``x (N, C, H, W)`` to the next H and W that are multiples of ``multiple``, the padding
    split evenly between the two sides (the extra pixel of an odd amount at the bottom / right).

    Args:
        x: images, any dtype that ``torch.nn.functional.pad`` takes.
        multiple: >= 1 (a network's ``multiple`` attribute); 1 = no padding.
        mode: one of :data:`PAD_MODES`.
        value: the fill of ``mode="constant"`` (e.g. -1, black in [-1, 1]).

    Returns:
        ``(padded (N, C, H', W'), (top, bottom, left, right))``, the pads to give :func:`crop`.

    Raises:
        ValueError: ``x`` not 4-D, ``multiple`` < 1 or an unknown ``mode``.
    """
    if x.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    if not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be an integer >= 1, got {multiple!r}")
    if mode not in PAD_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; valid choices: {', '.join(PAD_MODES)}")
    h, w = x.shape[-2:]
    dh, dw = -h % multiple, -w % multiple
    pads = (dh // 2, dh - dh // 2, dw // 2, dw - dw // 2)
    if not any(pads):
        return x, pads
    if mode == "constant":
        return F.pad(x, (pads[2], pads[3], pads[0], pads[1]), value=value), pads
    if mode == "replicate":
        return F.pad(x, (pads[2], pads[3], pads[0], pads[1]), mode="replicate"), pads
    top, bottom, left, right = pads
    while top or bottom or left or right:  # reflection pads less than the side: mirror again and again
        h, w = x.shape[-2:]
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        if not any(step):  # a 1-pixel side cannot be mirrored: repeat it
            return F.pad(x, (left, right, top, bottom), mode="replicate"), pads
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (left - step[0], right - step[1], top - step[2], bottom - step[3])
    return x, pads


def crop(x: torch.Tensor, pads: Pads, scale: int = 1) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: ``x (N, C, H', W')`` -> ``(N, C, H' - (top + bottom) * scale,
    W' - (left + right) * scale)``; ``scale`` for a network whose output is ``scale`` times its
    input's size (1 = same size).

    Raises:
        ValueError: the pads leave nothing.
    """
    top, bottom, left, right = (p * scale for p in pads)
    h, w = x.shape[-2:]
    if top + bottom >= h or left + right >= w:
        raise ValueError(f"cannot crop {pads} x{scale} from {h}x{w} images")
    return x[..., top:h - bottom, left:w - right]


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
                multiple: int = 1, mode: str = "reflect") -> torch.Tensor:
    """``fn`` applied to ``x (N, C, H, W)`` in ``tile x tile`` pieces that overlap, the overlaps
    cross-faded, for images too large to run at once. ``fn`` maps ``(N, C, h, w)`` to
    ``(N, C', h, w)`` for any h, w that are multiples of ``multiple`` (a generator and its
    ``multiple`` attribute). Returns ``(N, C', H, W)`` in ``fn``'s dtype.

    ``x`` is padded to a multiple of ``multiple`` (:func:`pad_to_multiple` with ``mode``). Along
    each side, tiles start at evenly spaced multiples of ``multiple`` from the first pixel to the
    last tile ending on the last, at most ``tile - overlap`` apart (rounded down to a multiple of
    ``multiple``, so the overlaps may be wider than asked); an image side not larger than ``tile``
    is one tile. Each tile's output is weighted by a raised-cosine ramp across each overlap ``o``
    it shares with a neighbour (``sin(pi/2 * (i + 0.5) / o)**2`` rising on one tile while the
    other falls, summing to 1), and 1 elsewhere. Every pixel is the weighted mean of the tiles
    covering it, accumulated as a running mean (``out += w / w_sum * (y - out)``), so that where
    all tiles agree the result is exactly their value: an ``fn`` acting on each pixel alone gives
    exactly ``fn(x)``. A convolutional ``fn`` sees less context near a tile's inner edges than in
    one pass; the cross-fade hides the seam but cannot restore that context. There the raised
    cosine gives a tile little weight: tests/test_translate_networks.py measures the largest
    difference from one pass at 5-8% of the output's std with 16-px overlaps, a third to a
    quarter of a linear ramp's, a tenth to a thirtieth of abutting tiles'.

    Args:
        fn: the network (in eval mode, under ``torch.no_grad()`` for inference).
        x: images, float.
        tile: tile side, pixels; a multiple of ``multiple``.
        overlap: pixels shared by neighbouring tiles, in [0, tile / 2]; 0 = tiles abut (seams).
        multiple: ``fn``'s size multiple, >= 1.
        mode: the padding to the multiple, one of :data:`PAD_MODES`.

    Raises:
        ValueError: a bad ``tile``, ``overlap`` or ``multiple`` (named), or ``fn``'s output not
            ``(N, C', h, w)`` for an ``(N, C, h, w)`` tile.
    """
    if not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be an integer >= 1, got {multiple!r}")
    if not isinstance(tile, int) or tile < multiple or tile % multiple:
        raise ValueError(f"tile must be a positive multiple of {multiple}, got {tile!r}")
    if not isinstance(overlap, int) or not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be an integer in [0, {tile // 2}] (half the tile), got {overlap!r}")
    padded, pads = pad_to_multiple(x, multiple, mode)
    height, width = padded.shape[-2:]
    rows = _spans(height, tile, overlap, multiple)
    cols = _spans(width, tile, overlap, multiple)
    out = weight_sum = None
    for (y0, y1), wy in rows:
        for (x0, x1), wx in cols:
            y = fn(padded[..., y0:y1, x0:x1])
            if y.dim() != 4 or y.shape[0] != x.shape[0] or y.shape[-2:] != (y1 - y0, x1 - x0):
                raise ValueError(f"fn must map (N, C, h, w) tiles to (N, C', h, w), got {tuple(y.shape)} "
                                 f"for {tuple(padded[..., y0:y1, x0:x1].shape)}")
            if out is None:
                out = y.new_zeros((*y.shape[:2], height, width))
                weight_sum = torch.zeros((height, width), dtype=torch.float32, device=y.device)
            w = wy.to(y.device)[:, None] * wx.to(y.device)[None, :]
            acc = weight_sum[y0:y1, x0:x1]
            acc += w
            region = out[..., y0:y1, x0:x1]
            region += (w / acc).to(y.dtype) * (y - region)  # first visit: w / w = 1 exactly, region = y
    return crop(out, pads)


def _spans(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[tuple[int, int], torch.Tensor]]:
    """The tiles ``((start, end), weight (end - start,) float32)`` along one side of ``length``."""
    if length <= tile:
        return [((0, length), torch.ones(length))]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    gaps = math.ceil((length - tile) / step)
    starts = sorted({round(k * (length - tile) / gaps / multiple) * multiple for k in range(gaps + 1)})
    spans = []
    i = torch.arange(tile, dtype=torch.float32) + 0.5
    for k, start in enumerate(starts):
        t = torch.ones(tile)  # position within the ramps, 0 -> 1: rise over the overlap with the previous
        if k > 0:             # tile, fall over the one with the next
            t = torch.minimum(t, i / (starts[k - 1] + tile - start))
        if k + 1 < len(starts):
            t = torch.minimum(t, (tile - i) / (start + tile - starts[k + 1]))
        spans.append(((start, start + tile), torch.sin(t * (math.pi / 2)) ** 2))
    return spans
