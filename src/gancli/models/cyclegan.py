"""``--arch cyclegan``: CycleGAN's two ResNet generators and two PatchGAN discriminators (Zhu et
al. 2017, arXiv 1703.10593) built from a :class:`~gancli.config.ModelConfig`, for ``--task
unpaired`` (:mod:`gancli.tasks`). The networks are :mod:`gancli.translate.networks`'; this
module sizes them from the config and holds each pair in one module, so the loop's ``G`` / ``D``,
their optimizers, the EMA and the checkpoint format are those of every other run:

* :class:`CycleGANGenerators` (``G``): ``g_ab`` maps domain A to B, ``g_ba`` B to A; calling it
  is ``g_ab``. Each pads its input (reflection) to the ResNet's multiple of 4 and crops the
  output back, so it runs at any H and W of at least 8 pixels.
* :class:`CycleGANDiscriminators` (``D``): ``d_a`` judges domain A images, ``d_b`` domain B's;
  unconditional PatchGANs with instance normalisation (CycleGAN's), whatever ``--d-norm``.

Both domains have ``img_channels`` channels (:func:`gancli.translate.pairs.describe_unpaired`
brings them to one count), and ``in_channels == img_channels``.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import ModelConfig
from gancli.errors import UsageError
from gancli.translate.networks import PatchDiscriminator, ResnetGenerator
from gancli.translate.tiling import crop, pad_to_multiple

#: CycleGAN's normalisation in G and D (the reference's ``--norm instance``).
NORM = "instance"


class PaddedResnetGenerator(nn.Module):
    """A :class:`~gancli.translate.networks.ResnetGenerator` at any H, W >= 8: ``x (N,
    in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1]; the input is padded
    (reflection) to :attr:`multiple` and the output cropped back.

    Args:
        in_channels, out_channels: C of the input and of the output images.
        ngf: channels of the first convolution (``--ngf``).
        image_size: the training image side, pixels; sets the residual block count
            (:func:`~gancli.translate.networks.resnet_blocks`: 6, or 9 from 256 px on).
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, image_size: int = 256):
        super().__init__()
        self.net = ResnetGenerator(in_channels, out_channels, ngf, image_size=image_size, norm=NORM)
        self.in_channels, self.img_channels, self.img_resolution = in_channels, out_channels, image_size

    @property
    def multiple(self) -> int:
        """H and W are padded to multiples of this (4)."""
        return self.net.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, pads = pad_to_multiple(x, self.net.multiple)
        return crop(self.net(padded), pads)


class CycleGANGenerators(nn.Module):
    """Both generators of a CycleGAN in one module: ``g_ab`` (A -> B) and ``g_ba`` (B -> A), each
    a :class:`PaddedResnetGenerator` ``(N, C, H, W) -> (N, C, H, W)`` in [-1, 1];
    ``forward(x)`` is ``g_ab(x)``.

    Args:
        channels: C of both domains' images.
        ngf, image_size: as :class:`PaddedResnetGenerator`.
    """

    takes_image = True

    def __init__(self, channels: int, ngf: int = 64, image_size: int = 256):
        super().__init__()
        self.g_ab = PaddedResnetGenerator(channels, channels, ngf, image_size)
        self.g_ba = PaddedResnetGenerator(channels, channels, ngf, image_size)
        self.in_channels = self.img_channels = channels
        self.img_resolution = image_size
        #: the :class:`~gancli.config.ModelConfig` that rebuilds it (set by :func:`gancli.models.build_generator`)
        self.config: ModelConfig | None = None

    @property
    def multiple(self) -> int:
        """H and W are padded to multiples of this internally."""
        return self.g_ab.multiple

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        """Raise :class:`UsageError` for an image under 8 px (the ResNet's and the PatchGAN's least)."""
        if img_channels < 1 or img_resolution < ResnetGenerator.min_size:
            raise UsageError(f"cyclegan does not support {img_channels}x{img_resolution}x{img_resolution} images; "
                             f"it needs at least {ResnetGenerator.min_size}x{ResnetGenerator.min_size} pixels")

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> CycleGANGenerators:
        return cls(cfg.img_channels, cfg.ngf, cfg.img_resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``g_ab(x)``: domain A ``(N, C, H, W)`` -> domain B, in [-1, 1]."""
        return self.g_ab(x)


class CycleGANDiscriminators(nn.Module):
    """Both discriminators of a CycleGAN in one module: ``d_a`` and ``d_b``, unconditional
    :class:`~gancli.translate.networks.PatchDiscriminator` of ``channels`` channels with
    instance normalisation, layer count from ``image_size``
    (:func:`~gancli.translate.networks.patch_layers`); ``forward(images)`` is ``d_b(images)``.

    Args:
        channels: C of both domains' images. ndf: ``--ndf``. image_size: training image side.
        spectral_norm: spectral normalisation on every convolution (``--spectral-norm``).
    """

    def __init__(self, channels: int, ndf: int = 64, image_size: int = 256, spectral_norm: bool = False):
        super().__init__()
        self.d_a = PatchDiscriminator(channels, ndf, image_size=image_size, norm=NORM, spectral_norm=spectral_norm)
        self.d_b = PatchDiscriminator(channels, ndf, image_size=image_size, norm=NORM, spectral_norm=spectral_norm)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> CycleGANDiscriminators:
        return cls(cfg.img_channels, cfg.ndf, cfg.img_resolution, cfg.spectral_norm)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``d_b(images)``: patch logits ``(N, 1, h, w)`` of domain B images ``(N, C, H, W)``."""
        return self.d_b(images)
