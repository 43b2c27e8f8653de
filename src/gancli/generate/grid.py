"""Image grids and PNG files from ``[-1, 1]`` tensors, without importing torchvision.

``torchvision.utils`` imports the whole of torchvision (its models, and through them
``torch._dynamo``): ~3 s of a ~5 s ``gan sample`` on a 2-core CPU (issue #27). These two
functions reproduce ``torchvision.utils.make_grid`` and ``save_image`` (torchvision 0.29) for
what gancli writes (``normalize=True``, one ``value_range`` for the whole batch): the same
pixels, byte for byte (``tests/test_generate.py`` compares them with torchvision's).
"""

from __future__ import annotations

import math
import os

import torch


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, value_range: tuple[float, float] = (-1.0, 1.0),
              pad_value: float = 0.0) -> torch.Tensor:
    """Tile ``images`` ``(N, C, H, W)`` (or one ``(C, H, W)``) into one ``(3 or C, H', W')`` float
    image in [0, 1]: ``value_range`` maps to [0, 1] (clamped), one-channel images become three
    gray channels, ``nrow`` images per row, ``padding`` pixels of ``pad_value`` around each
    (none for a single image), as ``torchvision.utils.make_grid(..., normalize=True)``."""
    t = images
    if t.dim() == 3:
        t = torch.cat((t, t, t), 0) if t.size(0) == 1 else t
        t = t.unsqueeze(0)
    if t.size(1) == 1:
        t = torch.cat((t, t, t), 1)
    low, high = value_range
    t = t.clone().clamp_(min=low, max=high).sub_(low).div_(max(high - low, 1e-5))
    if t.size(0) == 1:
        return t.squeeze(0)
    n = t.size(0)
    cols = min(nrow, n)
    rows = int(math.ceil(float(n) / cols))
    height, width = int(t.size(2) + padding), int(t.size(3) + padding)
    grid = t.new_full((t.size(1), height * rows + padding, width * cols + padding), pad_value)
    for k in range(n):
        y, x = divmod(k, cols)
        grid.narrow(1, y * height + padding, height - padding).narrow(2, x * width + padding, width - padding).copy_(t[k])
    return grid


def save_image(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8, padding: int = 2,
               value_range: tuple[float, float] = (-1.0, 1.0), format: str | None = None, scale: int = 1) -> None:
    """Write :func:`make_grid` of ``images`` as an 8-bit RGB (or C-channel) image file with
    PIL (``format``: a PIL format name, else from the suffix), rounding as torchvision does;
    ``scale`` > 1 enlarges it that many times (nearest neighbour: each pixel becomes a
    ``scale`` x ``scale`` block, so the pixels stay sharp and exact)."""
    from PIL import Image

    grid = make_grid(images, nrow=nrow, padding=padding, value_range=value_range)
    img = Image.fromarray(to_uint8_hwc(grid))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    img.save(path, format=format)


def to_uint8_hwc(grid: torch.Tensor):
    """A :func:`make_grid` image ``(C, H, W)`` in [0, 1] as a ``(H, W, C)`` uint8 numpy array,
    rounded half up as torchvision's ``save_image``."""
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
