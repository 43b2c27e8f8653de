"""Pseudo-labels for self-conditioned GANs: k-means clusters of the training images.

A self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via
Self-Conditioned GANs", arXiv 2006.10728) conditions G and D on cluster
memberships of the real data instead of class labels, and G draws its cluster
with the clusters' empirical frequencies, so every part of the data keeps its
share of the samples (fewer dropped modes) while G keeps an unconditional
interface. gancli clusters once, before training, in a fixed feature space that
needs no downloaded weights (``--cluster-features``):

* ``pixels``: the pixels in [0, 1], average-pooled to 16x16 for images larger than
  32 pixels;
* ``umap`` (new runs on 10,000 images or more): a 10-dimensional UMAP embedding
  (McInnes et al. 2018, arXiv 1802.03426; umap-learn, ``n_neighbors`` 15, ``min_dist``
  0, 30 epochs) of the first 50 principal components of those pixels, seeded, so its
  layout runs on one thread. The 15 nearest neighbours are exact (scikit-learn's
  brute-force search, all cores) and handed to UMAP, which skips its approximate
  search and that search's numba compilation: about 35 s in all for MNIST's 60,000
  images on a 2-core CPU (umap-learn's own search and 100 epochs took ~80 s). On MNIST
  its clusters are far purer: 20 clusters hold 97.2-97.3% of their images in their
  majority digit (seeds 0-4), against 73% for pixels, and their majority digits cover
  the ten classes evenly.

The clustering has two stages, both scikit-learn's and seeded: ``KMeans`` (k-means++
initialisation, Arthur & Vassilvitskii 2007; Lloyd iterations) into ``5 k`` fine clusters,
then Ward's agglomerative clustering (Ward 1963) of their centroids into ``k``. k-means
straight into ``k`` cuts the embedding's elongated digit islands with straight boundaries
and, depending on its initialisation, can put two touching digits into one cluster: on
MNIST at seed 0 one of 20 clusters was 51% 4s and 49% 9s, and the generator, drawing that
cluster mostly as 9s, made 4s 7.1% of its samples (issue #25). The merged fine clusters
follow the islands: every one of the 20 is at least 89% one digit on seeds 0-4 (plain
k-means: 51% at seed 0, 87-88% at seeds 1-4), for ~0.5 s more. A run finds its clusters once: the
assignment is stored with the run before step 1 and read back on resume and by every
rank, and cached per dataset (:mod:`gancli.conditioning.store`).
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


#: Dimensions of the UMAP embedding, and its neighbourhood size (points).
UMAP_COMPONENTS = 10
UMAP_NEIGHBORS = 15
UMAP_EPOCHS = 30  # optimisation epochs (umap-learn's default is 200 above 10,000 points; purity is the same at 30)
UMAP_PCA = 50  # principal components the embedding starts from


def umap_embedding(features: np.ndarray, seed: int) -> np.ndarray:
    """``(N, F)`` features -> ``(N, d)`` float32 UMAP embedding, ``d = min(10, N - 2)``
    (McInnes et al. 2018, arXiv 1802.03426) of their first 50 principal components,
    seeded (deterministic, one thread).

    Raises:
        GancliError: umap-learn is not installed (:data:`UMAP_MISSING`).
    """
    import warnings

    from gancli.conditioning import UMAP_MISSING, umap_available
    from gancli.errors import GancliError

    if not umap_available():
        raise GancliError(UMAP_MISSING)
    import umap
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    from gancli.engine.device import pin_threads

    pin_threads(torch.get_num_threads())  # numba (imported by umap) may not use more threads than torch

    n, f = features.shape
    if f > UMAP_PCA and n > UMAP_PCA:  # nearest neighbours in 50 dimensions: faster, as pure
        features = PCA(UMAP_PCA, random_state=seed % 2**32).fit_transform(features)
    features = np.ascontiguousarray(features, dtype=np.float32)
    k = min(UMAP_NEIGHBORS, n - 1)
    # exact neighbours (each point's first is itself, as UMAP expects); deterministic on any thread count
    dists, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(features).kneighbors(features)
    reducer = umap.UMAP(n_neighbors=k, n_components=max(2, min(UMAP_COMPONENTS, n - 2)),
                        min_dist=0.0, n_epochs=UMAP_EPOCHS, random_state=seed % 2**32,
                        init="spectral" if n > UMAP_COMPONENTS + 2 else "random",
                        precomputed_knn=(index.astype(np.int64), dists.astype(np.float32)))
    # UserWarnings: "n_jobs overridden to 1 by setting random_state" (the price of determinism) and "no
    # NNDescent search index" (gancli never transforms new points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return reducer.fit_transform(features).astype(np.float32)


#: k-means first finds this many times ``k`` fine clusters, which Ward's agglomeration merges into ``k``.
OVERCLUSTER = 5


def _two_stage(feats: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``(N, F)`` features -> ``(N,)`` int64 labels in [0, k): k-means (k-means++, seeded) into
    ``min(OVERCLUSTER * k, N)`` fine clusters, then Ward's agglomerative clustering (Ward 1963)
    of the non-empty fine clusters' centroids into ``k``; plain k-means into ``k`` when fewer than
    ``k + 1`` fine clusters are non-empty (duplicate images)."""
    import warnings

    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.exceptions import ConvergenceWarning

    def kmeans(clusters: int) -> KMeans:
        return KMeans(n_clusters=clusters, init="k-means++", n_init=1, max_iter=100, random_state=seed)

    fine_k = min(OVERCLUSTER * k, len(feats))
    if fine_k > k:
        km = kmeans(fine_k)
        with warnings.catch_warnings():  # "fewer distinct clusters than n_clusters": duplicates, handled below
            warnings.simplefilter("ignore", ConvergenceWarning)
            fine = km.fit_predict(feats)
        used = np.unique(fine)
        if len(used) > k:
            merged = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(km.cluster_centers_[used])
            lookup = np.zeros(fine_k, dtype=np.int64)
            lookup[used] = merged
            return lookup[fine]
    return kmeans(k).fit_predict(feats).astype(np.int64)


def kmeans_labels(images: torch.Tensor, k: int, seed: int, features: str = "pixels") -> torch.Tensor:
    """Cluster ``images`` ``(N, C, H, W)`` uint8 into ``k`` clusters (see the module docstring).

    Args:
        features: ``pixels`` or ``umap`` (``--cluster-features``).

    Returns:
        ``(N,)`` int64 cluster indices in [0, k); clusters are numbered by decreasing size.

    Raises:
        ValueError: ``k < 2``, more clusters than images, or unknown ``features``.
        GancliError: ``umap`` without umap-learn installed.
    """
    from gancli.conditioning import CLUSTER_FEATURES

    if not 2 <= k <= len(images):
        raise ValueError(f"need 2 <= k <= {len(images)} clusters, got {k}")
    if features not in CLUSTER_FEATURES:
        raise ValueError(f"unknown cluster features {features!r}; valid choices: {', '.join(CLUSTER_FEATURES)}")
    feats = cluster_features(images)
    if features == "umap":
        feats = umap_embedding(feats, seed)
    labels = torch.from_numpy(_two_stage(feats, k, seed % 2**32))
    counts = torch.bincount(labels, minlength=k)
    order = torch.argsort(-counts, stable=True)  # order[new] = old
    rank = torch.empty_like(order)
    rank[order] = torch.arange(k)
    return rank[labels]
