"""Discriminator regularizers that need gradients w.r.t. D's input.

Both are safe under autocast: the scores are summed in float32, the input
gradient is taken of the sum times ``grad_scale`` (the fp16 GradScaler's scale,
so small gradients do not underflow in fp16; PyTorch AMP recipe "gradient
penalty") and divided by it again, and the norms are computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None, grad_scale: float = 1.0) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv 1704.00028, eq. 3), without lambda:
    ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at ``x_hat = eps * x + (1 - eps) * x_fake``.

    Args:
        critic: maps ``(N, C, H, W)`` to scores ``(N,)`` (bind labels beforehand).
        real, fake: ``(N, C, H, W)`` batches (fake detached from G).
        eps: ``(N, 1, 1, 1)`` mixing weights in [0, 1]; default ``U[0, 1)`` from the
            global RNG on the batch's device.
        grad_scale: loss scale of fp16 training (see the module docstring); 1 = none.

    Returns:
        Scalar >= 0 (float32), differentiable w.r.t. the critic's parameters.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = _input_grad(critic, x_hat, grad_scale)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
               grad_scale: float = 1.0) -> torch.Tensor:
    """R1 penalty (Mescheder et al. 2018, arXiv 1801.04406, eq. 9), without gamma/2:
    ``E[||grad_x D(x)||_2^2]`` on real data.

    Args:
        critic: maps ``(N, C, H, W)`` to scores ``(N,)``.
        real: ``(N, C, H, W)`` real batch.
        grad_scale: loss scale of fp16 training (see the module docstring); 1 = none.

    Returns:
        Scalar >= 0 (float32), differentiable w.r.t. the critic's parameters.
    """
    x = real.detach().requires_grad_(True)
    grad = _input_grad(critic, x, grad_scale)
    return grad.flatten(1).pow(2).sum(1).mean()


def _input_grad(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad_scale: float) -> torch.Tensor:
    """``d sum(critic(x)) / dx`` in float32, with the graph kept for the second backward."""
    total = critic(x).float().sum()
    if grad_scale != 1.0:
        total = total * grad_scale
    (grad,) = torch.autograd.grad(total, x, create_graph=True)
    grad = grad.float()
    return grad / grad_scale if grad_scale != 1.0 else grad
