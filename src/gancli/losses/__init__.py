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


def build_loss(name: str) -> AdversarialLoss:
    """The loss registered as ``name``. Raises UnknownNameError listing the valid names."""
    return LOSSES.get(name)()
