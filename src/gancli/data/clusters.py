"""Pseudo-labels for self-conditioned GANs: k-means clusters of the training images.

A self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via
Self-Conditioned GANs", arXiv 2006.10728) conditions G and D on cluster
memberships of the real data instead of class labels, and G draws its cluster
with the clusters' empirical frequencies, so every part of the data keeps its
share of the samples (fewer dropped modes) while G keeps an unconditional
interface. gancli clusters once, before training, in a fixed feature space that
needs no downloaded weights: the pixels in [0, 1], average-pooled to 16x16 for
images larger than 32 pixels. The clustering is scikit-learn's ``KMeans``
(k-means++ initialisation, Arthur & Vassilvitskii 2007; Lloyd iterations), seeded,
so a resumed run recomputes the same clusters on the same machine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

#: Images larger than this (pixels, H = W) are average-pooled to :data:`POOLED` first.
POOL_ABOVE = 32
POOLED = 16
def cluster_features(images: torch.Tensor, chunk: int = 8192) -> np.ndarray:
    """``(N, C, H, W)`` uint8 images -> ``(N, F)`` float32 features in [0, 1]: the
    pixels, average-pooled to 16x16 when ``H > 32`` (F = C*H*W or C*16*16)."""
    n, c, h, w = images.shape
    out = []
    for i in range(0, n, chunk):
        x = images[i:i + chunk].to("cpu", torch.float32).div_(255.0)
        if h > POOL_ABOVE:
            x = F.adaptive_avg_pool2d(x, POOLED)
        out.append(x.flatten(1).numpy())
    return np.concatenate(out)


def kmeans_labels(images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Cluster ``images`` ``(N, C, H, W)`` uint8 into ``k`` clusters (see the module docstring).

    Returns:
        ``(N,)`` int64 cluster indices in [0, k); clusters are numbered by decreasing size.

    Raises:
        ValueError: ``k < 2`` or more clusters than images.
    """
    from sklearn.cluster import KMeans

    if not 2 <= k <= len(images):
        raise ValueError(f"need 2 <= k <= {len(images)} clusters, got {k}")
    feats = cluster_features(images)
    km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=100, random_state=seed % 2**32)
    labels = torch.from_numpy(km.fit_predict(feats).astype(np.int64))
    counts = torch.bincount(labels, minlength=k)
    order = torch.argsort(-counts, stable=True)  # order[new] = old
    rank = torch.empty_like(order)
    rank[order] = torch.arange(k)
    return rank[labels]
