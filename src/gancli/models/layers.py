"""Shared pieces of generators and discriminators: base classes with shape
checks, conditioning helpers, DCGAN init and spectral norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gancli.config import ModelConfig
from gancli.errors import UsageError


class Generator(nn.Module):
    """Base generator: ``z (N, nz) float32 ~ N(0, I)`` [+ labels ``y (N,)`` int64 in
    [0, num_classes)] -> images ``(N, C, H, W)`` in [-1, 1].

    Args:
        nz: latent dimension.
        img_channels: C of the output images.
        img_resolution: H = W of the output images, pixels.
        num_classes: classes of a conditional generator; 0 = unconditional.
    """

    #: whether the class labels enter only through ``nn.Embedding`` look-ups, so a blend of
    #: classes can be fed as the blend of the tables' rows (the blended class walks of
    #: ``gan sample --class-walk --interpolate K``, :func:`gancli.generate.walks.generate_soft`)
    takes_soft_labels: bool = False

    def __init__(self, nz: int, img_channels: int, img_resolution: int, num_classes: int = 0):
        super().__init__()
        self.check_shape(img_channels, img_resolution)
        self.nz = nz
        self.img_channels = img_channels
        self.img_resolution = img_resolution
        self.num_classes = num_classes
        #: the :class:`~gancli.config.ModelConfig` that rebuilds this generator (set by
        #: :func:`gancli.models.build_generator`; None for one built by hand)
        self.config: ModelConfig | None = None
        #: the training step of the weights loaded into it (None = fresh or unknown)
        self.step: int | None = None
        #: whether the loaded weights are the EMA generator's
        self.uses_ema: bool = False

    @property
    def model_config(self) -> ModelConfig | None:
        """Alias of :attr:`config` (gancli 0.1 name)."""
        return self.config

    @property
    def checkpoint_step(self) -> int | None:
        """Alias of :attr:`step` (gancli 0.1 name)."""
        return self.step

    @classmethod
    def check_shape(cls, img_channels: int, img_resolution: int) -> None:
        """Raise :class:`UsageError` if this architecture cannot make the shape."""
        if img_channels < 1 or img_resolution < 1:
            raise UsageError(f"bad image shape {img_channels}x{img_resolution}x{img_resolution}")

    def check_inputs(self, z: torch.Tensor, y: torch.Tensor | None) -> None:
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must have shape (N, {self.nz}), got {tuple(z.shape)}")
        check_labels(self.num_classes, z.shape[0], y)

    def sample(self, n: int, seed: int = 0, labels: int | Sequence[int] | torch.Tensor | None = None,
               device: torch.device | str | None = None, batch_size: int = 256) -> torch.Tensor:
        """Draw ``n`` images, reproducibly: the images ``gan sample --seed S`` makes.

        The latents are ``gancli.seeding.latents(n, nz, seed)``: ``(n, nz)`` ~ N(0, I)
        drawn on the CPU, so the same seed gives the same images on every device.
        Runs in eval mode (the previous mode is restored) without gradients.

        Args:
            n: number of images, >= 1.
            seed: seed of the latents (and of the random classes, see ``labels``).
            labels: conditional generators only. None = a uniformly random class per
                image, drawn from ``seed + 1`` as ``gan sample`` does; an int = that
                class for every image; or ``n`` classes (sequence or ``(n,)`` tensor)
                in [0, num_classes).
            device: where to run; None = where the generator's parameters are.
                Another device moves the generator there (in place, as ``Module.to``).
            batch_size: images per forward pass; changes memory use, not the images
                (beyond float rounding).

        Returns:
            ``(n, C, H, W)`` float32 in [-1, 1], on the CPU.

        Raises:
            ValueError: bad ``n``, labels given to an unconditional generator, or
                classes out of range.
        """
        from gancli.generate.sampling import generate
        from gancli.seeding import latents, random_labels

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if device is None:
            device = next(self.parameters()).device
        else:
            self.to(device)
        k = self.num_classes
        if labels is not None and not k:
            raise ValueError("this generator is unconditional: pass no labels")
        if labels is None:
            y = random_labels(n, k, seed, device) if k else None
        elif isinstance(labels, int):
            y = torch.full((n,), labels, dtype=torch.long, device=device)
        else:
            y = torch.as_tensor(labels, dtype=torch.long).to(device)
            if y.shape != (n,):
                raise ValueError(f"labels must have shape ({n},), got {tuple(y.shape)}")
        if y is not None and not bool(((y >= 0) & (y < k)).all()):
            raise ValueError(f"labels must be classes in [0, {k}), got {y.min().item()}..{y.max().item()}")
        return generate(self, latents(n, self.nz, seed, device), y, batch_size=batch_size)


class Discriminator(nn.Module):
    """Base discriminator: images ``(N, C, H, W)`` in [-1, 1] [+ labels ``y (N,)``]
    -> scores ``(N,)`` (real > fake).

    The output is a raw score (a logit for BCE losses, a critic value for
    Wasserstein ones); losses apply their own link function.

    Args:
        img_channels, img_resolution: the input image shape.
        num_classes: classes of a conditional (projection) discriminator; 0 = unconditional.
    """

    def __init__(self, img_channels: int, img_resolution: int, num_classes: int = 0):
        super().__init__()
        self.img_channels = img_channels
        self.img_resolution = img_resolution
        self.num_classes = num_classes

    def check_inputs(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        expect = (self.img_channels, self.img_resolution, self.img_resolution)
        if x.dim() != 4 or tuple(x.shape[1:]) != expect:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, expect))}), got {tuple(x.shape)}")
        check_labels(self.num_classes, x.shape[0], y)


def check_labels(num_classes: int, n: int, y: torch.Tensor | None) -> None:
    """Labels are required (shape ``(n,)``) iff ``num_classes > 0``."""
    if num_classes:
        if y is None:
            raise ValueError(f"this model is conditional ({num_classes} classes): labels y are required")
        if y.shape != (n,):
            raise ValueError(f"labels y must have shape ({n},), got {tuple(y.shape)}")
    elif y is not None:
        raise ValueError("this model is unconditional: pass no labels")


def is_channels_last(t: torch.Tensor) -> bool:
    """Whether a 4-D tensor is laid out channels_last (and not also plain contiguous, as 1x1 maps are)."""
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


class Projection(nn.Module):
    """Class projection term of a projection discriminator (Miyato & Koyama 2018,
    arXiv 1802.05637): ``<embed(y), h>`` for features ``h (N, F)``, or a feature map
    ``h (N, C, H, W)`` with ``F = C*H*W`` (read in NCHW order whatever ``h``'s memory
    format), labels ``y (N,)``. Returns ``(N,)``."""

    def __init__(self, num_classes: int, features: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.embed(y)
        if h.dim() == 4:
            # Match h's memory format instead of flattening a channels_last h: that copy sent an NCHW
            # gradient into D's channels_last backward (measured 17% slower steps for the DCGAN).
            e = e.view(h.shape)
            if is_channels_last(h):
                e = e.contiguous(memory_format=torch.channels_last)
            return (e * h).sum((1, 2, 3))
        return (e * h).sum(1)


class Dropout(nn.Dropout):
    """Inverted dropout (Srivastava et al. 2014, JMLR 15(56)), as ``nn.Dropout``: in
    training, each element of ``x`` (any shape) is zeroed with probability ``p``
    and the others are scaled by ``1 / (1 - p)``; the identity in eval mode.

    On the CPU the mask is drawn with ``torch.rand`` from the global RNG, about
    twice as fast there as ``nn.Dropout``'s ``bernoulli_``, which took 14% of
    the MLP GAN's training step; on other devices this is ``nn.Dropout``.

    Args:
        p: probability of zeroing an element, in [0, 1]; 0 = the identity.
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p == 1.0:
            return F.dropout(x, self.p, training=True)
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1 / (1 - p), in place
        return x * keep


def resolution_plan(arch: str, img_resolution: int, min_k: int) -> tuple[int, int]:
    """``(base, k)`` with ``img_resolution == base * 2**k``, ``base`` in {4, 7} and
    ``k >= min_k`` (the number of 2x up/down-sampling stages of a conv architecture).

    Raises:
        UsageError: naming the resolution and the valid ones for ``arch``.
    """
    for base in (4, 7):
        k, size = 0, base
        while size < img_resolution:
            size, k = size * 2, k + 1
        if size == img_resolution and k >= min_k:
            return base, k
    examples = sorted({b * 2**k for b in (4, 7) for k in range(min_k, 6) if b * 2**k <= 128})
    raise UsageError(
        f"{arch} does not support {img_resolution}x{img_resolution} images; valid resolutions: "
        f"4*2^k or 7*2^k with k >= {min_k} ({', '.join(map(str, examples))}, ...)"
    )


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


def spectral_norm_(module: nn.Module) -> nn.Module:
    """Wrap every Conv/ConvTranspose/Linear/Embedding weight of ``module`` in spectral
    normalisation (Miyato et al. 2018, arXiv 1802.05957) through
    ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per
    training forward). Returns ``module``."""
    from torch.nn.utils.parametrizations import spectral_norm

    targets = [m for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding))]
    for m in targets:
        spectral_norm(m)
    return module
