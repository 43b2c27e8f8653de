"""DCGAN (Radford, Metz & Chintala 2015, arXiv 1511.06434).

G: a 1x1 latent is lifted by a transposed convolution to a ``base x base`` map
(``base`` = 4, or 7 for 28-pixel images such as MNIST), then doubled in size by
stride-2 transposed convolutions with BatchNorm + ReLU, tanh output.
D mirrors it: stride-2 convolutions with LeakyReLU(0.2) (BatchNorm on all but
the first, none with spectral norm), and a final ``base x base`` convolution to
one logit. Weights ~ N(0, 0.02). Resolutions ``4 * 2**k`` or ``7 * 2**k`` with
``k >= 2`` (16, 28, 32, 56, 64, 128, ...).

Conditional variant: a learned class embedding is concatenated to z in G
(arXiv 1411.1784); D adds the projection term (arXiv 1802.05637) on its last
feature map, flattened: ``D(x, y) = w . phi(x) + embed(y) . phi(x)`` with
``phi(x)`` the ``C x base x base`` map that the head convolution (the linear
``w``) also reads. The DCGAN D has only ``k`` conv layers (2 for 28 pixels), so
sum-pooling that map, as deeper ResNet discriminators do, throws away where the
strokes are: the projection then cannot tell digits apart, and D uses the
class embedding to flag G's current output per class instead, which collapses
each class to one image (measured: intra-class pixel std 0.4x that of real
MNIST after one epoch, classes mixed up; 0.9x and right classes with the
flattened map).
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.config import D_NORMS, ModelConfig
from gancli.models.layers import (
    Discriminator,
    Generator,
    Projection,
    dcgan_init_,
    is_channels_last,
    resolution_plan,
    spectral_norm_,
)
from gancli.models.mlp import CLASS_EMBED_DIM


def _plan(img_resolution: int) -> tuple[int, int]:
    """``(base, k)``: see :func:`~gancli.models.layers.resolution_plan`."""
    return resolution_plan("dcgan", img_resolution, min_k=2)


class DCGANGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` [+ ``y (N,)``] -> ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ngf: channels of the last hidden layer; earlier layers double it.
        num_classes: classes for a conditional G; 0 = unconditional.
    """

    takes_soft_labels = True  # labels enter through nn.Embedding look-ups only (class embedding concatenated to z)

    def __init__(self, nz: int = 100, img_channels: int = 1, img_resolution: int = 28, ngf: int = 64,
                 num_classes: int = 0):
        super().__init__(nz, img_channels, img_resolution, num_classes)
        base, k = _plan(img_resolution)
        ch = ngf * 2 ** (k - 1)
        self.embed = nn.Embedding(num_classes, CLASS_EMBED_DIM) if num_classes else None
        in_ch = nz + (CLASS_EMBED_DIM if num_classes else 0)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_ch, ch, base, 1, 0, bias=False),
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
        return cls(cfg.nz, cfg.img_channels, cfg.img_resolution, cfg.ngf, cfg.num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(z, y)
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net[1:](self._lift(z))

    def _lift(self, z: torch.Tensor) -> torch.Tensor:
        """The first transposed convolution on the 1x1 latent map, as the matrix product it is:
        ``(N, nz') @ (nz', C*base*base)``. The convolution kernel re-laid out its weight and ran a
        general deconvolution at every call (measured 2-3x slower on CPU); same weights, same result up
        to float rounding. The output keeps the weight's memory format (channels_last or not)."""
        w = self.net[0].weight  # (nz', C, base, base)
        n, (_, c, kh, kw) = z.shape[0], w.shape
        if is_channels_last(w):
            h = z @ w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)  # a view: (nz', base, base, C)
            return h.view(n, kh, kw, c).permute(0, 3, 1, 2)  # NCHW shape, channels_last strides
        return (z @ w.reshape(w.shape[0], -1)).view(n, c, kh, kw)


class DCGANDiscriminator(Discriminator):
    """``(N, C, H, W)`` in [-1, 1] [+ ``y (N,)``] -> logits ``(N,)``.

    Args:
        img_channels: C of the input images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ndf: channels of the first layer; later layers double it.
        num_classes: classes for a projection D; 0 = unconditional.
        spectral_norm: spectral normalisation on every weight; it replaces
            BatchNorm (as in SNGAN's DCGAN-style D). False = off.
        norm: after the hidden convolutions, ``batch`` (BatchNorm, the DCGAN's), ``layer``
            (layer normalisation: ``GroupNorm`` with one group, i.e. each sample's
            ``C x H x W`` map, with a learned per-channel scale and shift; Ba et al. 2016,
            arXiv 1607.06450; the critic normalisation Gulrajani et al. recommend with a
            gradient penalty, which needs per-sample gradients, arXiv 1704.00028) or
            ``none``. Ignored with spectral norm.

    Raises:
        ValueError: unknown ``norm``.
    """

    def __init__(self, img_channels: int = 1, img_resolution: int = 28, ndf: int = 64, num_classes: int = 0,
                 spectral_norm: bool = False, norm: str = "batch"):
        if norm not in D_NORMS:
            raise ValueError(f"unknown D normalisation {norm!r}; valid choices: {', '.join(D_NORMS)}")
        super().__init__(img_channels, img_resolution, num_classes)
        base, k = _plan(img_resolution)
        ch = ndf
        layers: list[nn.Module] = [nn.Conv2d(img_channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(k - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False))
            if norm != "none" and not spectral_norm:
                layers.append(nn.GroupNorm(1, ch * 2) if norm == "layer" else nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, base, 1, 0, bias=False)
        self.projection = Projection(num_classes, ch * base * base) if num_classes else None
        dcgan_init_(self)
        if spectral_norm:
            spectral_norm_(self)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DCGANDiscriminator:
        return cls(cfg.img_channels, cfg.img_resolution, cfg.ndf, cfg.num_classes, cfg.spectral_norm,
                   norm=cfg.d_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, y)
        h = self.body(x)
        out = self.head(h).flatten()
        if self.projection is not None:
            out = out + self.projection(h, y)
        return out
