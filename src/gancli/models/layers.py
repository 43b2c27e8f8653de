"""Shared pieces of generators and discriminators: base classes with shape checks, init."""

from __future__ import annotations

import torch
from torch import nn

from gancli.errors import UsageError


class Generator(nn.Module):
    """Base generator: ``z (N, nz) float32 ~ N(0, I)`` -> images ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W of the output images, pixels.
    """

    def __init__(self, nz: int, img_channels: int, img_resolution: int):
        super().__init__()
        self.check_shape(img_channels, img_resolution)
        self.nz = nz
        self.img_channels = img_channels
        self.img_resolution = img_resolution

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        """Raise :class:`UsageError` if this architecture cannot make the shape."""
        if img_channels < 1 or img_resolution < 1:
            raise UsageError(f"bad image shape {img_channels}x{img_resolution}x{img_resolution}")

    def check_z(self, z: torch.Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must have shape (N, {self.nz}), got {tuple(z.shape)}")


class Discriminator(nn.Module):
    """Base discriminator: images ``(N, C, H, W)`` in [-1, 1] -> logits ``(N,)`` (real > fake).

    The output is a raw score (a logit for BCE losses, a critic value for
    Wasserstein ones); losses apply their own link function.
    """

    def __init__(self, img_channels: int, img_resolution: int):
        super().__init__()
        self.img_channels = img_channels
        self.img_resolution = img_resolution

    def check_x(self, x: torch.Tensor) -> None:
        expect = (self.img_channels, self.img_resolution, self.img_resolution)
        if x.dim() != 4 or tuple(x.shape[1:]) != expect:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, expect))}), got {tuple(x.shape)}")


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN initialisation (arXiv 1511.06434, section 4): conv weights ~ N(0, 0.02),
    BatchNorm scale ~ N(1, 0.02) and shift 0. Applied in place to all submodules."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
