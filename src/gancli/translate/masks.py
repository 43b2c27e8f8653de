"""Hole masks for inpainting: random squares and free-form brush strokes.

Masks are ``(n, 1, H, W)`` float32 {0, 1} (1 = hole) made on the CPU from a
:class:`torch.Generator` the caller seeds (:func:`gancli.translate.corrupt.corruption_generator`),
so a seed means the same holes on every device. Options are validated by
:func:`gancli.translate.corrupt.check_inpaint`; this module only draws. Importing it imports no torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def default_mask_size(height: int, width: int) -> int:
    """Side of the square hole when ``--mask-size 0``: 3/7 of the shorter side, rounded (12 px on
    28-px MNIST, the issue's measured setting; 27 px at 64, 110 at 256), a hole of ~18 % of the
    image, below the 25 % of Context Encoders' central hole (Pathak et al. 2016, arXiv 1604.07379:
    64x64 of 128x128)."""
    return max(1, round(min(height, width) * 3 / 7))


def box_masks(n: int, height: int, width: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 1, height, width)`` float32 {0, 1}: one axis-aligned ``size`` x ``size`` square hole per
    image at a uniform position inside the image (the random-region holes of Context Encoders,
    arXiv 1604.07379). Two draws of ``(n,)`` from ``generator``."""
    import torch

    top = torch.randint(0, height - size + 1, (n,), generator=generator)
    left = torch.randint(0, width - size + 1, (n,), generator=generator)
    rows = torch.arange(height)
    cols = torch.arange(width)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)  # (n, H)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)  # (n, W)
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1).to(torch.float32)


# DeepFill v2's brush strokes (Yu et al. 2019, arXiv 1806.03589, Algorithm 1 and the authors'
# brush_stroke_mask): 1-3 strokes, each a polyline of 4-11 segments whose directions alternate
# around 2 pi / 5 and whose lengths are ~N(r, r / 2) clipped to [0, 2 r], r = diagonal / 8, drawn
# with round joints and one width each, 12-40 px at 256 px (scaled to the image, at least 2 px).
MAX_STROKES = 3
MIN_VERTICES, MAX_VERTICES = 4, 11
MEAN_ANGLE = 2 * math.pi / 5
ANGLE_RANGE = 2 * math.pi / 15
MIN_WIDTH, MAX_WIDTH = 12 / 256, 40 / 256  # fractions of the shorter side
MIN_WIDTH_PX = 2.0


def free_masks(n: int, height: int, width: int, generator: torch.Generator,
               rows: slice = slice(None)) -> torch.Tensor:
    """``(n, 1, height, width)`` float32 {0, 1}: free-form brush strokes (see the constants above).

    A fixed number of draws of fixed shapes whatever their values (all on ``generator``), then each
    image is rasterized by :func:`_draw_strokes`. ``rows``: only these of the ``n`` masks are
    rasterized and returned (``(len(rows), 1, height, width)``; the draws are made for all ``n``).
    """
    import torch

    g = generator
    side = min(height, width)
    radius = math.hypot(height, width) / 8
    strokes = torch.randint(1, MAX_STROKES + 1, (n,), generator=g)
    vertices = torch.randint(MIN_VERTICES, MAX_VERTICES + 1, (n, MAX_STROKES), generator=g)
    spread = torch.rand(n, MAX_STROKES, 2, generator=g) * ANGLE_RANGE
    lo, hi = MEAN_ANGLE - spread[..., 0:1], MEAN_ANGLE + spread[..., 1:2]
    angles = lo + (hi - lo) * torch.rand(n, MAX_STROKES, MAX_VERTICES, generator=g)
    angles[..., 0::2] = 2 * math.pi - angles[..., 0::2]  # alternate, so strokes zig-zag
    lengths = (radius + radius / 2 * torch.randn(n, MAX_STROKES, MAX_VERTICES, generator=g)).clamp(0, 2 * radius)
    start = torch.rand(n, MAX_STROKES, 2, generator=g) * torch.tensor([width, height])
    widths = (MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * torch.rand(n, MAX_STROKES, generator=g)) * side
    widths = widths.clamp(min=MIN_WIDTH_PX)

    points = [start]  # (n, S, 2) as (x, y), each vertex clamped to the image as the authors do
    step = torch.stack([torch.cos(angles), torch.sin(angles)], -1) * lengths[..., None]
    for k in range(MAX_VERTICES):
        nxt = points[-1] + step[:, :, k]
        points.append(torch.stack([nxt[..., 0].clamp(0, width), nxt[..., 1].clamp(0, height)], -1))
    pts = torch.stack(points, 2)  # (n, S, V + 1, 2)
    used = (torch.arange(MAX_STROKES)[None, :, None] < strokes[:, None, None]) & (
        torch.arange(MAX_VERTICES)[None, None, :] < vertices[:, :, None])  # (n, S, V)

    keep = range(n)[rows]
    out = torch.zeros(len(keep), 1, height, width)
    for k, i in enumerate(keep):
        out[k, 0] = _draw_strokes(height, width, pts[i], used[i], widths[i])
    return out


def _draw_strokes(height: int, width: int, points: torch.Tensor, used: torch.Tensor,
                  widths: torch.Tensor) -> torch.Tensor:
    """Rasterize one image's strokes with Pillow as the authors do (``ImageDraw.line`` of an integer
    width, plus a disc at every vertex for round joints): ``(height, width)`` float32 {0, 1}.

    Args:
        points: ``(S, V + 1, 2)`` vertices (x, y) in pixels. used: ``(S, V)`` bool, segments drawn.
        widths: ``(S,)`` stroke widths in pixels.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke, segs, w in zip(points.tolist(), used.tolist(), widths.tolist()):
        count = sum(segs)
        if not count:
            continue
        vertices = [tuple(p) for p in stroke[:count + 1]]
        w = max(1, round(w))
        draw.line(vertices, fill=255, width=w)
        r = w / 2
        for x, y in vertices:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
