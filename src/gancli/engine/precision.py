"""``--precision``: the autocast dtypes, registered by name, the check that the device
supports them, and what ``--precision auto`` (the default) resolves to on this machine. The
registry is torch-free; the checks import torch."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path

from gancli.errors import UsageError
from gancli.registry import Registry

#: name -> the ``torch`` dtype name autocast runs in (None = autocast off).
PRECISIONS: Registry[str | None] = Registry("precision")
PRECISIONS.register("auto", "bf16 on a CPU with native bf16 maths (AMX-BF16 or AVX512-BF16) where a timed probe "
                     "measures it at least 1.3x fp32's speed, fp32 everywhere else; resolved when the run "
                     "starts and stored in config.json")("auto")
PRECISIONS.register("fp32", "float32 everywhere (autocast off)")(None)
PRECISIONS.register("bf16", "autocast to bfloat16 (Kalamkar et al. 2019, arXiv 1905.12322)")("bfloat16")
PRECISIONS.register("fp16", "autocast to float16 with dynamic loss scaling (Micikevicius et al. 2017, arXiv 1710.03740)")(
    "float16")


def autocast_dtype(precision: str):
    """The ``torch.dtype`` of ``precision`` (None for fp32).

    Raises:
        UnknownNameError: an unknown name. ValueError: ``auto``, which
            :func:`resolve_precision` turns into a dtype's name first.
    """
    import torch

    name = PRECISIONS.get(precision)
    if name == "auto":
        raise ValueError("--precision auto must be resolved (gancli.engine.precision.resolve_precision) first")
    return getattr(torch, name) if name else None


def check_precision(precision: str, device) -> None:
    """Raise :class:`UsageError` if autocast to ``precision`` (fp32, bf16, fp16) is
    not available on ``device`` in this PyTorch build."""
    import torch

    if precision == "auto":
        PRECISIONS.get(precision)
        return
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


def native_on_cpu(precision: str, flags: set[str]) -> bool:
    """Whether a CPU with ``flags`` computes ``precision`` (bf16, fp16) natively
    (:data:`NATIVE_CPU_FLAGS`)."""
    return any(f in flags for f in NATIVE_CPU_FLAGS.get(precision, ()))


def precision_warning(precision: str, device, flags: set[str] | None = None,
                      speedup: float | None = None) -> str | None:
    """One line when ``precision`` has no native support on ``device`` (so autocast
    emulates it, usually slower than fp32), else None.

    CPU: bf16 needs AVX512-BF16 or AMX-BF16, fp16 AVX512-FP16 or AMX-FP16 (``flags``:
    the CPU's flags, default :func:`cpu_flags`; unknown flags -> no warning); ``speedup``:
    bf16's measured speed as a multiple of fp32's on this CPU (:func:`cached_bf16_speedup`),
    stated when given. CUDA: fp16 tensor cores from compute capability 7.0, bf16 from 8.0.
    """
    if precision not in NATIVE_CPU_FLAGS:
        return None
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        if flags is None or native_on_cpu(precision, flags):
            return None
        need = " or ".join(f.upper().replace("_", "-") for f in NATIVE_CPU_FLAGS[precision])
        measured = (f"measured {_times(speedup)} fp32's speed on this CPU" if precision == "bf16" and speedup
                    else "usually slower than fp32")
        return (f"--precision {precision} on this CPU (no {need}) is emulated: {measured}; "
                f"--precision fp32 is the fast choice here")
    if device.type == "cuda":
        import torch

        major, _ = torch.cuda.get_device_capability(device)
        if major < (8 if precision == "bf16" else 7):
            return (f"--precision {precision} on {torch.cuda.get_device_name(device)} (compute capability "
                    f"{major}.x) has no tensor-core support; it may be slower than fp32")
    return None


#: ``--precision auto`` picks bf16 when the probe measures it at least this many times fp32's speed.
AUTO_BF16_MIN_SPEEDUP = 1.3
#: Pins what ``--precision auto`` resolves to (``fp32`` or ``bf16``), e.g. to keep runs comparable.
AUTO_PRECISION_ENV = "GANCLI_AUTO_PRECISION"
#: Bump when the probe's workload changes: older cached ratios are measured again.
PROBE_VERSION = 1


def cpu_signature(flags: set[str] | None = None) -> str:
    """What the probe's result depends on: the CPU's model name and flags, torch's version and
    its thread count, as one short string (``<model> | torch <version> | <n> threads | <hash>``)."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    flags = cpu_flags() if flags is None else flags
    digest = hashlib.sha256(" ".join(sorted(flags or ())).encode()).hexdigest()[:12]
    return f"{model} | torch {torch.__version__} | {torch.get_num_threads()} threads | flags {digest}"


def measure_bf16_speedup(repeats: int = 3) -> float:
    """bf16 autocast's speed as a multiple of fp32's on this CPU (> 1: bf16 faster), timed on a
    DCGAN-sized workload: a 4x4 stride-2 convolution 64 -> 128 channels on 64 images of 28x28
    (channels_last) and a 1024x1024 linear layer on 256 rows, forward and backward, best of
    ``repeats`` timings of each (about 0.5 s in all on an idle 2-core CPU with native bf16;
    seconds where bf16 is emulated). No global RNG is used."""
    import torch

    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(64, 128, 4, 2, 1).to(memory_format=torch.channels_last)
    linear = torch.nn.Linear(1024, 1024)
    with torch.no_grad():
        for p in (*conv.parameters(), *linear.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    x = torch.randn(64, 64, 28, 28, generator=g).contiguous(memory_format=torch.channels_last)
    h = torch.randn(256, 1024, generator=g)

    def work() -> None:
        conv.zero_grad(set_to_none=True)
        linear.zero_grad(set_to_none=True)
        (conv(x).square().mean() + linear(h).square().mean()).float().backward()

    def best(dtype) -> float:
        ctx = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype is not None else contextlib.nullcontext
        with ctx():
            work()  # warm-up: kernels chosen, buffers allocated
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            with ctx():
                work()
            times.append(time.perf_counter() - start)
        return min(times)

    return best(None) / best(torch.bfloat16)


def probe_cache_path(home: str | os.PathLike) -> Path:
    """``<home>/probes/precision.json``: the measured bf16 speed-ups, one per :func:`cpu_signature`."""
    return Path(home).expanduser() / "probes" / "precision.json"


def _probe_key() -> str:
    return f"v{PROBE_VERSION} | {cpu_signature()}"


def _read_probe_cache(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def probed_bf16_speedup(home: str | os.PathLike | None) -> float | None:
    """This CPU's bf16 speed-up as cached by :func:`cached_bf16_speedup`, or None when it was
    never measured (or ``home`` is None); never runs the probe."""
    if home is None:
        return None
    entry = _read_probe_cache(probe_cache_path(home)).get(_probe_key())
    ratio = entry.get("bf16_speedup") if isinstance(entry, dict) else None
    return float(ratio) if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and ratio > 0 else None


def cached_bf16_speedup(home: str | os.PathLike | None, measure=None) -> tuple[float, bool]:
    """``(speed-up, was cached)``: bf16's speed as a multiple of fp32's on this CPU, read from
    :func:`probe_cache_path` or measured once (``measure()``, default :func:`measure_bf16_speedup`) and stored there (atomically; an
    unreadable cache is measured again, a cache that cannot be written is only not kept)."""
    from gancli.fsutil import atomic_write_json

    cached = probed_bf16_speedup(home)
    if cached is not None:
        return cached, True
    ratio = float((measure or measure_bf16_speedup)())
    if home is not None:
        path = probe_cache_path(home)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entries = _read_probe_cache(path)
            entries[_probe_key()] = {"bf16_speedup": round(ratio, 3),
                                     "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            atomic_write_json(path, entries)
        except OSError:
            pass
    return ratio, False


def _times(speedup: float) -> str:
    """``1/10.6`` -> ``"1/10.6x"`` (10.6 times slower), ``1.9`` -> ``"1.9x"``."""
    return f"{speedup:.1f}x" if speedup >= 1 else f"1/{1 / speedup:.1f}x"


#: An explicit ``--precision bf16`` on a CPU where bf16 measures more than this many times slower
#: than fp32 trains in fp32 instead, unless ``--force``.
BF16_SLOWER_FALLBACK = 1.5


def resolve_precision(precision: str, device, home: str | os.PathLike | None = None,
                      flags: set[str] | None = None, measure=None, force: bool = False) -> tuple[str, str]:
    """``(precision, why)``: ``precision`` itself unless it is ``auto``, which becomes

    * what ``$GANCLI_AUTO_PRECISION`` says (``fp32`` or ``bf16``) when set;
    * ``bf16`` on a CPU with native bf16 maths (AMX-BF16 or AVX512-BF16 in ``flags``, default
      :func:`cpu_flags`) whose measured bf16 speed-up (:func:`cached_bf16_speedup`, cached in
      ``home``) is at least :data:`AUTO_BF16_MIN_SPEEDUP`;
    * ``fp32`` everywhere else: CPUs without native bf16 (emulated bf16 is several times slower),
      and GPUs and MPS, where bf16's effect on the sample quality of gancli's recipes has not
      been measured (ask for ``--precision bf16`` there).

    An explicit ``bf16`` on a CPU without native bf16 is probed too (cached): where bf16
    measures more than :data:`BF16_SLOWER_FALLBACK` times slower than fp32 the run trains in
    ``fp32`` and ``why`` says so, unless ``force``.

    ``why`` is a short phrase for the start line (empty for an explicit precision kept as given).

    Raises:
        UsageError: ``$GANCLI_AUTO_PRECISION`` is neither fp32 nor bf16.
    """
    if precision == "bf16" and device.type == "cpu" and not force:
        flags = cpu_flags() if flags is None else flags
        if flags is not None and not native_on_cpu("bf16", flags):
            ratio, cached = cached_bf16_speedup(home, measure)
            if ratio * BF16_SLOWER_FALLBACK < 1:
                return "fp32", (f"--precision bf16 measured {1 / ratio:.1f}x slower than fp32 on this CPU "
                                f"({'cached probe' if cached else 'probe'}): training in fp32; add --force to "
                                "train in bf16 anyway")
    if precision != "auto":
        return precision, ""
    pinned = os.environ.get(AUTO_PRECISION_ENV, "").strip()
    if pinned:
        if pinned not in ("fp32", "bf16"):
            raise UsageError(f"{AUTO_PRECISION_ENV}={pinned!r} is not a precision --precision auto can pick; "
                             "valid choices: fp32, bf16")
        return pinned, f"auto: {AUTO_PRECISION_ENV}={pinned}"
    if device.type != "cpu":
        return "fp32", f"auto: fp32 on {device.type} (--precision bf16 to autocast)"
    flags = cpu_flags() if flags is None else flags
    if flags is None or not native_on_cpu("bf16", flags):
        return "fp32", "auto: no native bf16 (AMX-BF16, AVX512-BF16) on this CPU"
    ratio, cached = cached_bf16_speedup(home, measure)
    how = "cached probe" if cached else "probe"
    if ratio >= AUTO_BF16_MIN_SPEEDUP:
        return "bf16", f"auto: bf16 measured {ratio:.1f}x fp32's speed on this CPU ({how})"
    return "fp32", f"auto: bf16 measured {ratio:.2f}x fp32's speed on this CPU ({how}), below {AUTO_BF16_MIN_SPEEDUP}x"
