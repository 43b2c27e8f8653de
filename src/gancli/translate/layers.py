"""Pieces shared by the image-to-image networks: the normalisations, pix2pix's weight
initialisation and the checks of arguments and input images."""

from __future__ import annotations

import torch
from torch import nn

#: the normalisations a network can use after its hidden convolutions: ``batch``
#: (BatchNorm, pix2pix's), ``instance`` (InstanceNorm without affine parameters or running
#: statistics, CycleGAN's; Ulyanov et al. 2016, arXiv 1607.08022) or ``none``
NORMS = ("batch", "instance", "none")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation ``norm`` (one of :data:`NORMS`) over ``channels`` channels.

    Raises:
        ValueError: unknown ``norm``.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {norm!r}; valid choices: {', '.join(NORMS)}")


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix / CycleGAN initialisation, in place on every submodule: conv, transposed conv and
    linear weights ~ N(0, ``gain``), BatchNorm scales ~ N(1, ``gain``), all biases 0. Weights under
    spectral norm are initialised through their original (unnormalised) tensor. Returns ``module``.

    Raises:
        ValueError: ``gain`` <= 0.
    """
    from torch.nn.utils import parametrize

    if not gain > 0:
        raise ValueError(f"gain must be > 0, got {gain}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = (m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight")
                      else m.weight)
            nn.init.normal_(weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def check_positive(**values: int) -> None:
    """Raise ``ValueError`` naming the first of ``values`` (name=value) that is not an int >= 1."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_images(x: torch.Tensor, channels: int, multiple: int, what: str, min_size: int = 1) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, channels, H, W)`` with H and W multiples of
    ``multiple`` and at least ``min_size``; ``what`` names the network in the message. Skipped
    under ``torch.jit.trace`` (the traced graph keeps no Python checks); ``torch.export`` keeps
    them as guards on its dynamic sizes."""
    if torch.jit.is_tracing():  # TorchScript tracing records sizes as tensors: the checks would be frozen in
        return
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} takes (N, {channels}, H, W) images, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"{what} takes H and W that are multiples of {multiple}, got {h}x{w}; "
                         f"pad with gancli.translate.tiling.pad_to_multiple")
    if h < min_size or w < min_size:
        raise ValueError(f"{what} takes images of at least {min_size}x{min_size} px, got {h}x{w}")
