"""The classic fully-connected GAN (Goodfellow et al. 2014, arXiv 1406.2661).

G: ``nz -> 256 -> 512 -> 1024 -> C*H*W``, ReLU, tanh output.
D: ``C*H*W -> 1024 -> 512 -> 256 -> 1``, LeakyReLU(0.2), dropout 0.3.
Works for any image shape.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import ModelConfig
from gancli.models.layers import Discriminator, Generator


class MLPGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` -> ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W of the output images, pixels.
        hidden: widths of the hidden layers.
    """

    def __init__(self, nz: int = 100, img_channels: int = 1, img_resolution: int = 28,
                 hidden: tuple[int, ...] = (256, 512, 1024)):
        super().__init__(nz, img_channels, img_resolution)
        layers: list[nn.Module] = []
        width = nz
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, img_channels * img_resolution * img_resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> MLPGenerator:
        return cls(cfg.nz, cfg.img_channels, cfg.img_resolution)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.check_z(z)
        r = self.img_resolution
        return self.net(z).view(z.shape[0], self.img_channels, r, r)


class MLPDiscriminator(Discriminator):
    """``(N, C, H, W)`` in [-1, 1] -> logits ``(N,)``.

    Args:
        img_channels: C of the input images.
        img_resolution: H = W of the input images, pixels.
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer; 0 = off.
    """

    def __init__(self, img_channels: int = 1, img_resolution: int = 28,
                 hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3):
        super().__init__(img_channels, img_resolution)
        layers: list[nn.Module] = []
        width = img_channels * img_resolution * img_resolution
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> MLPDiscriminator:
        return cls(cfg.img_channels, cfg.img_resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_x(x)
        return self.net(x.flatten(1)).squeeze(1)
