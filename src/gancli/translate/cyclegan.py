"""CycleGAN's update step (Zhu et al. 2017, arXiv 1703.10593): :class:`CycleGANStep`, run by the
training loop's :class:`gancli.engine.steps.CycleGANTrainStep` (``--task unpaired``). Its base
and helpers, and what it guarantees (randomness, mixed precision, augmentation, regularizers,
resume), are in :mod:`gancli.translate.objectives`. Import cost: torch.
"""

from __future__ import annotations

from typing import Any

import torch

from gancli.engine.precision import autocast
from gancli.translate.objectives import Augment, _check_batch, _check_weight, _frozen, _Step, _update, l1
from gancli.translate.pool import ImagePool


class CycleGANStep(_Step):
    """One CycleGAN update (Zhu et al. 2017, arXiv 1703.10593, eq. 3 and section 4): both
    generators, then both discriminators.

    Naming: ``G_ab`` maps domain A to B and ``G_ba`` B to A; ``D_a`` judges domain A images
    (real A against ``G_ba(b)``) and ``D_b`` domain B images; ``pool_a`` / ``pool_b`` keep fakes
    of A / of B. (The reference calls ``G_ab`` "G_A", ``G_ba`` "G_B", but ``D_A`` is its judge of
    domain B: here each D is named by the domain it judges.)

    G update (D_a and D_b frozen): ``fake_b = G_ab(a)``, ``rec_a = G_ba(fake_b)``,
    ``fake_a = G_ba(b)``, ``rec_b = G_ab(fake_a)``, and G's loss is

    ``adv_weight * (g_loss(D_b(fake_b)) + g_loss(D_a(fake_a)))``
    ``+ cycle_weight * (L1(rec_a, a) + L1(rec_b, b))``
    ``+ cycle_weight * identity_weight * (L1(G_ba(a), a) + L1(G_ab(b), b))``,

    the identity term (the reference's ``lambda_identity``, scaled by the cycle weight as its
    code does; section 5.2 of the paper) only when A and B images have the same channel count
    (otherwise G_ab cannot take a B image) and ``identity_weight > 0``. One ``opt_g`` steps both
    generators. D update: ``pool_b.query(fake_b)`` then ``pool_a.query(fake_a)`` (that order, as
    the reference's D_A then D_B, both from ``generator``), each D's loss
    ``d_loss(D(real), D(pooled fake))`` (real first, then fake, two forwards), one ``opt_d`` step
    over the sum. The fakes go to the pools in float32 (the pool's content does not depend on
    ``autocast_dtype``).

    Scale: the registry's ``lsgan`` is Mao et al.'s, with 1/2 in front of each squared error;
    its D loss equals the reference's ``0.5 * (MSE(D(real), 1) + MSE(D(fake), 0))`` exactly,
    but its G loss is half the reference's ``MSE(D(G(x)), 1)`` (and the paper's eq. 1 in its
    least-squares form). ``adv_weight=2.0`` reproduces the reference's balance of the
    adversarial and cycle terms exactly; the default 1.0 weighs the cycle term twice as much.

    Args:
        G_ab, G_ba: ``(N, C_a, H, W) -> (N, C_b, H, W)`` and back, in [-1, 1]
            (:class:`~gancli.translate.networks.ResnetGenerator`).
        D_a, D_b: ``(N, C_a, H, W)`` / ``(N, C_b, H, W)`` -> scores of any shape (PatchGANs).
        opt_g: one optimizer over both generators' parameters; opt_d: one over both
            discriminators' (CycleGAN: Adam 2e-4, betas 0.5, 0.999).
        pool_a, pool_b: history buffers of fake A and fake B images (CycleGAN: 50 each;
            ``ImagePool(0)`` = off).
        generator: the ``torch.Generator`` of the pools' draws (on any device); the step owns
            its state from now on (saved by :meth:`state_dict`).
        adv_loss: a registered loss name (default ``lsgan``, CycleGAN's) or a loss object, see
            :func:`adversarial_loss`.
        cycle_weight: lambda of each cycle-consistency L1, >= 0 (CycleGAN: 10).
        identity_weight: the identity L1's weight as a fraction of ``cycle_weight``, >= 0
            (CycleGAN: 0.5); 0 = off.
        adv_weight: weight of G's two adversarial terms, > 0 (see Scale above).
        autocast_dtype, augment, scaler_g, scaler_d: see :mod:`gancli.translate.objectives`
            (``augment`` on each image D sees).

    Raises:
        ValueError: a negative or non-finite weight, ``adv_weight`` 0, or pools that are not
            :class:`~gancli.translate.pool.ImagePool`.
        UnknownNameError: an unregistered loss name.
    """

    def __init__(self, G_ab: torch.nn.Module, G_ba: torch.nn.Module, D_a: torch.nn.Module, D_b: torch.nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, pool_a: ImagePool, pool_b: ImagePool,
                 generator: torch.Generator, adv_loss: Any = "lsgan", cycle_weight: float = 10.0,
                 identity_weight: float = 0.5, *, adv_weight: float = 1.0, autocast_dtype: torch.dtype | None = None,
                 augment: Augment | None = None, scaler_g: torch.amp.GradScaler | None = None,
                 scaler_d: torch.amp.GradScaler | None = None):
        self.cycle_weight = _check_weight("cycle_weight", cycle_weight)
        self.identity_weight = _check_weight("identity_weight", identity_weight)
        self.adv_weight = _check_weight("adv_weight", adv_weight)
        if not self.adv_weight:
            raise ValueError("adv_weight must be > 0 for CycleGAN (its only link between the domains), got 0")
        for name, pool in (("pool_a", pool_a), ("pool_b", pool_b)):
            if not isinstance(pool, ImagePool):
                raise ValueError(f"{name} must be a gancli.translate.pool.ImagePool, got {type(pool).__name__}")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        super().__init__(adv_loss, autocast_dtype, augment, scaler_g, scaler_d)
        self.G_ab, self.G_ba, self.D_a, self.D_b = G_ab, G_ba, D_a, D_b
        self.opt_g, self.opt_d = opt_g, opt_d
        self.pool_a, self.pool_b = pool_a, pool_b
        self.generator = generator

    def uses_identity(self, channels_a: int, channels_b: int) -> bool:
        """Whether the identity term is on for A images of ``channels_a`` and B of ``channels_b``
        channels: ``identity_weight > 0`` and the counts are equal."""
        return self.identity_weight > 0 and channels_a == channels_b

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update (both generators), then one D update (both discriminators).

        Args:
            real_a: ``(N, C_a, H, W)`` float in [-1, 1], a batch of domain A (CycleGAN: N = 1).
            real_b: ``(M, C_b, H', W')`` float in [-1, 1], a batch of domain B (unpaired: any
                images; N = M in the usual setting).

        Returns:
            Detached 0-d float32 tensors: ``loss_g`` (G's total), ``g_adv`` (the two unweighted
            adversarial terms, summed), ``cycle_a`` / ``cycle_b`` (unweighted L1 of
            ``G_ba(G_ab(a))`` to ``a`` and of ``G_ab(G_ba(b))`` to ``b``), ``idt_a`` / ``idt_b``
            (unweighted L1 of ``G_ba(a)`` to ``a``, ``G_ab(b)`` to ``b``; only when the identity
            term is on), ``loss_d`` (``loss_d_a + loss_d_b``, with penalties), ``loss_d_a``,
            ``loss_d_b``, ``d_real`` / ``d_fake`` (mean D on real and on pooled fake images over
            both discriminators: probabilities for BCE losses, raw scores otherwise), and
            ``gp_a`` ... ``r1_b`` when an Objective adds penalties.

        Raises:
            ValueError: inputs that are not 4-D float.
        """
        _check_batch("real_a", real_a)
        _check_batch("real_b", real_b)
        device, amp = real_a.device, self.autocast_dtype
        stats: dict[str, torch.Tensor] = {}
        identity = self.uses_identity(real_a.shape[1], real_b.shape[1])

        with _frozen(self.D_a, self.D_b):
            with autocast(device, amp):
                fake_b = self.G_ab(real_a)
                rec_a = self.G_ba(fake_b)
                fake_a = self.G_ba(real_b)
                rec_b = self.G_ab(fake_a)
                if identity:
                    idt_b = self.G_ab(real_b)
                    idt_a = self.G_ba(real_a)
                adv_ab = self.loss.g_loss(self._scores(self.D_b(self._aug(fake_b))))
                adv_ba = self.loss.g_loss(self._scores(self.D_a(self._aug(fake_a))))
            cycle_a, cycle_b = l1(rec_a, real_a), l1(rec_b, real_b)
            g_adv = adv_ab + adv_ba
            loss_g = self.adv_weight * g_adv + self.cycle_weight * (cycle_a + cycle_b)
            if identity:
                idt_loss_a, idt_loss_b = l1(idt_a, real_a), l1(idt_b, real_b)
                loss_g = loss_g + self.cycle_weight * self.identity_weight * (idt_loss_a + idt_loss_b)
                stats.update({"idt_a": idt_loss_a.detach(), "idt_b": idt_loss_b.detach()})
            _update(loss_g, self.opt_g, self.scaler_g)

        pooled_b = self.pool_b.query(fake_b.detach().float(), self.generator)
        pooled_a = self.pool_a.query(fake_a.detach().float(), self.generator)
        loss_d = None
        reports_real, reports_fake = [], []
        for name, D, real, pooled in (("b", self.D_b, real_b, pooled_b), ("a", self.D_a, real_a, pooled_a)):
            with autocast(device, amp):
                real_in, fake_in = self._aug(real), self._aug(pooled.to(real.dtype))
                real_scores = self._scores(D(real_in))
                fake_scores = self._scores(D(fake_in))
                loss = self.loss.d_loss(real_scores, fake_scores)
            loss = self._regularize(loss, D, real_in, fake_in, stats, suffix=f"_{name}")
            stats[f"loss_d_{name}"] = loss.detach()
            reports_real.append(self.loss.report(real_scores.detach()))
            reports_fake.append(self.loss.report(fake_scores.detach()))
            loss_d = loss if loss_d is None else loss_d + loss
        _update(loss_d, self.opt_d, self.scaler_d)
        self.d_updates += 1
        stats.update({
            "loss_g": loss_g.detach(), "g_adv": g_adv.detach(), "cycle_a": cycle_a.detach(),
            "cycle_b": cycle_b.detach(), "loss_d": loss_d.detach(),
            "d_real": torch.stack(reports_real).mean(), "d_fake": torch.stack(reports_fake).mean(),
        })
        return stats

    def state_dict(self) -> dict[str, Any]:
        """What the step owns beyond the networks and optimizers: ``{"pool_a": ..., "pool_b": ...}``
        (:meth:`ImagePool.state_dict`, copies), ``"generator"`` (the pools' generator state, a
        uint8 CPU tensor) and ``"d_updates"`` (int)."""
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict(),
                "generator": self.generator.get_state(), "d_updates": self.d_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the pools, the generator's state and the D-update count from :meth:`state_dict`.

        Raises:
            ValueError: a state missing a key, or a pool state that does not fit its pool.
        """
        missing = [k for k in ("pool_a", "pool_b", "generator", "d_updates") if k not in state]
        if missing:
            raise ValueError(f"bad CycleGAN step state: missing {', '.join(missing)}")
        if not isinstance(state["d_updates"], int) or state["d_updates"] < 0:
            raise ValueError(f"bad CycleGAN step state: d_updates {state['d_updates']!r}, expected an int >= 0")
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
        self.generator.set_state(state["generator"])
        self.d_updates = state["d_updates"]
