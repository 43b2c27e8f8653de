"""Adversarial losses on raw discriminator outputs.

All take scores of shape ``(N,)`` (any real value: logits for the BCE family,
critic values otherwise) and return a scalar to *minimise*.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class AdversarialLoss:
    """Interface of an adversarial loss.

    Attributes:
        name: registry name.
        probabilistic: D's output is a logit, so ``sigmoid(score)`` is D's
            probability that the input is real (reported as D(x), D(G(z)));
            otherwise the raw mean score is reported.
    """

    name = ""
    probabilistic = False

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Discriminator (critic) loss, scalar."""
        raise NotImplementedError

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """Generator loss, scalar."""
        raise NotImplementedError

    def report(self, scores: torch.Tensor) -> torch.Tensor:
        """Mean D(.) for logs: a probability in [0, 1] if :attr:`probabilistic`, else the mean score."""
        return torch.sigmoid(scores).mean() if self.probabilistic else scores.mean()


class _BCE(AdversarialLoss):
    probabilistic = True

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """``-log D(x) - log(1 - D(G(z)))``, averaged over the batch.

        ``-log sigmoid(r) = softplus(-r)`` and ``-log(1 - sigmoid(f)) = softplus(f)``
        are used for numerical stability.
        """
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


class NonSaturatingBCE(_BCE):
    """Non-saturating GAN loss (Goodfellow et al. 2014, arXiv 1406.2661, section 3).

    G minimises ``-log D(G(z))`` = ``softplus(-f)``, which keeps strong gradients
    early in training when D rejects fakes confidently.
    """

    name = "bce"

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_scores).mean()


class MinimaxBCE(_BCE):
    """Original minimax GAN loss (Goodfellow et al. 2014, arXiv 1406.2661, eq. 1).

    G minimises ``log(1 - D(G(z)))`` = ``-softplus(f)``. Saturates when D is
    confident; kept for teaching and comparison.
    """

    name = "minimax"

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_scores).mean()


class LeastSquares(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017, arXiv 1611.04076, eq. 2) with the
    0-1 coding ``a = 0`` (fake), ``b = 1`` (real), ``c = 1`` (G's target):

    ``L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]``,
    ``L_G = 1/2 E[(D(G(z)) - c)^2]``.
    """

    name = "lsgan"
    a, b, c = 0.0, 1.0, 1.0

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_scores - self.b) ** 2).mean() + 0.5 * ((fake_scores - self.a) ** 2).mean()

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_scores - self.c) ** 2).mean()


class Wasserstein(AdversarialLoss):
    """Wasserstein GAN critic loss (Arjovsky et al. 2017, arXiv 1701.07875), used
    with the gradient penalty of WGAN-GP (Gulrajani et al. 2017, arXiv 1704.00028):

    ``L_D = E[D(G(z))] - E[D(x)]`` (+ ``lambda * GP``, added by the training loop),
    ``L_G = -E[D(G(z))]``.
    """

    name = "wgan-gp"

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return fake_scores.mean() - real_scores.mean()

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017, arXiv 1705.02894; Miyato et al. 2018, arXiv 1802.05957):

    ``L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``, ``L_G = -E[D(G(z))]``.
    """

    name = "hinge"

    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()
