"""Exponential moving average of the generator's weights."""

from __future__ import annotations

import torch


def ema_beta(decay: float, step: int) -> float:
    """EMA decay at 0-based ``step`` with warm-up: ``min(decay, (1 + step) / (10 + step))``
    (as TensorFlow's ExponentialMovingAverage with num_updates), so early
    averages follow G closely instead of its random initialisation."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update_(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers (BatchNorm
    statistics) are copied. Exponential moving average of G (Karras et al. 2018,
    arXiv 1710.10196; Yazici et al. 2019, arXiv 1806.04498). One multi-tensor
    kernel per list on CUDA (the same values as a per-tensor ``lerp_``)."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - beta)
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))
