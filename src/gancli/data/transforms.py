"""``--image-size`` and ``--channels``: center-crop + resize and grayscale <-> RGB.

Two twins with the same semantics: :func:`conform` for uint8 tensors (the named
datasets, decoded by torchvision or read from arrays) and :func:`pil_to_array`
for PIL images (image folders, CelebA), decoded one at a time.

* crop: the centered square of side ``min(H, W)`` (or a fixed ``crop``).
* resize: bilinear with antialiasing (the filter widens when shrinking).
* RGB -> grayscale: ITU-R 601-2 luma ``L = 0.299 R + 0.587 G + 0.114 B``,
  rounded as PIL's ``convert("L")`` does; grayscale -> RGB repeats L.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image

#: ITU-R 601-2 luma weights in 16-bit fixed point (sum 65536), exactly PIL's convert("L").
LUMA_WEIGHTS = (19595, 38470, 7471)


def rgb_to_gray(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` uint8 -> ``(N, 1, H, W)`` uint8 luma, rounded like PIL."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=torch.int32, device=images.device).view(1, 3, 1, 1)
    luma = ((images.to(torch.int32) * w).sum(1, keepdim=True) + 32768) >> 16
    return luma.to(torch.uint8)


def crop_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, C, H, W)`` uint8 -> ``(N, C, size, size)`` uint8: centered square crop, then resize."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    side = min(images.shape[-2:])
    if images.shape[-2] != images.shape[-1]:
        images = F.center_crop(images, [side, side])
    if side != size:
        images = F.resize(images, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return images


def conform(images: torch.Tensor, channels: int, resolution: int, chunk: int = 4096) -> torch.Tensor:
    """Bring a split to the configured shape.

    Args:
        images: ``(N, C, H, W)`` uint8, C in {1, 3}.
        channels: target C, 1 or 3.
        resolution: target H = W, pixels.
        chunk: images converted at a time (bounds the float temporaries of the resize).

    Returns:
        ``(N, channels, resolution, resolution)`` uint8 on ``images``' device;
        ``images`` itself when it already has that shape.
    """
    n, c, h, w = images.shape
    if (c, h, w) == (channels, resolution, resolution):
        return images
    if images.dtype != torch.uint8 or c not in (1, 3) or channels not in (1, 3):
        raise ValueError(f"cannot convert {tuple(images.shape)} {images.dtype} images to {channels} channels")
    out = torch.empty((n, channels, resolution, resolution), dtype=torch.uint8, device=images.device)
    for i in range(0, n, chunk):
        x = images[i:i + chunk]
        if c == 3 and channels == 1:
            x = rgb_to_gray(x)  # before the resize: a third of the work
        x = crop_resize(x, resolution)
        out[i:i + chunk] = x  # broadcasts 1 -> 3 channels
    return out


def pil_to_array(im: Image.Image, channels: int, size: int, crop: int = 0) -> np.ndarray:
    """A decoded PIL image -> ``(size, size, channels)`` uint8.

    Args:
        channels: 1 (mode "L") or 3 (mode "RGB"); alpha is dropped.
        size: output H = W, pixels.
        crop: side of the centered square cut before resizing; 0 = the shorter side.
    """
    from PIL import Image

    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")  # palette + transparency: converting directly warns
    im = im.convert("L" if channels == 1 else "RGB")
    w, h = im.size
    side = min(crop or min(w, h), w, h)
    if (w, h) != (side, side):
        left, top = int(round((w - side) / 2)), int(round((h - side) / 2))  # as torchvision's center_crop
        im = im.crop((left, top, left + side, top + side))
    if side != size:
        im = im.resize((size, size), Image.Resampling.BILINEAR)  # PIL widens the filter when shrinking
    a = np.array(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a
