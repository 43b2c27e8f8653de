"""Self-conditioned generator (Liu et al. 2020, arXiv 2006.10728): an unconditional
interface around a conditional generator whose classes are k-means clusters of the
training images (:mod:`gancli.conditioning.clusters`).

The cluster of each sample is a deterministic function of its latent: with
``u = Phi(z[:, 0])`` (the standard normal CDF, so ``u ~ U(0, 1)`` for ``z ~ N(0, I)``)
the cluster is the first ``c`` with ``u <= cdf[c]``, ``cdf`` the cumulative cluster
frequencies of the training data. So ``G(z)`` alone fixes the image (``gan sample
--seed`` reproduces it, exported graphs take only ``z``) and G draws each cluster
with its share of the data. D is a projection discriminator over the clusters.
"""

from __future__ import annotations

import math

import torch

from gancli.models.layers import Generator


class SelfConditionedGenerator(Generator):
    """``z (N, nz) ~ N(0, I)`` -> ``(N, C, H, W)`` in [-1, 1], through ``inner(z, cluster_of(z))``.

    Args:
        inner: a conditional generator with ``num_classes == clusters``.
        clusters: number of k-means clusters K, >= 2.

    Buffers:
        cluster_cdf: ``(K,)`` float32, cumulative cluster frequencies (last = 1);
            uniform until :meth:`set_cluster_frequencies`; saved with the weights.
    """

    def __init__(self, inner: Generator, clusters: int):
        super().__init__(inner.nz, inner.img_channels, inner.img_resolution, num_classes=0)
        if clusters < 2 or inner.num_classes != clusters:
            raise ValueError(f"inner generator must have {clusters} >= 2 classes, has {inner.num_classes}")
        self.inner = inner
        self.clusters = clusters
        self.register_buffer("cluster_cdf", torch.arange(1, clusters + 1, dtype=torch.float32) / clusters)

    @torch.no_grad()
    def set_cluster_frequencies(self, counts: torch.Tensor) -> None:
        """Set the cluster frequencies from ``counts`` ``(K,)`` (images per cluster, >= 0, sum > 0)."""
        if counts.shape != (self.clusters,) or bool((counts < 0).any()) or not counts.sum() > 0:
            raise ValueError(f"counts must be ({self.clusters},) non-negative with a positive sum")
        cdf = counts.double().cumsum(0) / counts.double().sum()
        cdf[-1] = 1.0
        self.cluster_cdf.copy_(cdf.to(self.cluster_cdf))

    def cluster_of(self, z: torch.Tensor) -> torch.Tensor:
        """The cluster of each latent: ``z (N, nz)`` -> ``(N,)`` int64 in [0, K)."""
        u = 0.5 * (1.0 + torch.erf(z[:, 0].float() / math.sqrt(2.0)))
        return (u[:, None] > self.cluster_cdf[None, :-1]).sum(1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(z, y)
        return self.inner(z, self.cluster_of(z))
