"""Image-to-image networks, after junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``):
pix2pix's U-Net generator and PatchGAN discriminator (Isola et al. 2017, arXiv 1611.07004)
and CycleGAN's ResNet generator (Zhu et al. 2017, arXiv 1703.10593).

Images are ``(N, C, H, W)`` float in [-1, 1]. The generators are fully convolutional: they
run on any H and W (square or not) that are multiples of their ``multiple`` attribute and
raise ``ValueError`` naming the size and the multiple otherwise; run them at other sizes
with :func:`gancli.translate.tiling.pad_to_multiple` and ``crop``, or on large images with
:func:`gancli.translate.tiling.tiled_apply`. ``image_size`` only picks the default depth
(U-Net), layer count (PatchGAN) or block count (ResNet) from the training image size:

==========  =====================  ===================================  ==================
image_size  U-Net depth, multiple  PatchGAN layers, receptive field     ResNet blocks
==========  =====================  ===================================  ==================
28, 32      5, 32 (28 pads to 32)  1, 16 px                             6
64          6, 64                  2, 34 px                             6
128         7, 128                 3, 70 px                             6
256         8, 256                 3, 70 px (pix2pix's 70x70)           9
512         8, 256                 3, 70 px                             9
==========  =====================  ===================================  ==================
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gancli.models.layers import Dropout, spectral_norm_
from gancli.translate.layers import NORMS, check_images, check_positive, init_weights, norm_layer

__all__ = ["NORMS", "MAX_UNET_DEPTH", "PatchDiscriminator", "ResnetGenerator", "UNetGenerator", "init_weights",
           "patch_layers", "receptive_field", "resnet_blocks", "unet_depth"]

#: the U-Net's deepest default: 256 px down to a 1x1 bottleneck (pix2pix's "unet_256")
MAX_UNET_DEPTH = 8


def unet_depth(image_size: int) -> int:
    """The U-Net's default depth (stride-2 levels): ``ceil(log2(image_size))``, at least 2 and at
    most :data:`MAX_UNET_DEPTH`, so images up to 256 px reach a 1x1 bottleneck (sizes that are not
    powers of two after padding to the next one, e.g. 28 -> 32) and larger ones stop at 8 levels."""
    check_positive(image_size=image_size)
    return min(MAX_UNET_DEPTH, max(2, math.ceil(math.log2(image_size))))


def receptive_field(n_layers: int) -> int:
    """Receptive field, in pixels (square side), of one output score of a
    :class:`PatchDiscriminator` with ``n_layers`` stride-2 layers: ``9 * 2**n_layers - 2``
    (16, 34, 70, 142 px for 1 to 4 layers; 70 = pix2pix's "70x70 PatchGAN").

    Each 4x4 convolution of stride s widens the field of what follows it by ``3 * s_before``
    pixels, where ``s_before`` is the product of the strides before it: two stride-1
    layers at the end give 7 px, and each stride-2 layer before them doubles it and adds 2.

    Raises:
        ValueError: ``n_layers`` < 1.
    """
    check_positive(n_layers=n_layers)
    return 9 * 2**n_layers - 2


def patch_layers(image_size: int) -> int:
    """The PatchGAN's default layer count: ``round(log2(image_size / 16))`` clamped to [1, 3], i.e.
    the receptive field (:func:`receptive_field`) nearest half the image side, in log scale, and at
    most pix2pix's 70 px: 1 layer (16 px) at 28-32 px, 2 (34 px) at 64, 3 (70 px) from 128 on.
    The field is about half the image up to 128 px and a quarter at 256 px (pix2pix's setting)."""
    check_positive(image_size=image_size)
    return min(3, max(1, round(math.log2(image_size / 16))))


def resnet_blocks(image_size: int) -> int:
    """The ResNet generator's default residual block count: 6 below 256 px, 9 from 256 px on
    (CycleGAN's ``resnet_6blocks`` for 128 px, ``resnet_9blocks`` for 256 px)."""
    check_positive(image_size=image_size)
    return 6 if image_size < 256 else 9


class UNetGenerator(nn.Module):
    """pix2pix's U-Net generator (Isola et al. 2017, arXiv 1611.07004, section 3.2.1 and the
    reference code's ``unet_256``): ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels,
    H, W)`` in [-1, 1] (tanh), H and W multiples of :attr:`multiple` = ``2**depth``.

    Encoder: ``depth`` 4x4 stride-2 convolutions, each after a LeakyReLU(0.2) but the first,
    with the normalisation after each but the first and the innermost (the bottleneck is never
    normalised, so batch norm on a 1x1 bottleneck with batch size 1 cannot fail). Channels
    ``ngf * min(2**i, 8)`` at level i. Decoder: ReLU then a 4x4 stride-2 transposed convolution
    per level, the normalisation after each but the last, which ends in tanh; each level's input
    is the concatenation (on channels) of the encoder's activation at that resolution (the skip
    connection) and the decoder's output below. Dropout 0.5 follows the three decoder levels just
    above the innermost one (fewer in shallower nets, never the outermost), as the reference does
    at depth 8; it is pix2pix's only noise source and is off in eval mode.

    Args:
        in_channels: C of the input (the condition: e.g. damaged image + mask channels).
        out_channels: C of the output images.
        ngf: channels of the first level; deeper levels double it, up to ``8 * ngf``.
        depth: stride-2 levels, >= 2; None = :func:`unet_depth` of ``image_size``.
        image_size: the training image side, pixels; only sets the default ``depth``.
        norm: one of :data:`NORMS`.
        dropout: dropout 0.5 in three decoder levels (see above); False = none.

    Raises:
        ValueError: a bad argument (named, with the valid values).
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, depth: int | None = None,
                 image_size: int = 256, norm: str = "batch", dropout: bool = True):
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, ngf=ngf, image_size=image_size)
        norm_layer(norm, 1)  # validates norm
        depth = unet_depth(image_size) if depth is None else depth
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"U-Net depth must be an integer >= 2, got {depth!r}")
        self.in_channels, self.out_channels, self.depth, self.norm = in_channels, out_channels, depth, norm
        #: H and W of an input must be multiples of this (``2**depth``)
        self.multiple = 2**depth
        ch = [ngf * min(2**i, 8) for i in range(depth)]
        bias = norm != "batch"  # as the reference: no bias before a BatchNorm (nor, there, anywhere else)
        down: list[nn.Module] = [nn.Conv2d(in_channels, ch[0], 4, 2, 1, bias=bias)]
        for i in range(1, depth):
            conv = nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=bias)
            down.append(conv if i == depth - 1 else nn.Sequential(conv, norm_layer(norm, ch[i])))
        up: list[nn.Module] = []
        for j in range(depth):  # up[j] doubles the map of level depth-1-j (j = 0: the bottleneck)
            level = depth - 1 - j
            cin = ch[level] * (1 if j == 0 else 2)
            if level == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, ch[level - 1], 4, 2, 1, bias=bias),
                          norm_layer(norm, ch[level - 1])]
                if dropout and 1 <= j <= 3:
                    layers.append(Dropout(0.5))
            up.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1].

        Raises:
            ValueError: wrong channels, or H or W not a multiple of :attr:`multiple`.
        """
        check_images(x, self.in_channels, self.multiple, f"this U-Net (depth {self.depth})")
        h = self.down[0](x)
        skips = []
        for down in self.down[1:]:
            h = F.leaky_relu(h, 0.2)
            skips.append(h)  # the reference's in-place LeakyReLU makes its skip this activation too
            h = down(h)
        for j, up in enumerate(self.up):
            if j:
                h = torch.cat([skips[-j], h], 1)
            h = up(h)
        return h


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN (Isola et al. 2017, arXiv 1611.07004, section 3.2.2; the reference's
    ``NLayerDiscriminator``): one raw score (a logit) per overlapping patch of
    :func:`receptive_field` ``(n_layers)`` pixels; 70x70 with the default 3 layers.

    ``n_layers`` 4x4 stride-2 convolutions (``ndf * min(2**i, 8)`` channels), then a 4x4 stride-1
    convolution and a 4x4 stride-1 convolution to one channel; LeakyReLU(0.2) after each but the
    last, the normalisation after each but the first and the last. The output grid of an H x W
    input is ``(h, w)`` with ``h = H // 2**n_layers - 2`` (30x30 at 256 px with 3 layers): see
    :meth:`output_size`. Any H, W of at least ``3 * 2**n_layers`` pixels, square or not.

    Args:
        in_channels: C of what it scores: condition channels + output channels for pix2pix
            (``forward(images, condition)`` concatenates them), output channels for CycleGAN.
        ndf: channels of the first layer; later layers double it, up to ``8 * ndf``.
        n_layers: stride-2 layers, >= 1; None = :func:`patch_layers` of ``image_size``.
        image_size: the training image side, pixels; only sets the default ``n_layers``.
        norm: one of :data:`NORMS`.
        spectral_norm: spectral normalisation on every convolution (Miyato et al. 2018, arXiv
            1802.05957), on top of ``norm`` (pass ``norm="none"`` for spectral norm alone);
            False = off.

    Raises:
        ValueError: a bad argument (named, with the valid values).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int | None = None, image_size: int = 256,
                 norm: str = "batch", spectral_norm: bool = False):
        super().__init__()
        check_positive(in_channels=in_channels, ndf=ndf, image_size=image_size)
        norm_layer(norm, 1)  # validates norm
        n_layers = patch_layers(image_size) if n_layers is None else n_layers
        check_positive(n_layers=n_layers)
        self.in_channels, self.n_layers, self.norm = in_channels, n_layers, norm
        #: pixels (side) of the input patch that one output score sees
        self.receptive_field = receptive_field(n_layers)
        bias = norm != "batch"
        ch = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch[i - 1], ch[i], 4, stride, 1, bias=bias), norm_layer(norm, ch[i]),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ch[n_layers], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self)
        if spectral_norm:
            spectral_norm_(self)

    @property
    def min_size(self) -> int:
        """The smallest input side, pixels, that gives a score: ``3 * 2**n_layers``."""
        return 3 * 2**self.n_layers

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the score grid for an input of ``height x width`` pixels (>= :attr:`min_size`)."""
        return height // 2**self.n_layers - 2, width // 2**self.n_layers - 2

    def forward(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Score ``images (N, C_out, H, W)`` in [-1, 1], given ``condition (N, C_in, H, W)`` in
        [-1, 1] (pix2pix: the generator's input) or None (CycleGAN), with ``C_in + C_out ==
        in_channels``. Returns logits ``(N, 1, h, w)``, :meth:`output_size` ``(H, W)``.

        Raises:
            ValueError: wrong channels, mismatched sizes, or an input smaller than :attr:`min_size`.
        """
        if condition is not None:
            if condition.dim() != 4 or images.dim() != 4 or \
                    (condition.shape[0], *condition.shape[2:]) != (images.shape[0], *images.shape[2:]):
                raise ValueError(f"condition and images must be (N, C, H, W) of the same N, H, W, got "
                                 f"{tuple(condition.shape)} and {tuple(images.shape)}")
            images = torch.cat([condition, images], 1)
        check_images(images, self.in_channels, 1, f"this PatchGAN ({self.n_layers} layers; condition + images)",
                     self.min_size)
        return self.net(images)


class ResnetBlock(nn.Module):
    """``x + conv(relu(norm(conv(x))))`` with 3x3 convolutions after reflection padding and the
    normalisation after each (He et al. 2016, arXiv 1512.03385; CycleGAN's ``ResnetBlock``).
    ``(N, C, H, W) -> (N, C, H, W)``, H and W >= 2."""

    def __init__(self, channels: int, norm: str, bias: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Zhu et al. 2017, arXiv 1703.10593, appendix 7.2; after Johnson et al.
    2016, arXiv 1603.08155): ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)``
    in [-1, 1] (tanh), H and W multiples of :attr:`multiple` = 4 and at least 8 (28 -> 14 -> 7 ->
    14 -> 28 at MNIST's size).

    A 7x7 convolution after reflection padding (``ngf`` channels), two 3x3 stride-2 convolutions
    (``2 ngf``, ``4 ngf``), ``n_blocks`` :class:`ResnetBlock`, two 3x3 stride-2 transposed
    convolutions back (``2 ngf``, ``ngf``), each followed by the normalisation and ReLU, and a 7x7
    convolution after reflection padding with tanh.

    Args:
        in_channels: C of the input images.
        out_channels: C of the output images.
        ngf: channels of the first convolution.
        n_blocks: residual blocks, >= 0; None = :func:`resnet_blocks` of ``image_size`` (6, or 9
            from 256 px on).
        image_size: the training image side, pixels; only sets the default ``n_blocks``.
        norm: one of :data:`NORMS`; ``instance`` is CycleGAN's.

    Raises:
        ValueError: a bad argument (named, with the valid values).
    """

    #: H and W of an input must be multiples of this (two stride-2 levels)
    multiple = 4
    #: the smallest input side, pixels (the 2x2 bottleneck's reflection padding needs 2)
    min_size = 8

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int | None = None,
                 image_size: int = 256, norm: str = "instance"):
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, ngf=ngf, image_size=image_size)
        norm_layer(norm, 1)  # validates norm
        n_blocks = resnet_blocks(image_size) if n_blocks is None else n_blocks
        if not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be an integer >= 0, got {n_blocks!r}")
        self.in_channels, self.out_channels, self.n_blocks, self.norm = in_channels, out_channels, n_blocks, norm
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   norm_layer(norm, ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias), norm_layer(norm, ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, norm, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1].

        Raises:
            ValueError: wrong channels, H or W not a multiple of 4, or under 8 px.
        """
        check_images(x, self.in_channels, self.multiple, "this ResNet generator", self.min_size)
        return self.net(x)
