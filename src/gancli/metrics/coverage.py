"""Mode coverage: how generated samples spread over the classes a pretrained classifier sees.

The practice of counting modes with a pretrained classifier comes from the
mode-collapse literature: Metz et al. 2016, "Unrolled Generative Adversarial
Networks" (arXiv 1611.02163) and Srivastava et al. 2017, "VEEGAN" (arXiv
1705.07761) label generated samples with a classifier and count the modes
(classes) that receive samples, alongside KL(generated class distribution ||
uniform). For MNIST the labels come from LeNet-MNIST
(:func:`gancli.metrics.lenet.load_lenet`); the expected distribution is uniform
over the 10 digits (MNIST test is close to it: 892 to 1135 images per class).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def class_coverage(pred_labels: Any, num_classes: int = 10, min_share: float = 0.1) -> dict[str, Any]:
    """Class histogram, number of classes covered and KL(generated || uniform) of predicted labels.

    Args:
        pred_labels: (N,) integer class indices in [0, num_classes), N >= 1 (a torch
            tensor, numpy array or sequence), e.g. ``logits.argmax(1)``.
        num_classes: K, the number of classes; the reference is uniform, N / K per class.
        min_share: a class is covered when its count is at least ``min_share * N / K``
            (0.1 = 10% of its expected share); 0 = any class that gets one sample.

    Returns:
        dict with ``histogram`` (list of K int counts), ``classes_covered`` (int),
        ``covered`` (list of the covered class indices), ``min_count`` (the float
        threshold), ``kl_to_uniform`` (sum_k p_k log(K p_k) in nats with 0 log 0 = 0,
        p_k = count_k / N; 0 for a uniform histogram, log K when one class gets all),
        ``max_kl`` (log K, the value of a one-class generator) and ``num_samples`` (N).

    Raises:
        ValueError: labels not 1-D integers in range, no labels, bad num_classes or min_share.
    """
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be in [0, 1] (a fraction of the expected share), got {min_share!r}")
    if hasattr(pred_labels, "detach"):  # torch tensor, without importing torch here
        pred_labels = pred_labels.detach().cpu().numpy()
    labels = np.asarray(pred_labels)
    if labels.ndim != 1:
        raise ValueError(f"pred_labels must have shape (N,), got {labels.shape}")
    if labels.size == 0:
        raise ValueError("pred_labels is empty; coverage needs at least one sample")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"pred_labels must be integer class indices, got dtype {labels.dtype}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"pred_labels must be in [0, {num_classes - 1}], got values in [{lo}, {hi}]")
    n = int(labels.size)
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
    min_count = min_share * n / num_classes
    covered = [k for k in range(num_classes) if counts[k] > 0 and counts[k] >= min_count]
    p = counts[counts > 0] / n
    kl = float(np.sum(p * np.log(p * num_classes)))
    return {
        "histogram": [int(c) for c in counts],
        "classes_covered": len(covered),
        "covered": covered,
        "min_count": min_count,
        "kl_to_uniform": max(kl, 0.0),  # >= 0 mathematically; clamp rounding noise
        "num_samples": n,
        "max_kl": math.log(num_classes),  # the value for a single-class generator
    }
