"""The evaluation: features of generated and reference images -> metrics, each result
carrying the protocol that produced it (``gan evaluate`` and ``gan train --eval-every``).

Under the ``lenet`` protocol (MNIST) the Fréchet distance is **FD-LeNet** (never called
FID), with classifier IS, KID / precision-recall in the same features and the mode-coverage
report (:func:`gancli.metrics.coverage.class_coverage`); under ``inception`` **FID** (arXiv
1706.08500), **KID** (arXiv 1801.01401), **IS** (arXiv 1606.03498) and **precision /
recall** (arXiv 1904.06991) in InceptionV3's 2048-d pool features.

The protocols' feature extractors are in :mod:`gancli.metrics.extractors`, the images scored
in :mod:`gancli.metrics.sources`, the reported names and their direction in
:mod:`gancli.metrics.catalog`. The maths is gancli's own (:mod:`gancli.metrics.frechet`
etc.), not torch-fidelity's ``calculate_metrics``. Reference statistics are cached
(:mod:`gancli.metrics.cache`). Torch-free at import; no Typer, no Rich.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancli.errors import UsageError
from gancli.metrics.catalog import headline_metric, metric_names
from gancli.metrics.extractors import Extractor, LeNetExtractor, build_extractor, default_protocol
from gancli.metrics.sources import ImageSource, data_source, generator_source
from gancli.registry import Registry

__all__ = ["DEFAULT_METRICS", "METRICS", "MIN_FID_SAMPLES", "WARN_BELOW_SAMPLES", "EvalOptions", "EvalResult",
           "TrainingEvaluator", "check_num_samples", "evaluate", "protocol_record", "reference_stats"]

DEFAULT_METRICS = ("fid", "is")
#: Below this many images a Fréchet distance is refused: the 2048-d Inception covariance
#: (and, by the same rule, any Fréchet distance gancli reports) would be badly estimated.
MIN_FID_SAMPLES = 2048
#: Below this many generated images a warning says the numbers are biased upwards.
WARN_BELOW_SAMPLES = 10_000


@dataclass
class EvalOptions:
    """What to compute. ``metrics`` from :data:`METRICS` (``pr`` = precision and recall)."""

    protocol: str
    metrics: tuple[str, ...] = DEFAULT_METRICS
    batch_size: int = 256
    seed: int = 0
    use_cache: bool = True
    home: Path | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3


@dataclass
class EvalResult:
    """Results of one evaluation: ``results`` is a list of ``{"metric", "value", ...,
    "protocol"}``; ``values`` maps metric name -> headline number; ``figures``: the numbers a
    ``--eval-every`` record carries at its top level (None: the headline alone; translation runs:
    every figure, :class:`~gancli.metrics.translation_eval.TranslationTrainingEvaluator`)."""

    results: list[dict[str, Any]]
    values: dict[str, float]
    protocol: dict[str, Any]
    seconds: float
    cache_hit: bool | None = None
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] | None = None


def check_num_samples(num: int, metrics: tuple[str, ...]) -> str | None:
    """Refuse (UsageError) a Fréchet distance from fewer than :data:`MIN_FID_SAMPLES`
    images; return a warning below :data:`WARN_BELOW_SAMPLES`, else None."""
    if num < 1:
        raise UsageError(f"--num-samples must be >= 1, got {num}")
    if "fid" in metrics and num < MIN_FID_SAMPLES:
        raise UsageError(f"--num-samples {num} is too few for a Fréchet distance (FID / FD-LeNet); "
                         f"use at least {MIN_FID_SAMPLES:,} (50,000 is the standard)")
    if num < WARN_BELOW_SAMPLES:
        return (f"only {num:,} generated images: FID-type numbers are biased upwards below "
                f"{WARN_BELOW_SAMPLES:,} and comparable only at equal N")
    return None


#: ``progress(phase, done, total)``: images of ``phase`` done so far (:func:`phase_label`).
Progress = Callable[[str, int, int], None]


def phase_label(source: ImageSource, reference: bool) -> str:
    """What the progress display calls the pass over ``source``: ``reference statistics
    (mnist train)``, ``generating and scoring images``, ``scoring <folder>``."""
    d = source.describe
    if reference:
        where = f"{d['dataset']} {d.get('split', '')}".strip() if "dataset" in d else d.get("folder", "")
        return f"reference statistics ({where})" if where else "reference statistics"
    if d.get("kind") == "generator":
        return "generating and scoring images"
    return f"scoring {d['folder']}" if "folder" in d else "scoring images"


def _features(extractor: Extractor, source: ImageSource, batch_size: int, progress: Progress | None = None,
              phase: str = ""):
    import torch

    feats, logits, labels = [], [], []
    done = 0
    for x, y in source.batches(batch_size):
        if progress is not None:
            progress(phase, done, source.num)
        f, lg = extractor.outputs(x)
        done += len(x)
        feats.append(f.float())
        logits.append(lg)
        if y is not None:
            labels.append(y)
    if progress is not None:
        progress(phase, done, source.num)
    f = torch.cat(feats) if feats else torch.zeros(0, extractor.feature_dim)
    lg = torch.cat(logits) if logits else None
    return f, lg, (torch.cat(labels) if labels else None)


def reference_stats(extractor: Extractor, source: ImageSource, opts: EvalOptions, need_features: bool,
                    progress: Progress | None = None):
    """``(mu, sigma, features or None, cache_hit)`` of the reference images, through the cache;
    ``progress`` is told the pass over the images (none on a cache hit)."""
    import numpy as np

    from gancli.metrics.cache import load_stats, save_stats, stats_key
    from gancli.metrics.frechet import feature_stats

    key = None
    if source.cache_id is not None and opts.use_cache:
        dataset, split = source.cache_id
        content = "features" if need_features else "stats"
        key = stats_key(dataset, split, f"{extractor.name}/{content}", extractor.weights_sha256,
                        source.resolution, source.num)
        hit = load_stats(key, home=opts.home)
        if hit is not None:
            arrays, _ = hit
            return arrays["mu"], arrays["sigma"], arrays.get("features"), True
    f, _, _ = _features(extractor, source, opts.batch_size, progress, phase_label(source, reference=True))
    mu, sigma = feature_stats(f)
    feats = f.numpy().astype(np.float32) if need_features else None
    if key is not None:
        arrays = {"mu": mu, "sigma": sigma}
        if feats is not None:
            arrays["features"] = feats
        save_stats(key, arrays, {"describe": source.describe, "extractor": extractor.name,
                                 "weights_sha256": extractor.weights_sha256}, home=opts.home)
    return mu, sigma, feats, (False if key is not None else None)


def protocol_record(extractor: Extractor, fake: ImageSource, real: ImageSource, opts: EvalOptions) -> dict[str, Any]:
    """What every result carries: how it was measured."""
    from gancli._version import __version__

    return {
        "protocol": opts.protocol,
        "feature_extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "resize": extractor.resize,
        "num_generated": fake.num,
        "num_reference": real.num,
        "reference": real.describe,
        "generated": fake.describe,
        "seed": opts.seed,
        "gancli_version": __version__,
    }


@dataclass
class _Features:
    """What the metrics of one evaluation read: features and logits of the generated
    images, the reference statistics (and features when a metric needs them)."""

    fake: Any  # (n, F) float32
    logits: Any  # (n, K) or None
    mu_real: Any
    sigma_real: Any
    real: Any  # (m, F) float32 or None
    num_fake: int


#: ``--fid`` / ``--kid`` / ``--is`` / ``--pr``: name -> ``compute(features, opts, names, add)``,
#: where ``add(metric_name, value, **detail)`` records a result. ``needs_real_features``
#: in the entry's defaults says whether the reference features (not only their
#: statistics) must be kept.
METRICS: Registry[Callable[..., None]] = Registry("metric")


@METRICS.register("fid", "Fréchet distance of the feature distributions (Heusel et al. 2017, arXiv 1706.08500)")
def _fid(f: _Features, opts: EvalOptions, names: dict[str, str], add: Callable[..., None]) -> None:
    from gancli.metrics.frechet import feature_stats, frechet_distance

    mu_f, sigma_f = feature_stats(f.fake)
    add(names["fid"], frechet_distance(mu_f, sigma_f, f.mu_real, f.sigma_real))


@METRICS.register("kid", "Kernel Inception Distance, unbiased MMD^2 (Binkowski et al. 2018, arXiv 1801.01401)",
                  defaults={"needs_real_features": True})
def _kid(f: _Features, opts: EvalOptions, names: dict[str, str], add: Callable[..., None]) -> None:
    from gancli.metrics.kid import kernel_inception_distance

    mean, std = kernel_inception_distance(f.fake, f.real, opts.kid_subsets, opts.kid_subset_size, seed=opts.seed)
    add(names["kid"], mean, std=std, subsets=opts.kid_subsets,
        subset_size=min(opts.kid_subset_size, f.num_fake, len(f.real)))


@METRICS.register("is", "Inception Score (Salimans et al. 2016, arXiv 1606.03498)")
def _is(f: _Features, opts: EvalOptions, names: dict[str, str], add: Callable[..., None]) -> None:
    from gancli.metrics.inception_score import inception_score

    mean, std = inception_score(f.logits, splits=opts.is_splits, seed=opts.seed, from_logits=True)
    add(names["is"], mean, std=std, splits=opts.is_splits)


@METRICS.register("pr", "improved precision and recall, k-NN manifolds (Kynkaanniemi et al. 2019, arXiv 1904.06991)",
                  defaults={"needs_real_features": True})
def _pr(f: _Features, opts: EvalOptions, names: dict[str, str], add: Callable[..., None]) -> None:
    import torch

    from gancli.metrics.precision_recall import precision_recall

    p, r = precision_recall(torch.as_tensor(f.real), f.fake, k=opts.pr_k)
    add(names["precision"], p, k=opts.pr_k)
    add(names["recall"], r, k=opts.pr_k)


def evaluate(fake: ImageSource, real: ImageSource, extractor: Extractor, opts: EvalOptions,
             reference: tuple[Any, Any, Any, bool | None] | None = None,
             progress: Progress | None = None) -> EvalResult:
    """Compute ``opts.metrics`` (names of :data:`METRICS`) for ``fake`` against ``real`` with
    ``extractor``; under the ``lenet`` protocol also the mode-coverage report
    (classes covered, KL to uniform) and, for a conditional G, the class accuracy.

    Args:
        reference: ``(mu, sigma, features or None, cache_hit)`` of ``real`` computed
            before (:func:`reference_stats`), e.g. once for all evaluations during
            training; None = computed here (through the cache).

    Returns:
        :class:`EvalResult`; every result holds the full protocol: metric, feature
        extractor, weights sha256, resize method, N generated, N reference, reference
        dataset + split, generator weights (EMA or raw, step), seed, gancli version.

    Raises:
        UsageError: image shapes of ``fake`` and ``real`` differ, or too few images.
        UnknownNameError: a metric that is not registered.
    """
    import time

    from gancli.metrics.coverage import class_coverage

    t0 = time.perf_counter()
    if (fake.channels, fake.resolution) != (real.channels, real.resolution):
        raise UsageError(f"generated images are {fake.channels}x{fake.resolution}x{fake.resolution} but the "
                         f"reference images are {real.channels}x{real.resolution}x{real.resolution}")
    computes = [(m, METRICS.get(m)) for m in opts.metrics]
    names = metric_names(opts.protocol)
    protocol = protocol_record(extractor, fake, real, opts)
    results: list[dict[str, Any]] = []
    values: dict[str, float] = {}

    def add(metric: str, value: float, **extra: Any) -> None:
        values[metric] = value
        results.append({"metric": metric, "value": value, **extra, "protocol": protocol})

    need_real_features = any(METRICS.entry(m).defaults.get("needs_real_features") for m, _ in computes)
    f_fake, logits, y_asked = _features(extractor, fake, opts.batch_size, progress, phase_label(fake, reference=False))
    if reference is None or (need_real_features and reference[2] is None):
        reference = reference_stats(extractor, real, opts, need_real_features, progress)
    mu_r, sigma_r, f_real, hit = reference
    feats = _Features(f_fake, logits, mu_r, sigma_r, f_real, fake.num)
    for _, compute in computes:
        compute(feats, opts, names, add)
    if opts.protocol == "lenet":
        pred = logits.argmax(1)
        cov = class_coverage(pred, num_classes=logits.shape[1])
        add("classes_covered", cov["classes_covered"], histogram=cov["histogram"],
            kl_to_uniform=cov["kl_to_uniform"], min_count=cov["min_count"])
        values["kl_to_uniform"] = cov["kl_to_uniform"]
        if y_asked is not None:  # conditional G: does the classifier see the class it was asked for?
            add("class_accuracy", float((pred == y_asked).double().mean()))
    return EvalResult(results, values, protocol, time.perf_counter() - t0, hit)


class TrainingEvaluator:
    """``gan train --eval-every``: the default protocol's headline metric (FD-LeNet for
    MNIST, FID otherwise) of a generator against the training dataset's full train split,
    through the same :func:`evaluate` as ``gan evaluate``.

    Built before the run directory exists, so a missing Inception weights file or an
    image shape the protocol cannot take fails first. The reference statistics are
    computed (or read from the cache) once, here.

    Args:
        data_cfg: the run's :class:`~gancli.config.DataConfig`.
        data_root: the data directory.
        num_samples: generated images per evaluation (>= :data:`MIN_FID_SAMPLES`).
        device: where G, the extractor and the reference pass run.
        home: the gancli home (for the statistics cache); None = the default.
        train_data: the run's training images, already loaded; used as the reference
            when they are the whole train split (no ``--limit``), else the split is loaded.

    Raises:
        UsageError / GancliError: as :func:`build_extractor`, :func:`check_num_samples`
            and :func:`gancli.data.load_split`.
    """

    def __init__(self, data_cfg, data_root, num_samples: int, device, home: Path | None = None,
                 batch_size: int = 256, train_data=None):
        from dataclasses import replace

        from gancli.data import load_split

        check_num_samples(num_samples, ("fid",))
        self.num_samples = num_samples
        self.device = device
        self.protocol = default_protocol(data_cfg.dataset)
        self.headline = headline_metric(self.protocol)
        ref_cfg = replace(data_cfg, split="train", limit=0)
        whole = train_data is not None and data_cfg.split == "train" and not data_cfg.limit
        ref = train_data if whole else load_split(ref_cfg, data_root)
        n, c, h, _ = ref.images.shape
        if self.protocol == "lenet":
            LeNetExtractor.check_shape(int(c), int(h))
        is_folder = Path(ref_cfg.dataset).is_dir()
        self.real = data_source(ref.images, {"folder": ref_cfg.dataset} if is_folder
                                else {"dataset": ref_cfg.dataset, "split": "train"},
                                None if is_folder else (ref_cfg.dataset, "train"))
        self.extractor = build_extractor(self.protocol, device, batch_size)
        self.opts = EvalOptions(protocol=self.protocol, metrics=("fid",), batch_size=batch_size, home=home)
        self._reference = reference_stats(self.extractor, self.real, self.opts, need_features=False)

    def __call__(self, G, describe: dict[str, Any]) -> EvalResult:
        """Evaluate ``G`` (its mode is restored afterwards); ``describe``: run, step, weights."""
        fake = generator_source(G, self.num_samples, self.opts.seed, self.device, describe)
        return evaluate(fake, self.real, self.extractor, self.opts, reference=self._reference)
