"""The fixed restyling of the unpaired MNIST benchmark (domain B of ``scripts/make_unpaired_mnist.py``).

Domain A is MNIST as it is (white digits on black); domain B is the same kind of digit with its
strokes thickened by 2 px (a 5x5 grayscale dilation, i.e. a max-pool of stride 1) and its
colours inverted (black, bold digits on white). The map is deterministic, so the restyled test
digits are the ground truth of A -> B outputs, and :func:`restyle_mnist` is what an evaluation
applies to compare them. Importing this module imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DILATION_PX = 2  # stroke growth on each side, pixels: a (2 * 2 + 1) square structuring element


def restyle_mnist(images: torch.Tensor) -> torch.Tensor:
    """Dilate the strokes by :data:`DILATION_PX` then invert.

    Args:
        images: ``(N, C, H, W)``, uint8 in [0, 255] or float in [-1, 1] (light strokes on dark).

    Returns:
        the same shape, dtype and device: ``255 - maxpool5x5(x)`` for uint8, ``-maxpool5x5(x)``
        for float (the inversion of [-1, 1]); exact, no rounding.

    Raises:
        ValueError: ``images`` is not 4-D, or neither uint8 nor floating point.
    """
    import torch
    import torch.nn.functional as F

    if images.dim() != 4 or not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise ValueError(f"images must be (N, C, H, W) uint8 or float, got {tuple(images.shape)} {images.dtype}")
    k = 2 * DILATION_PX + 1
    if images.dtype == torch.uint8:
        grown = F.max_pool2d(images.to(torch.float32), k, stride=1, padding=DILATION_PX)  # exact for bytes
        return (255 - grown).to(torch.uint8)
    return -F.max_pool2d(images, k, stride=1, padding=DILATION_PX)
