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

    With several processes, ``batch_size`` is the global batch and process
    ``rank`` of ``world_size`` gets the ``rank``-th slice of ``batch_size /
    world_size`` images of it: together the processes consume exactly the
    images one process would, whatever their number.

    Args:
        images: ``(N, C, H, W)`` uint8 in [0, 255], any device (moved to ``device``).
        labels: ``(N,)`` int64.
        batch_size: images per global batch; must be <= N and divisible by ``world_size``.
        seed: data-order seed.
        device: where batches are produced.
        rank, world_size: this process's slice of each batch; ``0, 1`` = the whole batch.
        memory_format: layout of the returned images (``torch.channels_last`` for
            conv models); values are the same.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device, rank: int = 0, world_size: int = 1,
                 memory_format: torch.memory_format = torch.contiguous_format):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(images.shape)} {images.dtype}")
        n = images.shape[0]
        if not 0 < batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
        if batch_size % world_size or not 0 <= rank < world_size:
            raise ValueError(f"batch_size {batch_size} does not split over {world_size} processes (rank {rank})")
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.steps_per_epoch = n // batch_size
        self.local_batch_size = batch_size // world_size
        self.rank = rank
        self.memory_format = memory_format
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch used at 0-based ``step``.

        Returns:
            ``(x, y)``: x ``(b, C, H, W)`` float32 in [-1, 1], y ``(b,)`` int64, with
            ``b = batch_size / world_size`` (this process's slice).
        """
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
            self._perm = torch.randperm(len(self), generator=g).to(self.device)
            self._epoch = epoch
        assert self._perm is not None
        start = i * self.batch_size + self.rank * self.local_batch_size
        idx = self._perm[start:start + self.local_batch_size]
        x = self.images.index_select(0, idx).to(torch.float32).div_(127.5).sub_(1.0)
        if self.memory_format != torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)
        return x, self.labels.index_select(0, idx)
