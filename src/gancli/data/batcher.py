"""Batches from a dataset preloaded on the training device.

The whole split lives on the device as uint8 (MNIST: 47 MB); each step gathers
a batch by index and converts it to float in [-1, 1] there, so there is no
per-step host->device copy and no DataLoader worker.
"""

from __future__ import annotations

import torch


class DeviceBatcher:
    """Shuffled, drop-last batches whose order depends only on ``(seed, step)``.

    Epoch ``e`` uses the permutation ``randperm(N)`` of a CPU generator seeded
    with ``seed * 100003 + e``, so the batch of any step can be recomputed
    without saved RNG state: resuming at step S continues the same data order.

    Args:
        images: ``(N, C, H, W)`` uint8 in [0, 255], any device (moved to ``device``).
        labels: ``(N,)`` int64.
        batch_size: images per batch; must be <= N.
        seed: data-order seed.
        device: where batches are produced.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(images.shape)} {images.dtype}")
        n = images.shape[0]
        if not 0 < batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.steps_per_epoch = n // batch_size
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch used at 0-based ``step``.

        Returns:
            ``(x, y)``: x ``(B, C, H, W)`` float32 in [-1, 1], y ``(B,)`` int64.
        """
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
            self._perm = torch.randperm(len(self), generator=g).to(self.device)
            self._epoch = epoch
        assert self._perm is not None
        idx = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.images.index_select(0, idx).to(torch.float32).div_(127.5).sub_(1.0)
        return x, self.labels.index_select(0, idx)
