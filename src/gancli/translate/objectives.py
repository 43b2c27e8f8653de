"""What the image-to-image update step of :class:`~gancli.translate.cyclegan.CycleGANStep`
(unpaired translation; Zhu et al. 2017, arXiv 1703.10593) is built from: the base class
:class:`_Step` (loss, precision, augmentation, regularizers, the D-update count), the L1 term
:func:`l1`, the loss look-up :func:`adversarial_loss` and the update helpers. pix2pix's update
(paired translation and the repair tasks; Isola et al. 2017, arXiv 1611.07004) is the training
loop's own :class:`gancli.engine.steps.TranslateStep`, which writes its losses itself.

The step follows ``optimize_parameters`` of the reference code
(junyanz/pytorch-CycleGAN-and-pix2pix, ``models/cycle_gan_model.py``) and takes everything it
runs built: the networks (:mod:`gancli.translate.networks`), their optimizers and the history
buffers (:class:`~gancli.translate.pool.ImagePool`). The adversarial terms are gancli's
registered losses (:data:`gancli.losses.LOSSES`: ``bce``, ``lsgan``, ``hinge``...), applied to
every patch score of a PatchGAN (the scores are flattened, so each patch counts as one sample,
as the reference's ``MSELoss`` over the score map).

What a :class:`_Step` guarantees:

- **Randomness**: the step draws nothing from the global RNG itself. The history buffers
  draw from the ``torch.Generator`` handed to :class:`~gancli.translate.cyclegan.CycleGANStep`.
  What the modules do is theirs: dropout and an ``augment`` called without a bound generator
  use the global RNG, as in ``gan train``; seed the global RNG for bitwise repeats.
- **Mixed precision**: ``autocast_dtype`` (``torch.bfloat16``, ``torch.float16``; None = fp32)
  runs the forwards under ``torch.autocast`` on the inputs' device; scores and L1 terms are
  taken in float32. ``scaler_g`` / ``scaler_d`` (``torch.amp.GradScaler``, needed for fp16) scale
  the losses; None = plain ``backward()`` and ``optimizer.step()``.
- **Augmentation**: ``augment`` (e.g. :class:`~gancli.augment.diffaug.DiffAugment`; DiffAugment,
  Zhao et al. 2020, arXiv 2006.10738) maps ``(N, C, H, W)`` to the same shape and is applied to
  every image D sees, real and fake, in D's update and in G's (G's gradient flows through it).
- **Regularizers**: ``adv_loss`` may be a :class:`~gancli.losses.objective.Objective` (an
  adversarial loss with its gradient penalty / R1, built from a run's ``LossConfig``); its
  :meth:`~gancli.losses.objective.Objective.regularize` is then added to each D loss, counted in
  D updates (:attr:`_Step.d_updates`, kept in the step's ``state_dict``). The penalties draw from
  the global RNG (the gradient penalty's mixing weights), as in ``gan train``. A loss *name* gets
  no penalty: ``wgan-gp`` by name is the bare Wasserstein loss.
- **Modes**: the step does not switch ``train()`` / ``eval()``; the caller puts the networks in
  training mode. While G is updated the discriminators' parameters are frozen
  (``requires_grad`` off, restored afterwards: :func:`_frozen`), so no gradient reaches them.
- **Resume**: ``state_dict`` / ``load_state_dict`` hold what a step owns beyond the networks and
  optimizers (CycleGAN's buffers and the buffers' generator state; the D-update count), so a run
  saved between two steps continues bitwise as if uninterrupted (on the CPU).

Returned statistics are detached 0-d float32 tensors (``float(v)`` to read them): no host sync
per step. Import cost: torch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from gancli.engine.precision import autocast
from gancli.losses import build_loss

__all__ = ["Augment", "adversarial_loss", "l1"]

Augment = Callable[[torch.Tensor], torch.Tensor]


def adversarial_loss(adv_loss: Any) -> Any:
    """The loss object of ``adv_loss``: a registered name (built by
    :func:`gancli.losses.build_loss`) or an object with ``d_loss``, ``g_loss`` and ``report``
    (an :class:`~gancli.losses.adversarial.AdversarialLoss` or an
    :class:`~gancli.losses.objective.Objective`), returned as is.

    Raises:
        UnknownNameError: an unregistered name (the message lists the valid ones).
        TypeError: anything else.
    """
    if isinstance(adv_loss, str):
        return build_loss(adv_loss)
    if all(callable(getattr(adv_loss, m, None)) for m in ("d_loss", "g_loss", "report")):
        return adv_loss
    raise TypeError(f"adv_loss must be a registered loss name or a loss object (d_loss, g_loss, report), "
                    f"got {type(adv_loss).__name__}")


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of ``output`` and ``target`` (same shape), in float32: a scalar in
    the images' units (``[-1, 1]`` images: in [0, 2])."""
    return (output.float() - target.float()).abs().mean()


def _check_weight(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_batch(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be (N, C, H, W) float images in [-1, 1], got {shape}")


@contextlib.contextmanager
def _frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """``requires_grad`` off on the parameters of ``modules`` inside the block, each restored to
    what it was on exit (a parameter frozen before stays frozen)."""
    params = [p for m in modules for p in m.parameters()]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)


def _update(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Zero ``opt``'s gradients, backpropagate ``loss`` (scaled by ``scaler`` when given), step."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


class _Step:
    """The base of an update step: the loss, precision, augmentation and the D-update count."""

    def __init__(self, adv_loss: Any, autocast_dtype: torch.dtype | None, augment: Augment | None,
                 scaler_g: torch.amp.GradScaler | None, scaler_d: torch.amp.GradScaler | None):
        self.loss = adversarial_loss(adv_loss)
        self.autocast_dtype = autocast_dtype
        self.augment = augment
        self.scaler_g, self.scaler_d = scaler_g, scaler_d
        #: D updates made so far (each step makes one, or none when D is off); the lazy R1 interval counts these
        self.d_updates = 0

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def _scores(self, scores: torch.Tensor) -> torch.Tensor:
        """D's output of any shape (a PatchGAN's ``(N, 1, h, w)``) -> every score, float32, flat."""
        return scores.float().flatten()

    def _regularize(self, loss_d: torch.Tensor, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                    fake: torch.Tensor, stats: dict[str, torch.Tensor], suffix: str = "") -> torch.Tensor:
        """``loss_d`` plus the penalties of an Objective ``adv_loss`` (none for a bare loss)."""
        regularize = getattr(self.loss, "regularize", None)
        if regularize is None:
            return loss_d
        own: dict[str, torch.Tensor] = {}
        with autocast(real.device, self.autocast_dtype, penalty=True):
            loss_d = regularize(loss_d, critic, real, fake, self.d_updates, own)
        stats.update({k + suffix: v for k, v in own.items()})
        return loss_d
