"""Discriminator regularizers that need gradients w.r.t. D's input.

Both may run under bf16 autocast: the scores are summed and the input gradient
and its norm are taken in float32 (bf16 has float32's range). fp16 has not: a
penalty's double backward overflows or underflows there, so the trainer runs
them with autocast off under ``--precision fp16``.
"""

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
        Scalar >= 0 (float32), differentiable w.r.t. the critic's parameters.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = _input_grad(critic, x_hat)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 penalty (Mescheder et al. 2018, arXiv 1801.04406, eq. 9), without gamma/2:
    ``E[||grad_x D(x)||_2^2]`` on real data.

    Args:
        critic: maps ``(N, C, H, W)`` to scores ``(N,)``.
        real: ``(N, C, H, W)`` real batch.

    Returns:
        Scalar >= 0 (float32), differentiable w.r.t. the critic's parameters.
    """
    x = real.detach().requires_grad_(True)
    grad = _input_grad(critic, x)
    return grad.flatten(1).pow(2).sum(1).mean()


def _input_grad(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``d sum(critic(x)) / dx`` in float32, with the graph kept for the second backward."""
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad.float()
