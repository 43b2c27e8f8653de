"""Image-quality figures of translation outputs against their targets: PSNR, SSIM, L1 and, on
MNIST, label preservation.

Protocol (what ``gan evaluate`` reports for a translation run):

- **Images**: ``(N, C, H, W)`` float in [-1, 1], outputs and targets of the same shape, paired
  by index. For PSNR and SSIM they are mapped to [0, 1] by ``(x + 1) / 2`` and clipped to
  [0, 1] (what writing them as PNGs would do; no quantisation to 8 bits), with
  ``data_range = 1``.
- **PSNR** (dB): torchmetrics' ``peak_signal_noise_ratio`` per image (``dim=(1, 2, 3)``: the
  MSE over one image's C x H x W values), ``10 log10(1 / MSE)``, then the mean over images. An
  image equal to its target has MSE 0 and PSNR ``inf`` (torchmetrics applies no cap), so the
  mean is ``inf`` as soon as one image is reproduced exactly.
- **SSIM** (Wang et al. 2004, IEEE TIP 13(4)): torchmetrics' ``structural_similarity_index_measure``
  with its defaults: Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, local variances
  clipped at 0; the images are reflection-padded by 5 px, so the SSIM map has one value per
  pixel (torchmetrics 1.9 keeps the border; some older releases cropped it), averaged over
  pixels and channels per image; then the mean over images. 1 = identical. Images smaller
  than the window (under 11 px a side) are refused.
- **L1**: the mean absolute difference over all values, in [-1, 1] units (no mapping, no
  clipping), in [0, 2].
- **Label preservation**: the fraction of outputs that gancli's shipped LeNet-MNIST
  (:mod:`gancli.metrics.lenet`) assigns the true label; MNIST-shaped images only.

Each figure is computed in batches of ``batch_size`` images (the result does not depend on it
beyond float rounding) on the images' device and returned as a Python float. torchmetrics is
imported when a figure is first computed.
"""

from __future__ import annotations

import torch

__all__ = ["BATCH", "image_quality", "l1_distance", "label_preservation", "psnr", "ssim"]

#: images per batch of the computations
BATCH = 256


def _check_pair(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    for name, x in (("outputs", outputs), ("targets", targets)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be (N, C, H, W) float images in [-1, 1], got {shape}")
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    if not len(outputs):
        raise ValueError("no images: outputs and targets are empty")


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clipped, float32."""
    return ((x.float() + 1) / 2).clamp_(0, 1)


def _per_image_mean(fn, outputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> float:
    """The mean over images of ``fn(outputs, targets) -> (n,)`` computed in batches, in float64."""
    _check_pair(outputs, targets)
    _check_batch_size(batch_size)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, len(outputs), batch_size):
        o = _unit(outputs[start:start + batch_size])
        t = _unit(targets[start:start + batch_size].to(o.device))
        total += fn(o, t).double().sum().cpu()
    return float(total / len(outputs))


def psnr(outputs: torch.Tensor, targets: torch.Tensor, batch_size: int = BATCH) -> float:
    """Mean per-image PSNR in dB (module docstring: [0, 1] mapping, data range 1, ``inf`` for an
    exact reproduction).

    Args:
        outputs, targets: ``(N, C, H, W)`` float in [-1, 1], the same shape, N >= 1.
        batch_size: images per computation.

    Raises:
        ValueError: tensors that are not 4-D float, of different shapes, or empty.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return _per_image_mean(lambda o, t: peak_signal_noise_ratio(o, t, data_range=1.0, dim=(1, 2, 3),
                                                                reduction="none"),
                           outputs, targets, batch_size)


def ssim(outputs: torch.Tensor, targets: torch.Tensor, batch_size: int = BATCH) -> float:
    """Mean per-image SSIM in [-1, 1] (1 = identical; module docstring: Gaussian 11 x 11 window,
    sigma 1.5, data range 1 on the [0, 1]-mapped images).

    Args:
        outputs, targets: ``(N, C, H, W)`` float in [-1, 1], the same shape, N >= 1, H and W >= 11.
        batch_size: images per computation.

    Raises:
        ValueError: tensors that are not 4-D float, of different shapes, empty, or smaller than
            the 11 x 11 window.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_pair(outputs, targets)
    if min(outputs.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 px (its Gaussian window), got "
                         f"{outputs.shape[-2]}x{outputs.shape[-1]}")
    return _per_image_mean(lambda o, t: structural_similarity_index_measure(o, t, data_range=1.0, reduction="none"),
                           outputs, targets, batch_size)


def l1_distance(outputs: torch.Tensor, targets: torch.Tensor, batch_size: int = BATCH) -> float:
    """Mean absolute difference over all values, in [-1, 1] units (in [0, 2]; 0 = identical).

    Raises:
        ValueError: as :func:`psnr`.
    """
    _check_pair(outputs, targets)
    _check_batch_size(batch_size)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, len(outputs), batch_size):
        o = outputs[start:start + batch_size].double()
        total += (o - targets[start:start + batch_size].to(o.device, torch.float64)).abs().sum().cpu()
    return float(total / outputs.numel())


def image_quality(outputs: torch.Tensor, targets: torch.Tensor, batch_size: int = BATCH) -> dict[str, float]:
    """``{"psnr": dB, "ssim": ..., "l1": ...}``: :func:`psnr`, :func:`ssim` and :func:`l1_distance`
    of ``outputs`` against ``targets``; SSIM is left out for images under 11 x 11 px.

    Raises:
        ValueError: as :func:`psnr`.
    """
    out = {"psnr": psnr(outputs, targets, batch_size)}
    if min(outputs.shape[-2:]) >= 11:
        out["ssim"] = ssim(outputs, targets, batch_size)
    out["l1"] = l1_distance(outputs, targets, batch_size)
    return out


def label_preservation(images: torch.Tensor, labels: torch.Tensor, device: str | torch.device = "cpu",
                       batch_size: int = 500) -> float:
    """The accuracy of gancli's shipped LeNet-MNIST (:func:`gancli.metrics.lenet.load_lenet`) on
    ``images`` against the true ``labels``: the fraction of translated digits still read as the
    digit they were (real MNIST test digits: about 0.99).

    Loading the network leaves the global RNG as it was.

    Args:
        images: ``(N, 1, 28, 28)`` float in [-1, 1], N >= 1, any device.
        labels: ``(N,)`` integers in 0-9, any device.
        device: where the LeNet runs.
        batch_size: images per forward pass.

    Returns:
        A fraction in [0, 1].

    Raises:
        ValueError: images of another shape or range (the message names them), labels of another
            length or outside 0-9, or no images.
        GancliError: the shipped weights are missing or damaged.
    """
    from gancli.metrics.lenet import NUM_CLASSES, lenet_outputs, load_lenet

    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise ValueError(f"labels must be a 1-D integer tensor, got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    if not isinstance(images, torch.Tensor) or images.dim() < 1 or len(images) != len(labels):
        n = len(images) if isinstance(images, torch.Tensor) and images.dim() else "no"
        raise ValueError(f"{n} images for {len(labels)} labels: give one label per image")
    if not len(labels):
        raise ValueError("no images: images and labels are empty")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"labels must be digits 0-{NUM_CLASSES - 1}, got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    with torch.random.fork_rng(devices=[]):  # building the net draws init weights: keep the caller's stream
        model = load_lenet(device)
    _, logits = lenet_outputs(model, images, batch_size)
    return float((logits.argmax(1) == labels.cpu()).double().mean())
