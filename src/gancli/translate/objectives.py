"""The update steps of the two image-to-image families, one call per training step:
:class:`Pix2PixStep` here (paired translation and the repair tasks; Isola et al. 2017, arXiv
1611.07004) and :class:`~gancli.translate.cyclegan.CycleGANStep` (unpaired translation; Zhu et
al. 2017, arXiv 1703.10593), which shares this module's helpers.

Both follow ``optimize_parameters`` of the reference code (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/pix2pix_model.py`` and ``models/cycle_gan_model.py``) and take everything they run
built: the networks (:mod:`gancli.translate.networks`), their optimizers and, for CycleGAN, the
history buffers (:class:`~gancli.translate.pool.ImagePool`). The adversarial terms are
gancli's registered losses (:data:`gancli.losses.LOSSES`: ``bce``, ``lsgan``, ``hinge``...),
applied to every patch score of a PatchGAN (the scores are flattened, so each patch counts as
one sample, as the reference's ``BCEWithLogitsLoss`` / ``MSELoss`` over the score map).

Common to both:

- **Randomness**: the steps draw nothing from the global RNG themselves. The history buffers
  draw from the ``torch.Generator`` handed to :class:`CycleGANStep`. What the modules do is
  theirs: the U-Net's dropout (:class:`~gancli.models.layers.Dropout`) and an ``augment``
  called without a bound generator use the global RNG, as in ``gan train``; pass G with
  ``dropout=False`` or seed the global RNG for bitwise repeats.
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
  D updates (:attr:`d_updates`, kept in :meth:`state_dict`). The penalties draw from the global
  RNG (the gradient penalty's mixing weights), as in ``gan train``. A loss *name* gets no penalty:
  ``wgan-gp`` by name is the bare Wasserstein loss.
- **Modes**: the steps do not switch ``train()`` / ``eval()``; the caller puts the networks in
  training mode. While G is updated the discriminators' parameters are frozen
  (``requires_grad`` off, restored afterwards), so no gradient reaches them.
- **Resume**: :meth:`state_dict` / :meth:`load_state_dict` hold what a step owns beyond the
  networks and optimizers (CycleGAN's buffers and the buffers' generator state; the D-update
  count), so a run saved between two steps continues bitwise as if uninterrupted (on the CPU).

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
from gancli.translate.corrupt import keep_known

__all__ = ["Augment", "Pix2PixStep", "adversarial_loss", "l1"]

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
    """What both steps share: the loss, precision, augmentation and the D-update count."""

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


class Pix2PixStep(_Step):
    """One pix2pix update (Isola et al. 2017, arXiv 1611.07004, eq. 4): D, then G.

    D scores (condition, image) pairs: it is updated to tell ``(x, y)`` from ``(x, G(x))``
    (the fake detached); then G minimises
    ``adv_weight * adversarial(D(x, G(x))) + l1_weight * L1(G(x), y)``, through the just
    updated D, frozen. As the reference, D sees the fake pair first, then the real one, in two
    forwards (BatchNorm statistics per pair kind).

    D's loss is the registered loss's ``d_loss`` as is; the reference halves pix2pix's D loss,
    a constant factor that Adam (pix2pix's optimizer) cancels up to its epsilon, and the
    logged ``loss_d`` stays the registry's figure.

    **L1-only baseline**: with ``adv_weight=0`` D is not used at all: no forward (its BatchNorm
    statistics stay), no update (``opt_d`` is never stepped, its state stays empty), and G's
    update is a plain ``l1_weight * L1`` step: the U-Net regression baseline the issue compares
    the adversarial term with.

    **Inpainting**: with a ``mask`` (1 = hole), G's output is composited with
    :func:`~gancli.translate.corrupt.keep_known` (the target's pixels outside the holes, G's
    inside): what D sees and what L1 compares. L1 is then the mean over *all*
    pixels, zero outside the holes (so its scale follows the hole fraction).

    Augmentation: ``augment`` is applied to each pair concatenated on channels (condition first)
    and split back, so geometric transforms move condition and image together; DiffAugment's
    colour transforms then mix over all channels of the pair.

    Args:
        G: ``(N, C_in, H, W) -> (N, C, H, W)`` in [-1, 1] (a :class:`~gancli.translate.networks.UNetGenerator`).
        D: called as ``D(images (N, C, H, W), condition (N, C_in, H, W))`` -> scores of any shape
            (a :class:`~gancli.translate.networks.PatchDiscriminator` of ``C_in + C`` channels).
        opt_g, opt_d: optimizers over G's and D's parameters (pix2pix: Adam 2e-4, betas 0.5, 0.999).
        adv_loss: a registered loss name (default ``bce``, pix2pix's) or a loss object, see
            :func:`adversarial_loss` (an Objective adds its penalties).
        l1_weight: lambda of the L1 term, >= 0 (pix2pix: 100); 0 = no L1.
        adv_weight: weight of G's adversarial term, >= 0; 0 = the L1-only baseline (D off, see above).
        autocast_dtype: forwards under autocast to this dtype; None = float32.
        augment: ``(N, C, H, W) -> (N, C, H, W)`` on D's inputs; None = none.
        scaler_g, scaler_d: ``torch.amp.GradScaler`` of each update (fp16); None = no loss scaling.

    Raises:
        ValueError: a negative or non-finite weight, or both weights 0.
        UnknownNameError: an unregistered loss name.
    """

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, adv_loss: Any = "bce", l1_weight: float = 100.0,
                 adv_weight: float = 1.0, *, autocast_dtype: torch.dtype | None = None, augment: Augment | None = None,
                 scaler_g: torch.amp.GradScaler | None = None, scaler_d: torch.amp.GradScaler | None = None):
        self.l1_weight = _check_weight("l1_weight", l1_weight)
        self.adv_weight = _check_weight("adv_weight", adv_weight)
        if not (self.l1_weight or self.adv_weight):
            raise ValueError("l1_weight and adv_weight are both 0: G would have no loss; set either above 0")
        super().__init__(adv_loss, autocast_dtype, augment, scaler_g, scaler_d)
        self.G, self.D, self.opt_g, self.opt_d = G, D, opt_g, opt_d

    @property
    def uses_d(self) -> bool:
        """False for the L1-only baseline (``adv_weight == 0``): D is neither run nor updated."""
        return self.adv_weight > 0

    def _pair(self, condition: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, condition)`` as D takes them, augmented together when ``augment`` is set."""
        if self.augment is None:
            return images, condition
        c = condition.shape[1]
        both = self.augment(torch.cat([condition, images.to(condition.dtype)], 1))
        return both[:, c:], both[:, :c]

    def step(self, condition: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One D update (unless ``adv_weight == 0``), then one G update.

        Args:
            condition: ``(N, C_in, H, W)`` float in [-1, 1], G's input (e.g. the damaged image and
                the mask channel, the low-resolution image upsampled, the A image of a pair).
            target: ``(N, C, H, W)`` float in [-1, 1], the image G should produce.
            mask: ``(N, 1, H, W)`` or ``(N, C, H, W)`` {0, 1}, 1 = hole (inpainting); None = G's
                whole output is used.

        Returns:
            Detached 0-d float32 tensors: ``loss_g`` (G's total loss), ``l1`` (unweighted L1 of
            the output used, [-1, 1] units), ``g_adv`` (unweighted adversarial term); with D on,
            also ``loss_d`` (with penalties), ``d_real`` / ``d_fake`` (mean D on real and fake pairs
            before D's update: probabilities for BCE losses, raw scores otherwise) and ``gp`` /
            ``r1`` when the Objective adds them. With ``adv_weight == 0``: ``loss_g`` and ``l1`` only.

        Raises:
            ValueError: inputs that are not 4-D float, or of different N, H, W, or a mask of
                another shape.
        """
        _check_batch("condition", condition)
        _check_batch("target", target)
        n, c, h, w = target.shape
        if (condition.shape[0], *condition.shape[2:]) != (n, h, w):
            raise ValueError(f"condition {tuple(condition.shape)} and target {tuple(target.shape)} differ in N, H or W")
        if mask is not None and (mask.dim() != 4 or mask.shape[0] != n or mask.shape[1] not in (1, c)
                                 or tuple(mask.shape[2:]) != (h, w)):
            raise ValueError(f"mask must be (N, 1, H, W) or (N, C, H, W) = ({n}, 1 or {c}, {h}, {w}), "
                             f"got {tuple(mask.shape)}")
        device = target.device
        stats: dict[str, torch.Tensor] = {}
        with autocast(device, self.autocast_dtype):
            fake = self.G(condition)
        if mask is not None:
            fake = keep_known(fake, target, mask)

        if self.uses_d:
            with autocast(device, self.autocast_dtype):
                fake_in, fake_cond = self._pair(condition, fake.detach())
                fake_scores = self._scores(self.D(fake_in, fake_cond))
                real_in, real_cond = self._pair(condition, target)
                real_scores = self._scores(self.D(real_in, real_cond))
                loss_d = self.loss.d_loss(real_scores, fake_scores)
            # the penalties score real, fake and mixed images under the real pair's condition
            loss_d = self._regularize(loss_d, lambda x: self.D(x, real_cond), real_in, fake_in, stats)
            _update(loss_d, self.opt_d, self.scaler_d)
            self.d_updates += 1
            stats.update({"loss_d": loss_d.detach(), "d_real": self.loss.report(real_scores.detach()),
                          "d_fake": self.loss.report(fake_scores.detach())})

        with _frozen(self.D):
            dist = l1(fake, target)
            loss_g = self.l1_weight * dist
            if self.uses_d:
                with autocast(device, self.autocast_dtype):
                    g_adv = self.loss.g_loss(self._scores(self.D(*self._pair(condition, fake))))
                loss_g = loss_g + self.adv_weight * g_adv
                stats["g_adv"] = g_adv.detach()
            _update(loss_g, self.opt_g, self.scaler_g)
        stats.update({"loss_g": loss_g.detach(), "l1": dist.detach()})
        return stats

    def state_dict(self) -> dict[str, Any]:
        """``{"d_updates": int}``: all the step owns beyond G, D and their optimizers."""
        return {"d_updates": self.d_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        Raises:
            ValueError: a state without ``d_updates`` or with a negative count.
        """
        d_updates = state.get("d_updates") if isinstance(state, dict) else None
        if not isinstance(d_updates, int) or d_updates < 0:
            raise ValueError(f"bad pix2pix step state {state!r}: expected {{'d_updates': int >= 0}}")
        self.d_updates = d_updates

