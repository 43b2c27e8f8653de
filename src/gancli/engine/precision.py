"""``--precision``: the autocast dtypes, registered by name, and the check that the
device supports them. The registry is torch-free; the checks import torch."""

from __future__ import annotations

import contextlib
import warnings

from gancli.errors import UsageError
from gancli.registry import Registry

#: name -> the ``torch`` dtype name autocast runs in (None = autocast off).
PRECISIONS: Registry[str | None] = Registry("precision")
PRECISIONS.register("fp32", "float32 everywhere (autocast off)")(None)
PRECISIONS.register("bf16", "autocast to bfloat16 (Kalamkar et al. 2019, arXiv 1905.12322)")("bfloat16")
PRECISIONS.register("fp16", "autocast to float16 with dynamic loss scaling (Micikevicius et al. 2017, arXiv 1710.03740)")(
    "float16")


def autocast_dtype(precision: str):
    """The ``torch.dtype`` of ``precision`` (None for fp32). Raises UnknownNameError."""
    import torch

    name = PRECISIONS.get(precision)
    return getattr(torch, name) if name else None


def check_precision(precision: str, device) -> None:
    """Raise :class:`UsageError` if autocast to ``precision`` (fp32, bf16, fp16) is
    not available on ``device`` in this PyTorch build."""
    import torch

    dtype = autocast_dtype(precision)
    if dtype is None:
        return
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--precision bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                         "valid choices here: fp32, fp16")
    with warnings.catch_warnings(record=True) as caught:  # autocast warns and disables itself when unsupported
        warnings.simplefilter("always")
        try:
            with torch.autocast(device.type, dtype=dtype):
                pass
        except RuntimeError as e:
            raise UsageError(f"--precision {precision} is not available on {device.type} "
                             f"({str(e).splitlines()[0]}); valid choices: fp32") from None
    if any("not supported" in str(w.message) for w in caught):
        raise UsageError(f"--precision {precision} is not supported on {device.type} by PyTorch {torch.__version__}; "
                         "use --precision fp32")


def autocast(device, dtype, penalty: bool = False):
    """Autocast to ``dtype`` around forward passes on ``device``; nothing for fp32 (None),
    and float32 for the penalties (``penalty=True``) under fp16 (no loss-scaled double backward)."""
    import torch

    if dtype is None or (penalty and dtype == torch.float16):
        return torch.autocast(device.type, enabled=False) if penalty else contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
