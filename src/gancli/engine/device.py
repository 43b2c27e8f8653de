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
