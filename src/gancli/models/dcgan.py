"""DCGAN (Radford, Metz & Chintala 2015, arXiv 1511.06434).

G: a 1x1 latent is lifted by a transposed convolution to a ``base x base`` map
(``base`` = 4, or 7 for 28-pixel images such as MNIST), then doubled in size by
stride-2 transposed convolutions with BatchNorm + ReLU, tanh output.
D mirrors it: stride-2 convolutions with LeakyReLU(0.2) (BatchNorm on all but
the first), and a final ``base x base`` convolution to one logit.
Weights ~ N(0, 0.02). Resolutions ``4 * 2**k`` or ``7 * 2**k`` with ``k >= 2``
(16, 28, 32, 56, 64, 128, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import ModelConfig
from gancli.errors import UsageError
from gancli.models.layers import Discriminator, Generator, dcgan_init_


def _plan(img_resolution: int) -> tuple[int, int]:
    """``(base, k)`` with ``img_resolution == base * 2**k``, base in {4, 7}, k >= 2."""
    for base in (4, 7):
        k, size = 0, base
        while size < img_resolution:
            size, k = size * 2, k + 1
        if size == img_resolution and k >= 2:
            return base, k
    raise UsageError(
        f"dcgan does not support {img_resolution}x{img_resolution} images; "
        "valid resolutions: 4*2^k or 7*2^k with k >= 2 (16, 28, 32, 56, 64, 128, ...)"
    )


class DCGANGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` -> ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ngf: channels of the last hidden layer; earlier layers double it.
    """

    def __init__(self, nz: int = 100, img_channels: int = 1, img_resolution: int = 28, ngf: int = 64):
        super().__init__(nz, img_channels, img_resolution)
        base, k = _plan(img_resolution)
        ch = ngf * 2 ** (k - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, ch, base, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(k - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, img_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        super().check_shape(img_channels, img_resolution)
        _plan(img_resolution)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DCGANGenerator:
        return cls(cfg.nz, cfg.img_channels, cfg.img_resolution, cfg.ngf)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.check_z(z)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(Discriminator):
    """``(N, C, H, W)`` in [-1, 1] -> logits ``(N,)``.

    Args:
        img_channels: C of the input images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ndf: channels of the first layer; later layers double it.
    """

    def __init__(self, img_channels: int = 1, img_resolution: int = 28, ndf: int = 64):
        super().__init__(img_channels, img_resolution)
        base, k = _plan(img_resolution)
        ch = ndf
        layers: list[nn.Module] = [nn.Conv2d(img_channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DCGANDiscriminator:
        return cls(cfg.img_channels, cfg.img_resolution, cfg.ndf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_x(x)
        return self.net(x).flatten()
