"""``--arch unet``: pix2pix's U-Net generator and PatchGAN discriminator (Isola et al. 2017, arXiv
1611.07004) built from a :class:`~gancli.config.ModelConfig`, for the image-to-image tasks
(``--task inpaint`` ...; :mod:`gancli.tasks`). The networks are
:mod:`gancli.translate.networks`'; this module only sizes them from the config and lets G run
at the training size when that is no multiple of the U-Net's (MNIST's 28 px: padded to 32 by
reflection, cropped back).

Unlike the noise-to-image architectures, G maps ``x (N, in_channels, H, W)`` to ``(N,
img_channels, H, W)`` and D scores ``(image, condition)`` pairs, one logit per patch.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import ModelConfig
from gancli.errors import UsageError
from gancli.translate.networks import PatchDiscriminator, UNetGenerator
from gancli.translate.tiling import crop, pad_to_multiple

#: ``--d-norm`` -> the PatchGAN's normalisation (``layer`` is refused by the resolver).
D_NORM = {"batch": "batch", "none": "none"}


class Pix2PixGenerator(nn.Module):
    """pix2pix's U-Net G at any H and W: ``x (N, in_channels, H, W)`` in [-1, 1] -> ``(N,
    out_channels, H, W)`` in [-1, 1]; inputs are padded (reflection) to the U-Net's
    :attr:`multiple` and the output cropped back.

    Args:
        in_channels: C of the input (the task's: e.g. damaged image + mask = C + 1).
        out_channels: C of the output images.
        ngf: channels of the U-Net's first level (``--ngf``).
        image_size: the training image side, pixels; sets the U-Net's depth
            (:func:`~gancli.translate.networks.unet_depth`).
    """

    takes_image = True

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, image_size: int = 256):
        super().__init__()
        self.net = UNetGenerator(in_channels, out_channels, ngf, image_size=image_size)
        self.in_channels, self.img_channels, self.img_resolution = in_channels, out_channels, image_size
        #: the :class:`~gancli.config.ModelConfig` that rebuilds it (set by :func:`gancli.models.build_generator`)
        self.config: ModelConfig | None = None

    @property
    def multiple(self) -> int:
        """H and W are padded to multiples of this (the U-Net's ``2**depth``)."""
        return self.net.multiple

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        """Raise :class:`UsageError` for an image too small for the PatchGAN (8 px)."""
        if img_channels < 1 or img_resolution < 8:
            raise UsageError(f"unet does not support {img_channels}x{img_resolution}x{img_resolution} images; "
                             "it needs at least 8x8 pixels")

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> Pix2PixGenerator:
        return cls(cfg.in_channels, cfg.img_channels, cfg.ngf, cfg.img_resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, pads = pad_to_multiple(x, self.net.multiple)
        return crop(self.net(padded), pads)


class Pix2PixDiscriminator(PatchDiscriminator):
    """pix2pix's conditional PatchGAN over ``in_channels + img_channels`` channels (the condition
    and the image, concatenated by ``forward(images, condition)``); layer count from
    ``img_resolution`` (:func:`~gancli.translate.networks.patch_layers`)."""

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> Pix2PixDiscriminator:
        return cls(cfg.in_channels + cfg.img_channels, cfg.ndf, image_size=cfg.img_resolution,
                   norm=D_NORM[cfg.d_norm], spectral_norm=cfg.spectral_norm)
