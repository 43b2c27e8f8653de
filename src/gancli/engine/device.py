"""Device selection: ``auto`` picks CUDA, then MPS, then CPU."""

from __future__ import annotations

import re

import torch

from gancli.errors import UsageError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def available_devices() -> list[str]:
    """Devices usable on this machine, e.g. ``['cpu', 'cuda', 'cuda:0']``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:N | mps`` into a usable :class:`torch.device`.

    Raises:
        UsageError: unknown spelling, or a device this machine does not have
            (the message lists the devices that are available).
    """
    s = spec.strip().lower()
    here = ", ".join(["auto", *available_devices()])
    if s == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if s == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", s)
    if m:
        if not torch.cuda.is_available():
            raise UsageError(f"device {spec!r} is not available (no CUDA GPU found); valid choices here: {here}")
        if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
            raise UsageError(f"device {spec!r} is not available; valid choices here: {here}")
        return torch.device(s)
    if s == "mps":
        if not _mps_available():
            raise UsageError(f"device {spec!r} is not available (no Apple MPS backend); valid choices here: {here}")
        return torch.device("mps")
    raise UsageError(f"unknown device {spec!r}; valid choices: {DEVICE_CHOICES} (here: {here})")


def pin_threads(n: int) -> int:
    """Use ``n`` CPU threads everywhere gancli computes: torch's intra-op pool, numba's (UMAP's
    clustering; when numba is imported) and the BLAS / OpenMP pools threadpoolctl sees
    (scikit-learn's k-means, numpy). numba's OpenMP start-up resets the OpenMP pool torch
    shares to all cores, so ``gan train`` calls this again after clustering: the user's
    ``OMP_NUM_THREADS`` / ``--threads`` / ``torch.set_num_threads`` holds for the training.
    Returns torch's thread count afterwards."""
    import sys

    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # scikit-learn's dependency; without it only torch's pool is set
        pass
    torch.set_num_threads(n)
    return torch.get_num_threads()
