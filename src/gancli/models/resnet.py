"""SNGAN ResNet (Miyato et al. 2018, arXiv 1802.05957, appendix B, the CIFAR-10
ResNet), with the conditional variant of Miyato & Koyama 2018 (arXiv 1802.05637):
conditional BatchNorm in G, a projection term in D. Same layout as the 32x32
SNGAN models of mimicry and StudioGAN.

G (width ``ch = 4 * ngf``, 256 by default): ``z -> Linear -> (ch, base, base)``,
then ``k`` up-sampling residual blocks (BN, ReLU, nearest x2, conv3x3, BN, ReLU,
conv3x3; shortcut nearest x2 + conv1x1), then BN, ReLU, conv3x3, tanh.
``base`` = 4 (or 7 for 28-pixel images such as MNIST); 32 px = 3 blocks, 28 px = 2.

D (width ``ch = 2 * ndf``, 128 by default): an optimized first block
(conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool + conv1x1) that halves the
size, further down-sampling blocks (ReLU, conv3x3, ReLU, conv3x3, avgpool;
shortcut conv1x1 + avgpool) until the map is at most 8x8, then two blocks
without down-sampling (identity shortcut); ReLU, global sum pooling ->
``h (N, ch)`` -> Linear -> score. 32 px: 32 -> 16 -> 8 -> 8 -> 8 (4 blocks, as
in SNGAN); 28 px: 28 -> 14 -> 7 -> 7 -> 7.

Weights: xavier_uniform, gain sqrt(2) for the 3x3 convs inside residual branches
and 1 for everything else; biases 0 (as in SNGAN's reference code).
Resolutions ``4 * 2**k`` or ``7 * 2**k`` with ``k >= 1`` (8, 14, 16, 28, 32, 56, 64, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import ModelConfig
from gancli.models.layers import Discriminator, Generator, Projection, resolution_plan, spectral_norm_


def _plan(img_resolution: int) -> tuple[int, int]:
    """``(base, k)``: see :func:`~gancli.models.layers.resolution_plan`."""
    return resolution_plan("resnet", img_resolution, min_k=1)


def _init(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """xavier_uniform weight with ``gain``, zero bias. Returns ``module``."""
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional BatchNorm (arXiv 1802.05637, sec. 3): a BatchNorm without
    its own affine parameters followed by a per-class gain and bias,
    ``gain[y] * BN(x) + bias[y]``.

    Args:
        num_features: C of the input ``(N, C, H, W)``.
        num_classes: number of classes; labels ``y (N,)`` int64 in [0, num_classes).
    """

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gain(y)[:, :, None, None] * self.bn(x) + self.bias(y)[:, :, None, None]


def _batch_norm(num_features: int, num_classes: int) -> nn.Module:
    return ConditionalBatchNorm2d(num_features, num_classes) if num_classes else nn.BatchNorm2d(num_features)


def _apply_bn(bn: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return bn(x, y) if isinstance(bn, ConditionalBatchNorm2d) else bn(x)


class GBlock(nn.Module):
    """Up-sampling residual block of the SNGAN generator: ``(N, in_ch, H, W)`` ->
    ``(N, out_ch, 2H, 2W)``.

    Args:
        in_ch: input channels.
        out_ch: output channels (also the hidden width).
        num_classes: classes for conditional BatchNorm; 0 = plain BatchNorm.
    """

    def __init__(self, in_ch: int, out_ch: int, num_classes: int = 0):
        super().__init__()
        self.bn1 = _batch_norm(in_ch, num_classes)
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.bn2 = _batch_norm(out_ch, num_classes)
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(_apply_bn(self.bn1, x, y))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(_apply_bn(self.bn2, h, y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class OptimizedDBlock(nn.Module):
    """First block of the SNGAN discriminator, applied straight to the image:
    ``(N, in_ch, H, W)`` -> ``(N, out_ch, H/2, W/2)``.

    Args:
        in_ch: input channels (the image's C).
        out_ch: output channels.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """Residual block of the SNGAN discriminator: ``(N, in_ch, H, W)`` ->
    ``(N, out_ch, H/2, W/2)`` if ``downsample`` else ``(N, out_ch, H, W)``.

    Args:
        in_ch: input channels.
        out_ch: output channels (also the hidden width).
        downsample: halve H and W by 2x2 average pooling; False = keep the size.
    """

    def __init__(self, in_ch: int, out_ch: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), math.sqrt(2))
        # learnable 1x1 shortcut only where the identity does not fit
        learnable = downsample or in_ch != out_ch
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0)) if learnable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` [+ ``y (N,)`` int64 in [0, num_classes)] ->
    ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension (128 in SNGAN).
        img_channels: C of the output images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ngf: width unit; every block has ``4 * ngf`` channels (256 with the default 64).
        num_classes: classes of a conditional generator (conditional BatchNorm in
            every residual block); 0 = unconditional.
    """

    takes_soft_labels = True  # labels enter through nn.Embedding look-ups only (conditional BatchNorm gains and biases)

    def __init__(self, nz: int = 128, img_channels: int = 3, img_resolution: int = 32,
                 ngf: int = 64, num_classes: int = 0):
        super().__init__(nz, img_channels, img_resolution, num_classes)
        self.base, k = _plan(img_resolution)
        self.ch = ch = 4 * ngf
        self.fc = _init(nn.Linear(nz, self.base * self.base * ch))
        self.blocks = nn.ModuleList(GBlock(ch, ch, num_classes) for _ in range(k))
        self.bn = nn.BatchNorm2d(ch)
        self.conv_out = _init(nn.Conv2d(ch, img_channels, 3, 1, 1))

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        super().check_shape(img_channels, img_resolution)
        _plan(img_resolution)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> ResNetGenerator:
        return cls(cfg.nz, cfg.img_channels, cfg.img_resolution, cfg.ngf, cfg.num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(z, y)
        h = self.fc(z).view(z.shape[0], self.ch, self.base, self.base)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.conv_out(F.relu(self.bn(h))))


class ResNetDiscriminator(Discriminator):
    """``(N, C, H, W)`` in [-1, 1] [+ ``y (N,)`` int64 in [0, num_classes)] ->
    scores ``(N,)``.

    Args:
        img_channels: C of the input images.
        img_resolution: H = W, pixels (see module docstring for valid values).
        ndf: width unit; every block has ``2 * ndf`` channels (128 with the default 64).
        num_classes: classes of a conditional discriminator (adds the projection
            term ``<embed(y), h>``, arXiv 1802.05637); 0 = unconditional.
        spectral_norm: spectral normalisation (arXiv 1802.05957) on every conv,
            linear and embedding weight; False = off.
    """

    def __init__(self, img_channels: int = 3, img_resolution: int = 32, ndf: int = 64,
                 num_classes: int = 0, spectral_norm: bool = False):
        super().__init__(img_channels, img_resolution, num_classes)
        _plan(img_resolution)
        self.ch = ch = 2 * ndf
        blocks: list[nn.Module] = [OptimizedDBlock(img_channels, ch)]
        size = img_resolution // 2
        while size > 8:
            blocks.append(DBlock(ch, ch, downsample=True))
            size //= 2
        blocks += [DBlock(ch, ch, downsample=False), DBlock(ch, ch, downsample=False)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = _init(nn.Linear(ch, 1))
        self.projection = Projection(num_classes, ch) if num_classes else None
        if spectral_norm:
            spectral_norm_(self)

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        ResNetGenerator.check_shape(img_channels, img_resolution)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> ResNetDiscriminator:
        return cls(cfg.img_channels, cfg.img_resolution, cfg.ndf, cfg.num_classes, cfg.spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(x, y)
        h = F.relu(self.blocks(x)).sum((2, 3))  # (N, ch), global sum pooling
        out = self.fc(h).squeeze(1)
        if self.projection is not None:
            out = out + self.projection(h, y)
        return out
