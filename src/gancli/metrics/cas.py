"""Classification Accuracy Score: train a classifier on generated images, test it on real ones.

CAS (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative
Models", arXiv 1905.10887) asks whether a conditional generator's labelled images are
*useful as training data*: a classifier trained only on ``N`` generated images (balanced over
the classes, the label being the class asked for) is tested on the real test split, and
compared with the **real baseline**: the same classifier, recipe and number of steps trained
on ``N`` real training images (the same count per class). The ratio CAS / baseline is 1 for
a generator whose samples teach as much as real data, ~0.1 for one whose images do not depend
on the label (10 classes), near 0 for one that draws a consistently wrong class.

The classifier is gancli's LeNet-MNIST architecture trained from scratch with the recipe of
the shipped weights (:mod:`gancli.metrics.classifier`), so CAS needs 1x28x28 images with 10
classes (MNIST, Fashion-MNIST).

The augmentation question (``mix``): with ``M`` real labelled images, does adding generated
ones help? The classifier trains on the ``M`` real images plus ``G = round(M * R / (1 - R))``
generated ones (``R`` = generated fraction), and is compared with the same classifier trained
on the ``M`` real images alone **for the same number of steps** (so the comparison is data,
not compute).

Real baselines depend only on the dataset, the counts, the steps, the seed, the recipe, torch's
version and the CPU threads; they are cached as JSON under ``<home>/stats/`` like reference
statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gancli.metrics.classifier import RECIPE, Recipe, accuracy, steps_for, train_lenet

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
CACHE_PREFIX = "cas-real-"

#: ``generate(labels)``: labels (n,) int64 in [0, 10) -> images (n, 1, 28, 28) float32 in [-1, 1].
Generate = Callable[[torch.Tensor], torch.Tensor]
#: ``progress(phase, done, total)``: phase is "generate", "train generated", "train real" or "train mix".
Progress = Callable[[str, int, int], None]


@dataclass
class CasResult:
    """What :func:`classification_accuracy_score` measured.

    Attributes:
        values: metric name -> value, fractions in [0, 1] (``cas``, ``cas_real``,
            ``cas_ratio``; with ``mix``: ``cas_mix``, ``cas_real_only``, ``cas_mix_gain``).
        results: one ``{"metric", "value", "protocol"}`` record per value, as ``gan evaluate``
            writes them.
        seconds: wall time per phase, seconds.
        cache_hit: whether the real-only classifier's accuracy came from the cache.
    """

    values: dict[str, float]
    results: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)
    cache_hit: bool | None = None


def balanced_labels(n: int, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """``(n,)`` int64 labels 0, 1, ..., K-1, 0, 1, ...: every class ``n // K`` times, the first
    ``n % K`` classes once more."""
    return torch.arange(n, dtype=torch.int64) % num_classes


def label_counts(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> list[int]:
    """Images per class of ``labels`` (n,), as a list of ``num_classes`` ints."""
    return torch.bincount(labels.long(), minlength=num_classes).tolist()


def real_subset(labels: torch.Tensor, counts: list[int], seed: int) -> torch.Tensor:
    """Indices of a random subset of a labelled set with ``counts[c]`` images of class ``c``.

    Args:
        labels: (N,) class of every image.
        counts: wanted images per class.
        seed: seeds the random order the images are taken in.

    Returns:
        (sum(counts),) int64 indices, in the random order.

    Raises:
        ValueError: a class has fewer images than asked for.
    """
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for c, k in enumerate(counts):
        of_c = perm[labels[perm] == c]
        if len(of_c) < k:
            raise ValueError(f"class {c} has {len(of_c)} real images, {k} asked for")
        chosen.append(of_c[:k])
    picked = torch.cat(chosen)
    order = torch.randperm(len(picked), generator=torch.Generator().manual_seed(seed + 1))
    return picked[order]


def _cache_file(home: Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return home / "stats" / f"{CACHE_PREFIX}{key['dataset']}-n{key['num_real']}-s{key['steps']}-seed{key['seed']}-{digest}.json"


def _cached_accuracy(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("accuracy"), float):
        return None
    return doc


def _train_and_test(x: torch.Tensor, y: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor], steps: int, seed: int,
                    recipe: Recipe, phase: str, progress: Progress | None) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    on_step = (lambda done: progress(phase, done, steps)) if progress else None
    model = train_lenet(x, y, steps, seed=seed, recipe=recipe, on_step=on_step)
    acc, correct = accuracy(model, *test)
    return acc, correct, time.perf_counter() - t0


def _generate(generate: Generate, labels: torch.Tensor, progress: Progress | None, chunk: int = 1000) -> torch.Tensor:
    out = []
    for start in range(0, len(labels), chunk):
        images = generate(labels[start:start + chunk])
        if tuple(images.shape) != (len(labels[start:start + chunk]), *IMAGE_SHAPE):
            raise ValueError(f"CAS needs (n, 1, 28, 28) generated images, got {tuple(images.shape)}")
        out.append(images.to("cpu", torch.float32).clamp_(-1, 1))
        if progress:
            progress("generate", start + len(out[-1]), len(labels))
    return torch.cat(out)


def classification_accuracy_score(
    generate: Generate,
    real_train: tuple[torch.Tensor, torch.Tensor],
    real_test: tuple[torch.Tensor, torch.Tensor],
    *,
    num: int = 10_000,
    epochs: int = 10,
    seed: int = 0,
    mix: float | None = None,
    real_limit: int | None = None,
    dataset: str = "mnist",
    generated_info: dict[str, Any] | None = None,
    home: str | os.PathLike | None = None,
    use_cache: bool = True,
    recipe: Recipe = RECIPE,
    progress: Progress | None = None,
) -> CasResult:
    """Measure CAS and its real baseline (or, with ``mix``, the augmentation gain).

    Args:
        generate: ``labels (n,) -> (n, 1, 28, 28)`` images in [-1, 1] of those classes.
        real_train: real training images (N, 1, 28, 28) float in [-1, 1] and labels (N,).
        real_test: the real test split, same format; every classifier is tested on all of it.
        num: generated images (and real images of the baseline), balanced over the classes.
            Ignored with ``mix``.
        epochs: passes over the training set; the number of steps is
            ``epochs * (training images // 128)``, the same for the baseline.
        seed: seeds the labels' subset of real images, the classifier's initial weights,
            image order, translations and dropout (the generator's latents are the
            caller's: ``generate`` decides).
        mix: generated fraction R in [0, 1) of a real + generated training set; None = plain CAS.
        real_limit: real labelled images M for ``mix`` (default ``num``).
        dataset: name of the real data, for the records and the cache key.
        generated_info: describes the generator (run, checkpoint, step, EMA), for the records.
        home: where ``stats/`` holds cached real baselines; None = no caching.
        use_cache: read the cache (the result is written either way when ``home`` is given).
        recipe: the classifier's training recipe.
        progress: called as the work advances (see :data:`Progress`).

    Returns:
        :class:`CasResult`.

    Raises:
        ValueError: bad counts, ``mix`` outside [0, 1), too few real images of a class, or
            images of the wrong shape.
    """
    if num < recipe.batch_size:
        raise ValueError(f"-n must be >= {recipe.batch_size} (one classifier batch), got {num}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if mix is not None and not 0 <= mix < 1:
        raise ValueError(f"mix must be in [0, 1), got {mix}")
    x_real, y_real = real_train
    seconds: dict[str, float] = {}
    base_protocol = {"protocol": "cas", "paper": "Ravuri & Vinyals 2019, arXiv 1905.10887", "classifier": recipe.describe(),
                     "epochs": epochs, "seed": seed, "threads": torch.get_num_threads(), "torch_version": torch.__version__,
                     "test": {"dataset": dataset, "split": "test", "num": len(real_test[1])},
                     "generated": generated_info or {}}

    if mix is None:
        n_real, labels_gen = num, balanced_labels(num)
    else:
        n_real = real_limit if real_limit is not None else num
        if n_real < 1:
            raise ValueError(f"real_limit must be >= 1, got {n_real}")
        labels_gen = balanced_labels(round(n_real * mix / (1 - mix)))
    counts_real = label_counts(balanced_labels(n_real))
    idx = real_subset(y_real, counts_real, seed)
    xr, yr = x_real[idx].to(torch.float32), y_real[idx].long()

    t0 = time.perf_counter()
    x_gen = _generate(generate, labels_gen, progress) if len(labels_gen) else torch.zeros(0, *IMAGE_SHAPE)
    seconds["generate"] = round(time.perf_counter() - t0, 2)

    if mix is None:
        steps = steps_for(num, epochs, recipe.batch_size)
        acc_gen, correct_gen, s = _train_and_test(x_gen, labels_gen, real_test, steps, seed, recipe, "train generated",
                                                  progress)
        seconds["train generated"] = round(s, 2)
    else:
        steps = steps_for(len(xr) + len(x_gen), epochs, recipe.batch_size)
        acc_gen, correct_gen, s = _train_and_test(torch.cat([xr, x_gen]), torch.cat([yr, labels_gen]), real_test, steps,
                                                  seed, recipe, "train mix", progress)
        seconds["train mix"] = round(s, 2)

    # the real-only classifier: same recipe, same steps, the real images alone (cached)
    key = {"dataset": dataset, "num_real": n_real, "steps": steps, "seed": seed, "recipe": recipe.describe(),
           "torch_version": torch.__version__, "threads": torch.get_num_threads(), "test_num": len(real_test[1]),
           "version": 1}
    cache = _cache_file(Path(home).expanduser(), key) if home is not None else None
    cached = _cached_accuracy(cache, key) if cache is not None and use_cache else None
    if cached is not None:
        acc_real, correct_real = cached["accuracy"], cached["correct"]
        cache_hit = True
    else:
        if len(xr) < recipe.batch_size:
            raise ValueError(f"need at least {recipe.batch_size} real training images, got {len(xr)}")
        acc_real, correct_real, s = _train_and_test(xr, yr, real_test, steps, seed, recipe, "train real", progress)
        seconds["train real"] = round(s, 2)
        cache_hit = None if cache is None else False
        if cache is not None:
            from gancli.fsutil import atomic_write_json

            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache, {"key": key, "accuracy": acc_real, "correct": correct_real,
                                      "seconds": seconds["train real"]})

    real_only = {"train": {"generated": 0, "real": n_real, "steps": steps}, "real_split": "train",
                 "correct": correct_real}
    if mix is None:
        values = {"cas": acc_gen, "cas_real": acc_real, "cas_ratio": acc_gen / acc_real if acc_real else float("nan")}
        train_gen = {"train": {"generated": len(labels_gen), "real": 0, "steps": steps,
                               "per_class": label_counts(labels_gen)}, "correct": correct_gen}
        protocols = {"cas": train_gen, "cas_real": real_only,
                     "cas_ratio": {"of": "cas / cas_real", "train": train_gen["train"]}}
    else:
        values = {"cas_mix": acc_gen, "cas_real_only": acc_real, "cas_mix_gain": acc_gen - acc_real}
        train_mix = {"train": {"generated": len(labels_gen), "real": n_real, "mix": mix, "steps": steps}, "correct": correct_gen}
        protocols = {"cas_mix": train_mix, "cas_real_only": real_only,
                     "cas_mix_gain": {"of": "cas_mix - cas_real_only", "train": train_mix["train"]}}
    results = [{"metric": name, "value": value, "protocol": {**base_protocol, **protocols[name]}}
               for name, value in values.items()]
    return CasResult(values=values, results=results, seconds=seconds, cache_hit=cache_hit)
