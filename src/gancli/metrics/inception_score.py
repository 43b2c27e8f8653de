"""Inception Score from a classifier's predictions on generated samples.

Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv 1606.03498:
``IS = exp(E_x KL(p(y|x) || p(y)))``, with ``p(y)`` the mean prediction over the
samples of one split; reported as mean and std over ``splits`` disjoint splits.
Everything runs in float64 NumPy, with logs taken so that zero probabilities and
large logits are safe.
"""

from __future__ import annotations

import numpy as np
import torch

# Tolerance on the row sums of probabilities (float32 softmax outputs sum to 1 within ~1e-6).
_ROW_SUM_ATOL = 1e-3


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) along ``axis`` without overflow; -inf where every entry is -inf."""
    peak = a.max(axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(a - peak).sum(axis=axis, keepdims=True)) + peak).squeeze(axis)


def _log_probs(x: np.ndarray, from_logits: bool) -> np.ndarray:
    if from_logits:
        return x - _logsumexp(x, axis=1)[:, None]
    if (x < 0).any():
        raise ValueError("probabilities must be >= 0 (pass from_logits=True for logits)")
    sums = x.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=_ROW_SUM_ATOL):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"each row of probabilities must sum to 1, found a row summing to {worst:.6g} "
                         "(pass from_logits=True for logits)")
    with np.errstate(divide="ignore"):
        return np.log(x / sums[:, None])  # renormalised exactly; log(0) = -inf


def _split_score(log_p: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) for one split; ``log_p`` is ``(n, K)``, rows normalised."""
    p = np.exp(log_p)
    positive = p > 0
    log_marginal = _logsumexp(log_p, axis=0) - np.log(log_p.shape[0])  # log mean_x p(y|x); -inf for a class never predicted
    # 0 log 0 = 0: where p(y|x) = 0 the term is dropped; where p(y|x) > 0, p(y) > 0 too, so both logs are finite there.
    log_ratio = np.where(positive, log_p, 0.0) - np.where(np.isfinite(log_marginal), log_marginal, 0.0)
    terms = np.where(positive, p * log_ratio, 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def inception_score(probs_or_logits: torch.Tensor | np.ndarray, splits: int = 10, seed: int = 0,
                    from_logits: bool = False) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016, arXiv 1606.03498): mean and std over splits.

    The rows are shuffled with ``np.random.default_rng(seed)`` and cut into ``splits``
    parts with ``np.array_split`` (every row is used; part sizes differ by at most one).
    Each part scores ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` that part's mean
    prediction.

    Args:
        probs_or_logits: ``(N, K)`` class predictions, any real dtype: probabilities
            (>= 0, rows summing to 1 within 1e-3, renormalised exactly) or, with
            ``from_logits=True``, unnormalised logits (softmax taken here).
        splits: number of parts, 1 <= splits <= N.
        seed: seed of the row shuffle.
        from_logits: whether the input holds logits instead of probabilities.

    Returns:
        ``(mean, std)`` over the splits, floats in ``[1, K]`` (up to rounding); ``std`` is the population
        standard deviation (``ddof=0``), as the original code reports it.

    Raises:
        ValueError: the input is not 2-D, holds NaN / inf, ``splits < 1`` or ``N < splits``,
            or probabilities are negative or do not sum to 1.
    """
    x = torch.as_tensor(probs_or_logits).detach().to(device="cpu", dtype=torch.float64).numpy()
    if x.ndim != 2:
        raise ValueError(f"predictions must be 2-D (N, K), got shape {tuple(x.shape)}")
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    if x.shape[0] < splits:
        raise ValueError(f"need at least as many samples as splits: N={x.shape[0]}, splits={splits}")
    if not np.isfinite(x).all():
        raise ValueError("predictions hold NaN or inf values")
    log_p = _log_probs(x, from_logits)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    scores = np.array([_split_score(log_p[part]) for part in np.array_split(order, splits)])
    return float(scores.mean()), float(scores.std())
