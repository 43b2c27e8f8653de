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


def cpu_flags() -> set[str] | None:
    """The CPU feature flags of ``/proc/cpuinfo`` (Linux), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


#: CPU flags of native low-precision matrix maths, per --precision (any one suffices).
NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def precision_warning(precision: str, device, flags: set[str] | None = None) -> str | None:
    """One line when ``precision`` has no native support on ``device`` (so autocast
    emulates it, usually slower than fp32), else None.

    CPU: bf16 needs AVX512-BF16 or AMX-BF16, fp16 AVX512-FP16 or AMX-FP16 (``flags``:
    the CPU's flags, default :func:`cpu_flags`; unknown flags -> no warning). CUDA: fp16
    tensor cores from compute capability 7.0, bf16 from 8.0.
    """
    if precision not in NATIVE_CPU_FLAGS:
        return None
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        if flags is None or any(f in flags for f in NATIVE_CPU_FLAGS[precision]):
            return None
        need = " or ".join(f.upper().replace("_", "-") for f in NATIVE_CPU_FLAGS[precision])
        return (f"--precision {precision} on this CPU (no {need}) is emulated and usually slower than fp32 "
                f"(measured 2x slower on a 2-core AMD box); --precision fp32 is the fast choice here")
    if device.type == "cuda":
        import torch

        major, _ = torch.cuda.get_device_capability(device)
        if major < (8 if precision == "bf16" else 7):
            return (f"--precision {precision} on {torch.cuda.get_device_name(device)} (compute capability "
                    f"{major}.x) has no tensor-core support; it may be slower than fp32")
    return None
