"""The classic fully-connected GAN (Goodfellow et al. 2014, arXiv 1406.2661).

G: ``nz -> 256 -> 512 -> 1024 -> C*H*W``, ReLU, tanh output.
D: ``C*H*W -> 1024 -> 512 -> 256 -> 1``, LeakyReLU(0.2), dropout 0.3.
Works for any image shape. Conditional variant: G gets a learned class
embedding concatenated to z (Mirza & Osindero 2014, arXiv 1411.1784); D is a
projection discriminator on its last hidden layer (arXiv 1802.05637).
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import ModelConfig
from gancli.models.layers import Discriminator, Dropout, Generator, Projection, spectral_norm_

#: Width of the class embedding concatenated to z in conditional generators.
CLASS_EMBED_DIM = 32


class MLPGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` [+ ``y (N,)``] -> ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W of the output images, pixels.
        num_classes: classes for a conditional G; 0 = unconditional.
        hidden: widths of the hidden layers.
    """

    takes_soft_labels = True  # labels enter through nn.Embedding look-ups only (class embedding concatenated to z)

    def __init__(self, nz: int = 100, img_channels: int = 1, img_resolution: int = 28, num_classes: int = 0,
                 hidden: tuple[int, ...] = (256, 512, 1024)):
        super().__init__(nz, img_channels, img_resolution, num_classes)
        self.embed = nn.Embedding(num_classes, CLASS_EMBED_DIM) if num_classes else None
        layers: list[nn.Module] = []
        width = nz + (CLASS_EMBED_DIM if num_classes else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, img_channels * img_resolution * img_resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> MLPGenerator:
        return cls(cfg.nz, cfg.img_channels, cfg.img_resolution, cfg.num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(z, y)
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        r = self.img_resolution
        return self.net(z).view(z.shape[0], self.img_channels, r, r)


class MLPDiscriminator(Discriminator):
    """``(N, C, H, W)`` in [-1, 1] [+ ``y (N,)``] -> logits ``(N,)``.

    Args:
        img_channels: C of the input images.
        img_resolution: H = W of the input images, pixels.
        num_classes: classes for a projection D; 0 = unconditional.
        spectral_norm: spectral normalisation on every weight; False = off.
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden layer; 0 = off.
    """

    def __init__(self, img_channels: int = 1, img_resolution: int = 28, num_classes: int = 0,
                 spectral_norm: bool = False, hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3):
        super().__init__(img_channels, img_resolution, num_classes)
        layers: list[nn.Module] = []
        width = img_channels * img_resolution * img_resolution
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout:
                layers.append(Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        self.projection = Projection(num_classes, width) if num_classes else None
        if spectral_norm:
            spectral_norm_(self)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> MLPDiscriminator:
        return cls(cfg.img_channels, cfg.img_resolution, cfg.num_classes, cfg.spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, y)
        h = self.body(x.flatten(1))
        out = self.head(h).squeeze(1)
        if self.projection is not None:
            out = out + self.projection(h, y)
        return out
