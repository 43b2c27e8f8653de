"""CycleGAN's history of generated images (Shrivastava et al. 2017, arXiv 1612.07828,
section 2.3; Zhu et al. 2017, arXiv 1703.10593, section 4): the discriminator is updated
on a mix of the newest fakes and older ones, which damps oscillation."""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``size`` generated images, filled in order and then renewed at random.

    :meth:`query` gives back a batch of the same shape: while the pool has room, each image is
    stored and returned as is; once it is full, each image is, with probability 0.5, returned
    as is, and otherwise stored in place of a uniformly chosen stored image, which is returned
    instead. The draws come from the ``torch.Generator`` passed in (never the global RNG): the
    same generator state and the same images give the same batch, and a pool rebuilt with
    :meth:`load_state_dict` continues as the saved one would have.

    Args:
        size: images kept, >= 0 (CycleGAN: 50); 0 = off (:meth:`query` returns its input).

    Raises:
        ValueError: ``size`` < 0.
    """

    def __init__(self, size: int = 50):
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"image pool size must be an integer >= 0 (0 = off), got {size!r}")
        self.size = size
        self._images: list[torch.Tensor] = []  # each (C, H, W), detached

    def __len__(self) -> int:
        """Images stored now, in [0, size]."""
        return len(self._images)

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Mix ``images (N, C, H, W)`` (the newest fakes) with the stored ones, updating the pool.

        Each call draws ``N`` uniforms and ``N`` indices from ``generator`` (whether or not the
        pool is full, so the generator advances by the same amount every call), on the
        generator's device. Returns ``(N, C, H, W)``, detached, on ``images``' device and dtype:
        for the discriminator's update only.

        Raises:
            ValueError: ``images`` is not 4-D, or its images differ in shape from the stored ones.
        """
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        images = images.detach()
        if self.size == 0:
            return images
        if self._images and images.shape[1:] != self._images[0].shape:
            raise ValueError(f"images of shape {tuple(images.shape[1:])} given to a pool of "
                             f"{tuple(self._images[0].shape)} images")
        if self._images and (self._images[0].device, self._images[0].dtype) != (images.device, images.dtype):
            self._images = [t.to(images.device, images.dtype) for t in self._images]  # e.g. a pool loaded on the CPU
        n = images.shape[0]
        swap = torch.rand(n, generator=generator, device=generator.device).lt(0.5).tolist()
        slots = torch.randint(self.size, (n,), generator=generator, device=generator.device).tolist()
        out = []
        for image, swapped, slot in zip(images, swap, slots, strict=True):
            if len(self._images) < self.size:
                self._images.append(image.clone())
                out.append(image)
            elif swapped:
                out.append(self._images[slot])
                self._images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        """``{"images": (count, C, H, W) tensor (count = 0: an empty tensor), "count": int}``, the
        stored images in slot order (a copy): what a resumed run needs for :meth:`load_state_dict`."""
        images = torch.stack(self._images) if self._images else torch.empty(0)
        return {"images": images, "count": len(self._images)}

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        """Restore the stored images from :meth:`state_dict` (on the device of ``state["images"]``).

        Raises:
            ValueError: ``count`` disagrees with the images or exceeds :attr:`size`.
        """
        images, count = state["images"], int(state["count"])
        if count > self.size or (count and (images.dim() != 4 or images.shape[0] != count)):
            raise ValueError(f"bad image pool state: count {count}, images {tuple(images.shape)}, "
                             f"pool size {self.size}")
        self._images = [image.clone() for image in images[:count]] if count else []
