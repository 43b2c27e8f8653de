"""The training objective: an adversarial loss and the discriminator regularizers it owns.

:class:`Objective` is what the training loop calls: ``d_loss`` / ``g_loss`` of the
registered adversarial loss, plus :meth:`Objective.regularize`, which adds the
WGAN-GP gradient penalty and the (lazy) R1 penalty to D's loss as ``--gp-lambda``,
``--r1-gamma`` and ``--r1-every`` say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gancli.losses import build_loss
from gancli.losses.regularizers import gradient_penalty, r1_penalty

if TYPE_CHECKING:
    import torch

    from gancli.config import LossConfig


class Objective:
    """An adversarial loss with its regularizers.

    Args:
        cfg: the run's :class:`~gancli.config.LossConfig`: ``name`` (registered loss),
            ``gp_lambda`` (0 = no gradient penalty), ``r1_gamma`` (0 = no R1) and
            ``r1_every`` (lazy R1 interval in D updates, arXiv 1912.04958).
    """

    def __init__(self, cfg: LossConfig):
        self.cfg = cfg
        self.adversarial = build_loss(cfg.name)

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """D's adversarial loss on scores ``(N,)``, scalar (without penalties)."""
        return self.adversarial.d_loss(real_scores, fake_scores)

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss on D's scores of fakes ``(N,)``, scalar."""
        return self.adversarial.g_loss(fake_scores)

    def report(self, scores: torch.Tensor) -> torch.Tensor:
        """Mean D(.) for logs (a probability for BCE losses, else the mean score)."""
        return self.adversarial.report(scores)

    def regularize(self, loss_d: torch.Tensor, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                   fake: torch.Tensor, d_update: int, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss_d`` plus ``gp_lambda * GP`` (Gulrajani et al. 2017, arXiv 1704.00028) and, on
        every ``r1_every``-th D update (0-based ``d_update``), ``gamma / 2 * r1_every * R1``
        (Mescheder et al. 2018, arXiv 1801.04406). The detached penalties go into
        ``stats["gp"]`` / ``stats["r1"]``.

        Args:
            critic: D with its labels bound: ``(N, C, H, W)`` -> scores ``(N,)``.
            real, fake: D's (augmented) inputs, ``(N, C, H, W)``.
        """
        c = self.cfg
        if c.gp_lambda:
            gp = gradient_penalty(critic, real, fake)
            loss_d = loss_d + c.gp_lambda * gp
            stats["gp"] = gp.detach()
        if c.r1_gamma and d_update % c.r1_every == 0:
            r1 = r1_penalty(critic, real)
            loss_d = loss_d + (c.r1_gamma / 2) * c.r1_every * r1
            stats["r1"] = r1.detach()
        return loss_d
