"""Differentiable augmentation (DiffAugment) for data-efficient GAN training.

Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", arXiv 2006.10738. The same random augmentation family is applied to
every image the discriminator sees -- real and fake, in the D step *and* in the
G step -- and since each transform is differentiable w.r.t. its input, G's
gradients flow back through it.

The maths follows the authors' reference PyTorch implementation
(``DiffAugment_pytorch.py`` in mit-han-lab/data-efficient-gans, StyleGAN2
version), which also works on images in ``[-1, 1]``:

* ``color``: brightness ``x + U(-0.5, 0.5)``; saturation
  ``(x - mean_c) * U(0, 2) + mean_c`` around the per-pixel channel mean (the
  identity for C = 1); contrast ``(x - mean) * U(0.5, 1.5) + mean`` around the
  per-image mean. One draw per image for each.
* ``translation``: an integer shift per image and axis, uniform in
  ``[-s, s]`` with ``s = int(H / 8 + 0.5)`` (``W`` likewise); what comes in
  from outside is 0.
* ``cutout``: a square of side ``int(H / 2 + 0.5)`` by ``int(W / 2 + 0.5)``
  whose centre is uniform over the image, clipped at the borders, is set to 0.

0 is the *middle* of the ``[-1, 1]`` range (mid grey), exactly as in the
reference. Outputs are not clamped: colour can leave ``[-1, 1]``.

Every random draw uses ``torch.rand`` / ``torch.randint`` with the given
``generator`` on ``x.device``, in the reference's order, so with
``generator=None`` the result is reproducible from the global RNG state.

Conditional D (the image-to-image tasks): ``groups`` splits the channels into
images that take the *same* transform, e.g. an image and the condition it is
judged with (:func:`augment_pairs`). The draws are per sample, whatever C, so
one call gives every group the same shifts, cut-out and jitter; only the colour
statistics (saturation's channel mean, contrast's mean) are taken per group, so
each group is transformed exactly as if it were augmented alone with the same
draws.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from gancli.augment.spec import AUGMENT_POLICIES


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U(0, 1) draw per image, shaped ``(N, 1, 1, 1)`` to broadcast over x."""
    return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def _offsets(x: torch.Tensor, low: int, high: int, generator: torch.Generator | None) -> torch.Tensor:
    """One integer per image, uniform in ``[low, high)``, shaped ``(N, 1, 1)``."""
    return torch.randint(low, high, (x.size(0), 1, 1), device=x.device, generator=generator)


def _group_mean(x: torch.Tensor, dims: tuple[int, ...], groups: tuple[int, ...] | None) -> torch.Tensor:
    """``x.mean(dims, keepdim=True)``; with ``groups``, each channel group's own mean, broadcast
    over its channels (``(N, C, 1 or H, 1 or W)``)."""
    if groups is None:
        return x.mean(dim=dims, keepdim=True)
    return torch.cat([part.mean(dim=dims, keepdim=True).expand(-1, part.shape[1], -1, -1)
                      for part in x.split(list(groups), dim=1)], dim=1)


def _color(x: torch.Tensor, generator: torch.Generator | None, groups: tuple[int, ...] | None = None) -> torch.Tensor:
    x = x + (_uniform(x, generator) - 0.5)  # brightness
    mean = _group_mean(x, (1,), groups)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean  # saturation
    mean = _group_mean(x, (1, 2, 3), groups)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _offsets(x, -shift_h, shift_h + 1, generator)
    dx = _offsets(x, -shift_w, shift_w + 1, generator)
    # Output pixel (i, j) reads input (i + dy, j + dx); indices that fall
    # outside land on (are clamped to) the one-pixel zero border of x_pad.
    rows = torch.clamp(torch.arange(h, device=x.device).view(1, h, 1) + dy + 1, 0, h + 1)
    cols = torch.clamp(torch.arange(w, device=x.device).view(1, 1, w) + dx + 1, 0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    x_pad = F.pad(x, [1, 1, 1, 1])
    return x_pad.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    _, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _offsets(x, 0, h + (1 - size_h % 2), generator)
    cx = _offsets(x, 0, w + (1 - size_w % 2), generator)
    top, left = cy - size_h // 2, cx - size_w // 2  # may be < 0: clipped below
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    mask = (~inside).to(x.dtype)
    return x * mask.unsqueeze(1)


_AUGMENT_FNS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(
    x: torch.Tensor, policies: tuple[str, ...], generator: torch.Generator | None = None,
    groups: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Apply DiffAugment (Zhao et al. 2020, arXiv 2006.10738) to a batch.

    Each image gets its own random parameters; the policies run in the order
    given. Differentiable w.r.t. ``x`` (cut-out and padded pixels get zero
    gradient).

    Args:
        x: ``(N, C, H, W)`` float images in ``[-1, 1]``, any C (C = 1 and C = 3
            are the usual ones).
        policies: names from :data:`AUGMENT_POLICIES` (see
            :func:`~gancli.augment.spec.parse_augment`); ``()`` = off.
        generator: RNG for every draw, on ``x.device``; ``None`` = the global
            RNG of that device.
        groups: channel counts summing to C: groups of channels that are
            images of their own, given the same transform (see the module
            doc); ``None`` = one image of C channels.

    Returns:
        ``(N, C, H, W)`` tensor of ``x``'s dtype and device, roughly in
        ``[-1, 1]`` (colour jitter can leave it; nothing is clamped). With
        ``policies == ()`` it is ``x`` itself.

    Raises:
        ValueError: if ``x`` is not 4-D, a policy is unknown or ``groups`` do
            not sum to C.
    """
    if not policies:
        return x
    if x.dim() != 4:
        raise ValueError(f"diff_augment expects (N, C, H, W) images, got shape {tuple(x.shape)}")
    for name in policies:
        if name not in _AUGMENT_FNS:
            raise ValueError(f"unknown augmentation policy {name!r}; valid: {', '.join(AUGMENT_POLICIES)}")
    if groups is not None and (sum(groups) != x.shape[1] or min(groups, default=0) < 1):
        raise ValueError(f"groups {tuple(groups)} must be channel counts >= 1 summing to C = {x.shape[1]}")
    for name in policies:
        x = _color(x, generator, groups) if name == "color" else _AUGMENT_FNS[name](x, generator)
    return x.contiguous()


class DiffAugment(torch.nn.Module):
    """:func:`diff_augment` as a module with fixed policies (no parameters).

    Args:
        policies: names from :data:`AUGMENT_POLICIES`; ``()`` = identity.
    """

    def __init__(self, policies: tuple[str, ...] = ()):
        super().__init__()
        unknown = [p for p in policies if p not in AUGMENT_POLICIES]
        if unknown:
            raise ValueError(f"unknown augmentation policy {unknown[0]!r}; valid: {', '.join(AUGMENT_POLICIES)}")
        self.policies = tuple(policies)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                groups: tuple[int, ...] | None = None) -> torch.Tensor:
        """``(N, C, H, W)`` in ``[-1, 1]`` -> the same shape, augmented; see :func:`diff_augment`."""
        return diff_augment(x, self.policies, generator, groups)

    def extra_repr(self) -> str:
        return f"policies={self.policies}"


def augment_pairs(augment: DiffAugment, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The same random transform on each sample of several aligned batches: a conditional D's
    image and its condition (pix2pix's (output, input) pairs), which must stay aligned.

    One :func:`diff_augment` call on their channel concatenation with one group per batch
    (so the draws, one set per sample, are shared, and colour statistics stay per batch),
    split back. Gradients flow to every input.

    Args:
        augment: the run's :class:`DiffAugment`; no policies = the inputs themselves.
        images: ``(N, C_i, H, W)`` float batches of the same N, H, W (any C_i), roughly in [-1, 1].

    Returns:
        the augmented batches, same shapes, in the order given.
    """
    if not augment.policies:
        return images
    both = augment(torch.cat(images, dim=1), groups=tuple(x.shape[1] for x in images))
    return tuple(both.split([x.shape[1] for x in images], dim=1))

