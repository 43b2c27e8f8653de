"""Frechet distance between two Gaussians fitted to feature sets (the maths of FID).

FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
to a Local Nash Equilibrium", arXiv 1706.08500. The Frechet (2-Wasserstein)
distance between ``N(mu1, S1)`` and ``N(mu2, S2)`` is

    ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``.

Everything here runs in float64 NumPy; the feature extractor is elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch

# A result below zero by more than this fraction of ``|tr S1| + |tr S2| + ||mu1 - mu2||^2``
# is not rounding error: the covariances are not positive semi-definite.
_NEGATIVE_RTOL = 1e-6


def feature_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a feature set.

    Args:
        features: ``(N, D)`` tensor (any device) or array, any real dtype, finite; N >= 2, D >= 1.

    Returns:
        ``(mu, sigma)``: ``mu`` ``(D,)`` float64, the row mean; ``sigma`` ``(D, D)`` float64,
        the unbiased (``N - 1``) covariance, as ``np.cov(features, rowvar=False)``.

    Raises:
        ValueError: ``features`` is not 2-D, has fewer than 2 rows, or holds NaN / inf.
    """
    x = torch.as_tensor(features).detach().to(device="cpu", dtype=torch.float64).numpy()
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features must be 2-D (N, D) with D >= 1, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"features need at least 2 rows for a covariance, got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("features hold NaN or inf values")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (FID, arXiv 1706.08500).

    ``tr((S1 S2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues
    of ``S1 @ S2`` (taken as complex numbers, real part kept). For positive semi-definite
    ``S1``, ``S2`` these eigenvalues are real and >= 0 in exact arithmetic (they are those
    of the PSD matrix ``S2^(1/2) S1 S2^(1/2)``). Eigenvalues with modulus at most
    ``D * eps * max|eigenvalue|`` are rounding noise (rank-deficient covariances, fewer
    samples than dimensions, have many) and count as 0; otherwise their square roots
    would add ~1e-8 relative error. Negative rounding noise lands on the imaginary axis
    and is dropped. This needs no ``scipy.linalg.sqrtm`` and no ``eps * I`` fallback,
    and is symmetric in its two Gaussians up to rounding (``S1 S2`` and ``S2 S1`` share
    their eigenvalues).

    Args:
        mu1, mu2: ``(D,)`` means, any real dtype (used as float64).
        sigma1, sigma2: ``(D, D)`` symmetric positive semi-definite covariances.

    Returns:
        The distance, a float >= 0 in squared feature units; a tiny negative result
        from rounding is clamped to 0.0.

    Raises:
        ValueError: shapes disagree (the message names them), an input holds NaN / inf,
            or the result is negative beyond rounding (the covariances are not positive
            semi-definite).
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    if mu1.ndim != 1 or mu1.shape[0] == 0:
        raise ValueError(f"mu1 must be 1-D (D,) with D >= 1, got shape {mu1.shape}")
    d = mu1.shape[0]
    for name, arr, want in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if arr.shape != want:
            raise ValueError(
                f"shape mismatch: {name} has shape {arr.shape}, expected {want} "
                f"(mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape})"
            )
    if not all(np.isfinite(arr).all() for arr in (mu1, sigma1, mu2, sigma2)):
        raise ValueError("Frechet statistics hold NaN or inf values")

    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr1, tr2 = float(np.trace(sigma1)), float(np.trace(sigma2))
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).astype(np.complex128)
    # Eigenvalues within rounding of zero are zero: their sqrt would turn ~1e-16 noise into ~1e-8 error.
    noise = d * np.finfo(np.float64).eps * np.abs(eigenvalues).max()
    eigenvalues[np.abs(eigenvalues) <= noise] = 0.0
    tr_covmean = float(np.sqrt(eigenvalues).sum().real)
    fd = mean_term + tr1 + tr2 - 2.0 * tr_covmean
    if fd < 0.0:
        scale = abs(tr1) + abs(tr2) + mean_term
        if fd < -_NEGATIVE_RTOL * max(scale, 1e-300):
            raise ValueError(
                f"Frechet distance came out negative ({fd:.6g}); the covariances are not positive semi-definite"
            )
        fd = 0.0
    return fd


def frechet_distance_from_features(features1: torch.Tensor | np.ndarray, features2: torch.Tensor | np.ndarray) -> float:
    """FID of two feature sets: :func:`feature_stats` on each, then :func:`frechet_distance`.

    Args:
        features1, features2: ``(N1, D)`` and ``(N2, D)`` feature sets (N1, N2 >= 2, same D).

    Returns:
        The Frechet distance, float >= 0.

    Raises:
        ValueError: as :func:`feature_stats`, or the feature widths differ.
    """
    mu1, sigma1 = feature_stats(features1)
    mu2, sigma2 = feature_stats(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2)
