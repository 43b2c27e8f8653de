"""The metrics gancli reports, by the name they are reported under: whether a higher or a
lower value is better, and how to read a value.

The one place a metric's direction is declared: ``gan evaluate``'s tables, ``gan report``'s
best values and "better" column, and ``gan train --eval-every``'s best checkpoint read it
here. A leaf: imports nothing of gancli, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """One reported metric.

    Attributes:
        name: the key in ``gan evaluate --json`` and metrics.jsonl (``fd_lenet``, ``cas``...).
        higher_is_better: True for scores (IS, precision, accuracies), False for distances.
        note: reference points, appended to the direction in :attr:`reading` (docs/metrics.md).
        states_direction: False for a value read against another one (a baseline, a
            ratio, a gain): :attr:`reading` is the note alone.
    """

    name: str
    higher_is_better: bool
    note: str = ""
    states_direction: bool = True

    @property
    def reading(self) -> str:
        """How to read a value, e.g. ``"lower is better; 0 = same distribution"``."""
        if not self.states_direction:
            return self.note
        return f"{'higher' if self.higher_is_better else 'lower'} is better{self.note}"


_SAME = "; 0 = same distribution"
_LOOK_REAL = ", in [0, 1]: share of samples that look real"
_COVERED = ", in [0, 1]: share of real data covered"

#: Every metric gancli writes, by name. Names missing here read as lower-is-better.
CATALOG: dict[str, MetricInfo] = {m.name: m for m in (
    # gan evaluate --protocol lenet (FD-LeNet is never called FID)
    MetricInfo("fd_lenet", False, "; real MNIST ~0.5, README job ~3.4, dcgan-classic ~72, noise ~620"),
    MetricInfo("is_lenet", True, ", at most 10; real MNIST 9.77"),
    MetricInfo("kid_lenet", False, _SAME),
    MetricInfo("precision_lenet", True, _LOOK_REAL),
    MetricInfo("recall_lenet", True, _COVERED),
    # gan evaluate --protocol inception
    MetricInfo("fid", False, _SAME + " (e.g. StyleGAN2 CIFAR-10 ~3, DCGAN ~30-40)"),
    MetricInfo("kid", False, _SAME),
    MetricInfo("is", True, " (CIFAR-10 real data ~11.2)"),
    MetricInfo("precision", True, _LOOK_REAL),
    MetricInfo("recall", True, _COVERED),
    # mode coverage (lenet protocol) and conditional generators
    MetricInfo("classes_covered", True, "; KL 0 = as even as uniform"),
    MetricInfo("kl_to_uniform", False),
    MetricInfo("class_accuracy", True, ": the class asked for is the class seen"),
    # gan evaluate --cas
    MetricInfo("cas", True, ": real test accuracy of a LeNet trained on generated images only"),
    MetricInfo("cas_real", True, "the same LeNet trained on as many real images (the ceiling CAS is read against)",
               states_direction=False),
    MetricInfo("cas_ratio", True, "cas / cas_real: 1 = generated data teaches as much as real, ~0.1 = labels ignored",
               states_direction=False),
    MetricInfo("cas_mix", True, "real test accuracy of a LeNet trained on real + generated images",
               states_direction=False),
    MetricInfo("cas_real_only", True, "the same LeNet, same steps, on the real images alone", states_direction=False),
    MetricInfo("cas_mix_gain", True, "cas_mix - cas_real_only: > 0 = the generated images helped",
               states_direction=False),
    # gan evaluate on an image-to-image run (gancli.metrics.translation_eval), against the clean targets
    MetricInfo("psnr", True, ", in dB: peak signal-to-noise ratio (inf = identical)"),
    MetricInfo("ssim", True, ", at most 1 = identical: structural similarity"),
    MetricInfo("l1", False, ", in [-1, 1] units; 0 = identical"),
    MetricInfo("label_preservation", True, ", in [0, 1]: LeNet reads the true digit; real MNIST test digits ~0.99"),
    # the mode-collapse monitor (gancli.metrics.monitor)
    MetricInfo("diversity", True),
    MetricInfo("duplicates", False),
)}


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (a key of :data:`CATALOG`) is the better one;
    False for names gancli does not know (distances are the default)."""
    info = CATALOG.get(metric)
    return info.higher_is_better if info is not None else False


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one: True for distances
    (``fd_lenet``, ``fid``, ``kid``), ``kl_to_uniform``, ``duplicates`` and unknown names;
    False for ``is*``, ``precision*``, ``recall*``, ``classes_covered``, ``diversity``,
    ``class_accuracy`` and the Classification Accuracy Score ``cas*``."""
    return not higher_is_better(metric)


def reading(metric: str) -> str:
    """How to read a value of ``metric`` (direction and reference points); "" when unknown."""
    info = CATALOG.get(metric)
    return info.reading if info is not None else ""


def metric_names(protocol: str) -> dict[str, str]:
    """Names of the reported values under ``protocol`` (``lenet`` or ``inception``), by
    metric (``fid``, ``kid``, ``is``, ``precision``, ``recall``): FD-LeNet is never called FID."""
    if protocol == "lenet":
        return {"fid": "fd_lenet", "kid": "kid_lenet", "is": "is_lenet", "precision": "precision_lenet",
                "recall": "recall_lenet"}
    return {"fid": "fid", "kid": "kid", "is": "is", "precision": "precision", "recall": "recall"}


def headline_metric(protocol: str) -> str:
    """The one number ``--eval-every`` tracks: FD-LeNet or FID (:func:`higher_is_better` says
    which way is better)."""
    return metric_names(protocol)["fid"]
