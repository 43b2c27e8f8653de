"""Mode-collapse monitor: cheap scores of a fixed batch of generated images during training.

Two kinds of evidence, both computed on a fixed batch (the same latents every check):

* **Diversity, for any dataset, with no downloaded weights**: images are average-pooled
  to 8x8 per channel (a fixed, weight-free feature space that keeps the layout of the
  strokes and drops pixel noise) and the mean pairwise L2 distance of the batch is
  divided by the same statistic of a fixed real batch (``diversity``: about 1 for a
  generator as varied as the data, 0 for one image). A pair closer than
  :data:`DUPLICATE_RADIUS` times the real mean distance is a near-duplicate;
  ``duplicates`` is the fraction of such pairs (real MNIST batches of 256: 0 of 32,640).
  The pairwise-distance view of mode collapse follows Che et al. 2017, "Mode
  Regularized GANs" (arXiv 1612.02136) and the birthday-paradox test of Arora & Zhang
  2017 (arXiv 1706.08224), which look for near-duplicates among samples.
* **Classes, for the MNIST family**: the shipped LeNet-MNIST classifier's class
  histogram of the batch, the classes covered (at least 10% of their expected share)
  and KL(generated || uniform), as in :func:`gancli.metrics.coverage.class_coverage`
  (Metz et al. 2016, arXiv 1611.02163).

:func:`symptoms` turns scores into named symptoms with the thresholds below. Torch is
imported by the functions that need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Side of the pooled feature map, pixels.
POOL = 8
#: Generated images per check (and real images in the reference batch).
BATCH = 256
#: A pair of images closer than this times the real batch's mean distance is a near-duplicate.
DUPLICATE_RADIUS = 0.1

#: Thresholds of :func:`symptoms`.
MIN_DIVERSITY = 0.6  # fake / real mean pairwise distance; healthy runs stay near 1
MAX_DUPLICATES = 0.01  # fraction of near-duplicate pairs; real data: 0
MAX_KL = 0.5  # KL(generated classes || uniform), nats; a one-class generator has log 10 = 2.30
MIN_CLASSES_MISSING = 3  # classes not covered (of 10) that count as collapse


def pooled_features(images):
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, C * 8 * 8)`` float64: average-pooled to 8x8."""
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(images.float(), POOL).flatten(1).double()


def pair_distances(feats):
    """The ``N (N - 1) / 2`` pairwise L2 distances of ``(N, F)`` features."""
    import torch

    d = torch.cdist(feats, feats)
    i, j = torch.triu_indices(len(feats), len(feats), 1)
    return d[i, j]


class CollapseMonitor:
    """Scores a fixed generated batch against a fixed real batch.

    Args:
        real: ``(N, C, H, W)`` real images in [-1, 1] (N >= 2): the reference diversity.
        classifier: a callable ``images -> logits (N, K)`` (the LeNet for MNIST), or None.
    """

    def __init__(self, real, classifier=None):
        real_d = pair_distances(pooled_features(real))
        self.real_mean = float(real_d.mean())
        self.classifier = classifier

    def score(self, fake) -> dict[str, Any]:
        """Scores of ``fake`` ``(N, C, H, W)`` in [-1, 1]: ``diversity``, ``duplicates`` and,
        with a classifier, ``classes_covered``, ``kl_to_uniform`` and ``histogram``."""
        d = pair_distances(pooled_features(fake))
        out: dict[str, Any] = {
            "diversity": round(float(d.mean()) / self.real_mean, 4),
            "duplicates": round(float((d < DUPLICATE_RADIUS * self.real_mean).double().mean()), 4),
        }
        if self.classifier is not None:
            from gancli.metrics.coverage import class_coverage

            logits = self.classifier(fake)
            cov = class_coverage(logits.argmax(1), num_classes=logits.shape[1])
            out.update(classes_covered=cov["classes_covered"], kl_to_uniform=round(cov["kl_to_uniform"], 4),
                       histogram=cov["histogram"])
        return out


def symptoms(scores: dict[str, Any]) -> list[str]:
    """The collapse symptoms in ``scores`` (empty = healthy), each a short phrase."""
    out = []
    if scores["diversity"] < MIN_DIVERSITY:
        out.append(f"low diversity ({scores['diversity']:.2f} of the data's, threshold {MIN_DIVERSITY})")
    if scores["duplicates"] > MAX_DUPLICATES:
        out.append(f"near-duplicate samples ({scores['duplicates']:.1%} of pairs, threshold {MAX_DUPLICATES:.0%})")
    if "kl_to_uniform" in scores:
        k = len(scores["histogram"])
        missing = k - scores["classes_covered"]
        if scores["kl_to_uniform"] > MAX_KL or missing >= MIN_CLASSES_MISSING:
            out.append(f"classes missing ({scores['classes_covered']}/{k} covered, KL to uniform "
                       f"{scores['kl_to_uniform']:.2f}, threshold {MAX_KL})")
    return out


#: What the warning suggests (:func:`advice` leaves out what a run already does).
ADVICE = "try --loss hinge --spectral-norm, a lower --lr-g/--lr-d, or --augment diffaug"


def advice(loss: str = "", spectral_norm: bool = False, augment: str = "") -> str:
    """:data:`ADVICE` without the remedies the run already uses (``loss``, ``spectral_norm``,
    ``augment`` as in its config): a hinge + spectral norm run is not told to try them."""
    tips = [] if loss == "hinge" and spectral_norm else ["--loss hinge --spectral-norm"]
    tips.append("a lower --lr-g/--lr-d")
    if "diffaug" not in (augment or ""):
        tips.append("--augment diffaug")
    return "try " + (", ".join(tips[:-1]) + ", or " + tips[-1] if len(tips) > 1 else tips[0])


@dataclass(frozen=True)
class Verdict:
    """What a run's monitor records say about its weights at one step (see :func:`verdict`)."""

    step: int  # the check the verdict comes from: the newest at or before the step asked about
    symptoms: tuple[str, ...]  # that check's symptom kinds ("low diversity", ...); empty = healthy
    since: int  # the first check of the unbroken series of checks with symptoms that ends there
    clean_step: int | None  # the newest check without symptoms (``step`` itself when healthy); None = none

    @property
    def collapsed(self) -> bool:
        return bool(self.symptoms)


def verdict(records: Iterable[dict[str, Any]], step: int) -> Verdict | None:
    """The monitor's verdict on the weights of ``step``, from a run's metrics records.

    Only ``"kind": "monitor"`` records count. A baseline check (the first one, marked
    ``"baseline": true``) gives no verdict of its own (an immature generator is not a
    collapsed one), but a clean baseline is a clean check.

    Returns:
        None when no check at or before ``step`` counts (monitor off, or the run is too short).
    """
    checks = sorted((r for r in records if r.get("kind") == "monitor" and isinstance(r.get("step"), int)
                     and r["step"] <= step), key=lambda r: r["step"])
    counted = [r for r in checks if not r.get("baseline")]
    if not counted:
        return None
    last = counted[-1]
    found = tuple(str(s) for s in last.get("symptoms") or ())
    clean = next((r["step"] for r in reversed(checks) if not r.get("symptoms")), None)  # a clean baseline counts
    since = min((r["step"] for r in counted if clean is None or r["step"] > clean), default=last["step"])
    return Verdict(step=last["step"], symptoms=found, since=since, clean_step=clean)


def last_good_checkpoint(checkpoint_steps: Iterable[int], clean_step: int | None) -> int | None:
    """The step of the newest checkpoint at or before ``clean_step`` (the last check without
    symptoms); None when there is no such check or no such checkpoint."""
    if clean_step is None:
        return None
    good = [s for s in checkpoint_steps if s <= clean_step]
    return max(good) if good else None
