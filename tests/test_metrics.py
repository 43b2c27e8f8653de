"""Metric maths of `gan evaluate` against closed forms, brute force and reference formulas."""

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from gancli.metrics.frechet import feature_stats, frechet_distance, frechet_distance_from_features
from gancli.metrics.inception_score import inception_score
from gancli.metrics.kid import kernel_inception_distance, mmd2_unbiased
from gancli.metrics.precision_recall import precision_recall


def random_covariance(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


# --- Frechet distance -------------------------------------------------------------------------------------------


def sqrtm_reference(mu1, sigma1, mu2, sigma2):
    """The classic pytorch-fid formula: scipy.linalg.sqrtm of S1 S2, eps * I offset if it fails."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular products; the offset handles failures
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def test_feature_stats_match_numpy_for_tensor_and_array():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    x64 = x.double().numpy()
    for features in (x, x.half(), x64):
        mu, sigma = feature_stats(features)
        assert mu.dtype == np.float64 and sigma.dtype == np.float64
        assert mu.shape == (6,) and sigma.shape == (6, 6)
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, x64.sum(axis=0) / 50, rtol=1e-12)
    centred = x64 - x64.mean(axis=0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-10)  # unbiased (N - 1)
    assert feature_stats(np.ones((3, 1)))[1].shape == (1, 1)


@pytest.mark.parametrize(
    "bad", [np.zeros(5), np.zeros((1, 4)), np.zeros((4, 0)), np.zeros((2, 3, 4)), np.array([[0.0, 1.0], [np.nan, 2.0]])]
)
def test_feature_stats_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        feature_stats(bad)


@pytest.mark.parametrize("d, rank", [(1, None), (5, None), (32, None), (32, 7)])
def test_frechet_identical_gaussians_is_zero(d, rank):
    rng = np.random.default_rng(d)
    mu, sigma = rng.normal(size=d), random_covariance(rng, d, rank)
    fd = frechet_distance(mu, sigma, mu, sigma)
    assert 0.0 <= fd <= 1e-9 * np.trace(sigma)


def test_frechet_same_covariance_is_squared_mean_distance():
    rng = np.random.default_rng(1)
    sigma = random_covariance(rng, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-9)


def test_frechet_diagonal_covariances_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 4.0, size=10), rng.uniform(0.1, 4.0, size=10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("c", [0.0, 0.5, 2.0, 3.0])
def test_frechet_scaled_covariance_closed_form(c):
    # sqrt(S1 (c^2 S1)) = c S1, so FD = tr S1 + c^2 tr S1 - 2 c tr S1 = (1 - c)^2 tr S1.
    rng = np.random.default_rng(3)
    sigma = random_covariance(rng, 12)
    mu = rng.normal(size=12)
    expected = (1 - c) ** 2 * np.trace(sigma)
    assert frechet_distance(mu, sigma, mu, c**2 * sigma) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n, d", list(itertools.product([16, 64, 512], [2, 8, 64])))
def test_frechet_matches_sqrtm_reference_and_is_symmetric(n, d):
    rng = np.random.default_rng(100 * n + d)
    f1 = rng.normal(size=(n, d))
    f2 = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / math.sqrt(d) + 0.3  # n < d: rank-deficient covariances
    mu1, s1 = feature_stats(f1)
    mu2, s2 = feature_stats(torch.from_numpy(f2))
    fd = frechet_distance(mu1, s1, mu2, s2)
    assert fd == pytest.approx(sqrtm_reference(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(fd, rel=1e-9)
    assert frechet_distance_from_features(f2, f1) == pytest.approx(fd, rel=1e-9)


@pytest.mark.parametrize("n, d", [(4, 32), (16, 64), (30, 64)])
def test_frechet_rank_deficient_matches_exact_trace(n, d):
    # With S = A^T A (A: centred rows / sqrt(n - 1)), tr sqrt(S1 S2) is the nuclear norm of A1 A2^T (n x n).
    rng = np.random.default_rng(n + d)
    f1, f2 = rng.normal(size=(n, d)), rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / math.sqrt(d) + 0.3
    a1, a2 = (f1 - f1.mean(0)) / math.sqrt(n - 1), (f2 - f2.mean(0)) / math.sqrt(n - 1)
    mu1, s1 = feature_stats(f1)
    mu2, s2 = feature_stats(f2)
    exact = np.sum((mu1 - mu2) ** 2) + np.sum(a1**2) + np.sum(a2**2) - 2 * np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-10)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize(
    "shapes",
    [
        ((3,), (3, 3), (4,), (4, 4)),  # different widths
        ((3,), (3, 3), (3,), (3, 4)),  # non-square covariance
        ((3,), (4, 4), (3,), (3, 3)),  # covariance does not fit its mean
        ((1, 3), (3, 3), (1, 3), (3, 3)),  # means not 1-D
        ((0,), (0, 0), (0,), (0, 0)),  # no features
    ],
)
def test_frechet_rejects_mismatched_shapes(shapes):
    args = [np.eye(s[0]) if len(s) == 2 and s[0] == s[1] else np.zeros(s) for s in shapes]
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(*args)


def test_frechet_rejects_non_psd_non_finite_and_width_mismatch():
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(np.zeros(3), -np.eye(3), np.zeros(3), -np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        frechet_distance_from_features(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))


# --- KID --------------------------------------------------------------------------------------------------------


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / len(a) + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_unbiased_matches_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(loc=0.5, size=(7, 3))
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x.tolist(), y.tolist()), rel=1e-12)
    assert mmd2_unbiased(torch.from_numpy(x).float(), y) == pytest.approx(mmd2_unbiased(x, y), rel=1e-6)


def test_kid_with_whole_sets_equals_brute_force():
    # subset_size >= N: every subset is a permutation of the whole set, and MMD^2 ignores order.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 4)), rng.normal(scale=2.0, size=(6, 4))
    mean, std = kernel_inception_distance(x, y, num_subsets=5, subset_size=100)
    assert mean == pytest.approx(brute_force_mmd2(x.tolist(), y.tolist()), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_near_zero_for_one_distribution_and_larger_when_shifted():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    shifted = torch.randn(600, 16, generator=g) + 0.5
    same, same_std = kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    apart, _ = kernel_inception_distance(a, shifted, num_subsets=20, subset_size=200)
    assert apart > 0.1
    assert abs(same) < 0.02 * apart
    assert same_std > 0  # subsets differ, so the estimates do


def test_kid_is_reproducible_with_its_seed():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(80, 5)), rng.normal(size=(90, 5))
    first = kernel_inception_distance(x, y, num_subsets=10, subset_size=30, seed=7)
    assert kernel_inception_distance(x, y, num_subsets=10, subset_size=30, seed=7) == first
    assert kernel_inception_distance(x, y, num_subsets=10, subset_size=30, seed=8) != first


@pytest.mark.parametrize(
    "kwargs",
    [
        {"f1": np.zeros((4, 2)), "f2": np.zeros((4, 3))},
        {"f1": np.zeros((4, 2)), "f2": np.zeros((4, 2)), "num_subsets": 0},
        {"f1": np.zeros((4, 2)), "f2": np.zeros((4, 2)), "subset_size": 1},
        {"f1": np.zeros((1, 2)), "f2": np.zeros((4, 2))},
        {"f1": np.zeros(4), "f2": np.zeros((4, 2))},
    ],
)
def test_kid_rejects_bad_input(kwargs):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError):
        kernel_inception_distance(kwargs.pop("f1"), kwargs.pop("f2"), **kwargs)


# --- Inception Score --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("splits", [1, 4])
def test_inception_score_uniform_predictions_is_one(splits):
    mean, std = inception_score(np.full((40, 7), 1 / 7), splits=splits)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 10])
def test_inception_score_confident_balanced_predictions_is_k(k):
    one_hot = np.eye(k)[np.arange(50 * k) % k]
    mean, std = inception_score(one_hot, splits=1)
    assert mean == pytest.approx(k, rel=1e-12) and std == 0.0
    # Shuffled splits are only nearly balanced: exp(entropy of each split's class histogram) <= k.
    big = np.eye(k)[np.arange(2000 * k) % k]
    mean, _ = inception_score(torch.from_numpy(big).float(), splits=10, seed=3)
    assert k * 0.98 < mean <= k + 1e-9


def test_inception_score_hand_checked_pair():
    # p(y|x) = [1, 0] and [0.5, 0.5]; p(y) = [0.75, 0.25].
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    mean, _ = inception_score(np.array([[1.0, 0.0], [0.5, 0.5]]), splits=1)
    assert mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)


def test_inception_score_from_logits_agrees_with_probs():
    logits = torch.randn(300, 10, generator=torch.Generator().manual_seed(0)) * 4
    probs = torch.softmax(logits.double(), dim=1)
    from_probs = inception_score(probs, splits=5, seed=1)
    from_logits = inception_score(logits, splits=5, seed=1, from_logits=True)
    assert from_logits == pytest.approx(from_probs, rel=1e-6)
    assert 1.0 < from_probs[0] < 10.0 and from_probs[1] > 0
    # Huge logits neither overflow nor lose the answer: confident and balanced over 3 classes.
    huge = np.eye(3)[np.arange(30) % 3] * 1e4
    assert inception_score(huge, splits=1, from_logits=True)[0] == pytest.approx(3.0, rel=1e-12)


def test_inception_score_seed_changes_splits_only():
    probs = torch.softmax(torch.randn(200, 5, generator=torch.Generator().manual_seed(1)) * 3, dim=1)
    assert inception_score(probs, splits=4, seed=0) == inception_score(probs, splits=4, seed=0)
    assert inception_score(probs, splits=4, seed=0) != inception_score(probs, splits=4, seed=1)
    assert inception_score(probs, splits=1, seed=0)[0] == pytest.approx(inception_score(probs, splits=1, seed=1)[0], rel=1e-12)


@pytest.mark.parametrize(
    "preds, kwargs",
    [
        (np.full((5, 2), 0.5), {"splits": 10}),  # N < splits
        (np.full((5, 2), 0.5), {"splits": 0}),
        (np.array([[1.5, -0.5]] * 4), {"splits": 2}),  # negative probability
        (np.full((4, 2), 0.3), {"splits": 2}),  # rows do not sum to 1
        (np.full(4, 0.5), {"splits": 1}),
    ],
)
def test_inception_score_rejects_bad_input(preds, kwargs):
    with pytest.raises(ValueError):
        inception_score(preds, **kwargs)


# --- Precision and recall ---------------------------------------------------------------------------------------


def test_precision_recall_identical_sets_is_one_one():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone()) == (1.0, 1.0)


def test_precision_recall_far_apart_clusters_is_zero_zero():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(100, 4)), rng.normal(size=(120, 4)) + 100.0
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_hand_checked_line():
    # k = 1. Real radii: 0, 1, 2, 3 -> 1; 12 -> 9. Fake radii: -1.5, -0.75 -> 0.75; 0.5 -> 1.25; 5.5 -> 5.
    # Precision: -1.5 is 1.5 from 0 (> 1) and 13.5 from 12 (> 9): out; -0.75, 0.5 near 0: in; 5.5 is 6.5 from 12: in -> 3/4.
    # Recall: 0, 1 near 0.5; 2, 3 within 5 of 5.5; 12 is 6.5 from 5.5 (> 5): out -> 4/5.
    real = np.array([[0.0], [1.0], [2.0], [3.0], [12.0]])
    fake = torch.tensor([[-1.5], [-0.75], [0.5], [5.5]])
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(0.75) and recall == pytest.approx(0.8)


def test_precision_recall_narrow_fake_has_high_precision_low_recall():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(400, 4, generator=g), 0.3 * torch.randn(400, 4, generator=g)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.9 and recall < 0.5


def test_precision_recall_batch_size_does_not_change_result():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(200, 8, generator=g), 1.3 * torch.randn(150, 8, generator=g) + 0.2
    results = {precision_recall(real, fake, k=k, batch_size=b) for b in (1, 7, 64, 10000) for k in (3,)}
    assert len(results) == 1
    precision, recall = results.pop()
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0
    assert precision_recall(real.numpy(), fake.double(), k=3) == (precision, recall)


@pytest.mark.parametrize(
    "real, fake, kwargs",
    [
        (np.zeros((3, 2)), np.ones((10, 2)), {"k": 3}),  # real has <= k points
        (np.zeros((10, 2)), np.ones((3, 2)), {"k": 3}),  # fake has <= k points
        (np.zeros((10, 2)), np.ones((10, 3)), {}),  # widths differ
        (np.zeros((10, 2)), np.ones((10, 2)), {"k": 0}),
        (np.zeros((10, 2)), np.ones((10, 2)), {"batch_size": 0}),
        (np.zeros(10), np.ones((10, 2)), {}),
    ],
)
def test_precision_recall_rejects_bad_input(real, fake, kwargs):
    with pytest.raises(ValueError):
        precision_recall(real, fake, **kwargs)
