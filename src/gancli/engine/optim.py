"""Optimizers and learning-rate schedules, registered by name.

The registries are torch-free (``gan --help`` lists their names without importing
torch); the builders import torch when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gancli.registry import Registry

#: name -> ``builder(params, lr, beta1, beta2, momentum) -> torch.optim.Optimizer``.
OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer")

#: name -> ``factor(t) -> float``: multiplier of the base learning rate at progress ``t`` in [0, 1].
LR_SCHEDULES: Registry[Callable[[float], float]] = Registry("lr schedule")


@OPTIMIZERS.register("adam", "Adam (Kingma & Ba 2014, arXiv 1412.6980), PyTorch's fused kernel where it has one")
def _adam(params, lr: float, beta1: float, beta2: float, momentum: float):
    import torch

    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))


@OPTIMIZERS.register("sgd", "SGD with optional momentum")
def _sgd(params, lr: float, beta1: float, beta2: float, momentum: float):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum)


@OPTIMIZERS.register("rmsprop", "RMSprop (Tieleman & Hinton 2012) with optional momentum")
def _rmsprop(params, lr: float, beta1: float, beta2: float, momentum: float):
    import torch

    return torch.optim.RMSprop(params, lr=lr, momentum=momentum)


@LR_SCHEDULES.register("constant", "the base learning rate throughout")
def _constant(t: float) -> float:
    return 1.0


@LR_SCHEDULES.register("linear", "linear decay from the base rate to 0 at the last step")
def _linear(t: float) -> float:
    return 1.0 - t


@LR_SCHEDULES.register("cosine", "cosine decay 0.5 (1 + cos(pi t)) to 0 (Loshchilov & Hutter 2016, arXiv 1608.03983)")
def _cosine(t: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t))


def build_optimizer(name: str, params, lr: float, beta1: float, beta2: float, momentum: float):
    """The optimizer registered as ``name`` over ``params``.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid ones).
    """
    return OPTIMIZERS.get(name)(params, lr, beta1, beta2, momentum)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at 0-based ``step`` of ``total``:
    ``constant`` 1; ``linear`` 1 -> 0; ``cosine`` 0.5 (1 + cos(pi t)), t = step / total.

    Raises:
        UnknownNameError: unknown schedule.
    """
    return LR_SCHEDULES.get(schedule)(min(step / max(total, 1), 1.0))


def load_optimizer_state(opt, state: dict[str, Any]) -> None:
    """``opt.load_state_dict(state)``, keeping ``opt``'s own implementation choice
    (``fused`` / ``foreach``; the saved state carries the saving optimizer's),
    so a checkpoint of a run without the fused kernel resumes with it and back.
    Per-parameter state tensors take their parameter's memory layout (checkpoints
    store them contiguous; the fused kernel needs channels_last moments for
    channels_last weights)."""
    import torch

    impl = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, kv in zip(opt.param_groups, impl):
        group.update(kv)
        for p in group["params"]:
            st = opt.state.get(p, {})
            for key, value in st.items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
            if kv.get("fused") and isinstance(st.get("step"), torch.Tensor):  # the fused kernel's step count
                st["step"] = st["step"].to(device=p.device, dtype=torch.float32)
