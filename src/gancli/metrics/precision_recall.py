"""Improved precision and recall from k-nearest-neighbour hyperspheres.

Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", arXiv 1904.06991. Each set's manifold is the union of balls
around its points, each ball's radius the distance to that point's k-th nearest
neighbour within the set. Precision is the fraction of fake points inside the real
manifold (sample quality); recall is the fraction of real points inside the fake
manifold (coverage).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_points(name: str, points: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.as_tensor(points).detach().to(device=device, dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf values")
    return x


def _knn_radii(points: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """(N,) distance of each point to its k-th nearest neighbour in ``points``, itself excluded."""
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    for start in range(0, points.shape[0], batch_size):
        dist = torch.cdist(points[start:start + batch_size], points)
        # The point itself is the smallest entry (distance 0), so the (k+1)-th smallest is the k-th neighbour.
        radii[start:start + batch_size] = dist.kthvalue(k + 1, dim=1).values
    return radii


def _fraction_inside(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor, batch_size: int) -> float:
    """Fraction of ``queries`` within ``radii[j]`` (inclusive) of at least one ``points[j]``."""
    inside = 0
    for start in range(0, queries.shape[0], batch_size):
        dist = torch.cdist(queries[start:start + batch_size], points)
        inside += int((dist <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k: int = 3,
                     batch_size: int = 10000) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, arXiv 1904.06991).

    Distances are Euclidean, from ``torch.cdist`` in float64 (its matrix-product path,
    whose rounding is ~1e-8 of the feature norms, far below any k-NN radius), computed
    ``batch_size`` query rows at a time: peak memory is about ``8 * batch_size * max(N_real, N_fake)``
    bytes per distance block (10000 x 50000 -> 4 GB; lower ``batch_size`` to save memory,
    the result does not change). A point on a ball's boundary counts as inside.

    Args:
        real: ``(N_real, D)`` features of real samples (tensor on any device, or array;
            any real dtype). The maths runs on ``real``'s device (CPU for arrays).
        fake: ``(N_fake, D)`` features of generated samples.
        k: neighbour rank of the ball radii, >= 1 (the paper uses 3).
        batch_size: query rows per distance block, >= 1.

    Returns:
        ``(precision, recall)``, floats in [0, 1].

    Raises:
        ValueError: an input is not 2-D or holds NaN / inf, the widths differ, a set
            has ``<= k`` points, ``k < 1`` or ``batch_size < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = real.device if isinstance(real, torch.Tensor) else torch.device("cpu")
    r, f = _as_points("real", real, device), _as_points("fake", fake, device)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature widths differ: real {tuple(r.shape)} vs fake {tuple(f.shape)}")
    for name, x in (("real", r), ("fake", f)):
        if x.shape[0] <= k:
            raise ValueError(f"{name} needs more than k={k} points for k-NN radii, got {x.shape[0]}")
    real_radii = _knn_radii(r, k, batch_size)
    fake_radii = _knn_radii(f, k, batch_size)
    precision = _fraction_inside(f, r, real_radii, batch_size)
    recall = _fraction_inside(r, f, fake_radii, batch_size)
    return precision, recall
