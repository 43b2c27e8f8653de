"""Adversarial losses on raw discriminator outputs (logits).

All take logits of shape ``(N,)`` (any real value) and return a scalar to
*minimise*. ``D(x) = sigmoid(logit)`` is the discriminator's probability that
``x`` is real.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class AdversarialLoss:
    """Interface of an adversarial loss.

    Attributes:
        name: registry name.
    """

    name = ""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss, scalar."""
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Generator loss, scalar."""
        raise NotImplementedError


class _BCE(AdversarialLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """``-log D(x) - log(1 - D(G(z)))``, averaged over the batch.

        ``-log sigmoid(r) = softplus(-r)`` and ``-log(1 - sigmoid(f)) = softplus(f)``
        are used for numerical stability.
        """
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


class NonSaturatingBCE(_BCE):
    """Non-saturating GAN loss (Goodfellow et al. 2014, arXiv 1406.2661, section 3).

    G minimises ``-log D(G(z))`` = ``softplus(-f)``, which keeps strong gradients
    early in training when D rejects fakes confidently.
    """

    name = "bce"

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class MinimaxBCE(_BCE):
    """Original minimax GAN loss (Goodfellow et al. 2014, arXiv 1406.2661, eq. 1).

    G minimises ``log(1 - D(G(z)))`` = ``-softplus(f)``. Saturates when D is
    confident; kept for teaching and comparison.
    """

    name = "minimax"

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()
