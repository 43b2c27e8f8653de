"""Adversarial losses, registered by name.

Entries are torch-free builders returning a loss object with
``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``; the
implementations (with their papers) live in :mod:`gancli.losses.adversarial`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gancli.registry import Registry

if TYPE_CHECKING:
    from gancli.losses.adversarial import AdversarialLoss

LOSSES: Registry[Callable[[], AdversarialLoss]] = Registry("loss")


@LOSSES.register("bce", "non-saturating BCE: G maximises log D(G(z)) (Goodfellow et al. 2014)")
def _bce() -> AdversarialLoss:
    from gancli.losses.adversarial import NonSaturatingBCE

    return NonSaturatingBCE()


@LOSSES.register("minimax", "original minimax BCE: G minimises log(1 - D(G(z))) (Goodfellow et al. 2014)")
def _minimax() -> AdversarialLoss:
    from gancli.losses.adversarial import MinimaxBCE

    return MinimaxBCE()


@LOSSES.register(
    "lsgan",
    "least squares, a=0 b=c=1 (Mao et al. 2017, arXiv 1611.04076)",
    # d_norm none: with BatchNorm in the DCGAN's D, least squares never taught G a black background on
    # MNIST (digits on grey noise, LeNet reads 1 class at step 1000, FD-LeNet 362 on 10,000 samples; layer
    # norm: 421); without normalisation 36.9 and 10 classes at step 1000 (the BCE default: 80.5), seed 0
    defaults={"d_norm": "none"},
)
def _lsgan() -> AdversarialLoss:
    from gancli.losses.adversarial import LeastSquares

    return LeastSquares()


@LOSSES.register(
    "wgan-gp",
    "Wasserstein critic + gradient penalty (Gulrajani et al. 2017, arXiv 1704.00028)",
    # r1_gamma 0: the gradient penalty (norm 1 between real and fake) is the critic's regularizer; a zero-centred
    # R1 on real data (an architecture's recipe, e.g. mlp's) would pull against it
    defaults={"gp_lambda": 10.0, "d_steps": 5, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9,
              "d_norm": "none", "r1_gamma": 0.0},
)
def _wgan_gp() -> AdversarialLoss:
    from gancli.losses.adversarial import Wasserstein

    return Wasserstein()


@LOSSES.register(
    "hinge",
    "hinge loss (Lim & Ye 2017, arXiv 1705.02894; Miyato et al. 2018)",
    # Adam(beta1 0, beta2 0.99): beta1 0 as SNGAN (arXiv 1802.05957) and BigGAN, beta2 0.99 as StyleGAN2
    # (arXiv 1912.04958). The README job with spectral norm (seed 0, 50,000 samples): FD-LeNet 4.05 after 4685
    # steps, where beta2 0.9 gave 7.59 and Adam(0.5, 0.999) 8.17 (178 and 8 classes at step 1000); with beta2 0.9,
    # lr 1e-4 gave 15.8, a linear lr decay 13.1 and lr_d 4e-4 collapsed (benchmarks/results/hinge-sn-*.json)
    defaults={"beta1": 0.0, "beta2": 0.99},
)
def _hinge() -> AdversarialLoss:
    from gancli.losses.adversarial import Hinge

    return Hinge()


def build_loss(name: str) -> AdversarialLoss:
    """The loss registered as ``name``. Raises UnknownNameError listing the valid names."""
    return LOSSES.get(name)()
