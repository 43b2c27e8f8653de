"""What a seed stands for: per-purpose seeds derived from the run seed, and the latents
and random classes drawn from a seed.

Used by training (fixed-z grids, RNG streams), evaluation, export and ``gan sample``,
so the same seed means the same inputs everywhere. Torch is imported by the functions
that draw tensors, not by this module.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def check_seed(seed: int, flag: str = "--seed") -> int:
    """``seed`` when it is in [0, 2^63 - 1] (:data:`gancli.config.MAX_SEED`), the one seed range of
    every command (train, sample, evaluate, translate).

    Raises:
        UsageError: one line naming ``flag``, the range and the value.
    """
    from gancli.config import MAX_SEED
    from gancli.errors import UsageError

    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag} must be in [0, 2^63 - 1], got {seed}")
    return seed


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose ("z", "fixed-z", ...) derived from the run seed,
    so the streams of different purposes are unrelated."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def latents(n: int, nz: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n, nz)`` float32 ~ N(0, I), drawn on the CPU from ``seed`` so the same seed
    gives the same latents on every device."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, nz, generator=g).to(device)


def random_labels(n: int, num_classes: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n,)`` int64 classes uniform in [0, num_classes), drawn on the CPU from
    ``seed + 1`` (so they do not repeat the stream of the latents drawn from ``seed``);
    the classes of ``gan sample --seed S`` for a conditional run."""
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, num_classes, (n,), generator=g).to(device)
