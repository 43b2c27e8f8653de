"""Discriminator regularizers that need gradients w.r.t. D's input."""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv 1704.00028, eq. 3), without lambda:
    ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at ``x_hat = eps * x + (1 - eps) * x_fake``.

    Args:
        critic: maps ``(N, C, H, W)`` to scores ``(N,)`` (bind labels beforehand).
        real, fake: ``(N, C, H, W)`` batches (fake detached from G).
        eps: ``(N, 1, 1, 1)`` mixing weights in [0, 1]; default ``U[0, 1)`` from the
            global RNG on the batch's device.

    Returns:
        Scalar >= 0, differentiable w.r.t. the critic's parameters.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 penalty (Mescheder et al. 2018, arXiv 1801.04406, eq. 9), without gamma/2:
    ``E[||grad_x D(x)||_2^2]`` on real data.

    Args:
        critic: maps ``(N, C, H, W)`` to scores ``(N,)``.
        real: ``(N, C, H, W)`` real batch.

    Returns:
        Scalar >= 0, differentiable w.r.t. the critic's parameters.
    """
    x = real.detach().requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
