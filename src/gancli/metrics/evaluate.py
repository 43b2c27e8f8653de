"""Evaluation protocols: features of generated and reference images -> metrics, each
result carrying the protocol that produced it.

Two protocols (``--protocol``):

* ``lenet`` (default for MNIST): gancli's shipped LeNet-MNIST classifier
  (:mod:`gancli.metrics.lenet`). Fréchet distance in its 128-d penultimate features
  (**FD-LeNet**, never called FID), classifier IS, KID / precision-recall in the same
  features, and the mode-coverage report (:func:`gancli.metrics.coverage.class_coverage`).
* ``inception`` (default elsewhere): torch-fidelity's InceptionV3 (TF-exact resize to
  299x299, uint8 input, grayscale repeated to RGB): **FID** (arXiv 1706.08500), **KID**
  (arXiv 1801.01401), **IS** (arXiv 1606.03498), **precision / recall** (arXiv
  1904.06991) in its 2048-d pool features.

The maths is gancli's own (:mod:`gancli.metrics.frechet` etc.), not torch-fidelity's
``calculate_metrics``. Reference statistics are cached (:mod:`gancli.metrics.cache`).
Torch-free at import; no Typer, no Rich.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancli.errors import UsageError
from gancli.registry import Registry

PROTOCOLS = ("lenet", "inception")
DEFAULT_METRICS = ("fid", "is")
#: Below this many images a Fréchet distance is refused: the 2048-d Inception covariance
#: (and, by the same rule, any Fréchet distance gancli reports) would be badly estimated.
MIN_FID_SAMPLES = 2048
#: Below this many generated images a warning says the numbers are biased upwards.
WARN_BELOW_SAMPLES = 10_000
#: Datasets whose default protocol is ``lenet`` (the shipped classifier is trained on MNIST).
LENET_DATASETS = frozenset({"mnist"})


def default_protocol(dataset: str) -> str:
    """``lenet`` for MNIST, ``inception`` for every other dataset."""
    return "lenet" if dataset in LENET_DATASETS else "inception"


def metric_names(protocol: str) -> dict[str, str]:
    """Names of the reported values under ``protocol``: FD-LeNet is never called FID."""
    if protocol == "lenet":
        return {"fid": "fd_lenet", "kid": "kid_lenet", "is": "is_lenet", "precision": "precision_lenet",
                "recall": "recall_lenet"}
    return {"fid": "fid", "kid": "kid", "is": "is", "precision": "precision", "recall": "recall"}


def headline_metric(protocol: str) -> str:
    """The one number ``--eval-every`` tracks (lower is better): FD-LeNet or FID."""
    return metric_names(protocol)["fid"]


# -- feature extractors ----------------------------------------------------------------
class Extractor:
    """Images ``(n, C, H, W)`` float in [-1, 1] -> ``(features (n, F), logits (n, K))`` float64 CPU."""

    name: str
    weights_sha256: str
    resize: str
    feature_dim: int

    def outputs(self, images) -> tuple[Any, Any]:  # pragma: no cover - interface
        raise NotImplementedError


class LeNetExtractor(Extractor):
    """The shipped LeNet-MNIST classifier (penultimate 128-d features, 10 logits)."""

    resize = "none (1x28x28 input, as trained)"

    def __init__(self, device, batch_size: int = 500):
        from gancli.metrics.lenet import FEATURE_DIM, lenet_info, load_lenet

        info = lenet_info()
        self.model = load_lenet(device)
        self.batch_size = batch_size
        self.weights_sha256 = info["weights_sha256"]
        acc = info.get("test_accuracy")
        self.name = "gancli LeNet-MNIST" + (f" (MNIST test accuracy {float(acc):.2%})" if acc is not None else "")
        self.feature_dim = FEATURE_DIM

    @staticmethod
    def check_shape(channels: int, resolution: int) -> None:
        if (channels, resolution) != (1, 28):
            raise UsageError(f"--protocol lenet needs 1x28x28 images (MNIST), got {channels}x{resolution}x{resolution}; "
                             "use --protocol inception")

    def outputs(self, images):
        from gancli.metrics.lenet import lenet_outputs

        return lenet_outputs(self.model, images, self.batch_size)


class InceptionProtocolExtractor(Extractor):
    """torch-fidelity's InceptionV3: 2048-d pool features and 1008 unbiased logits."""

    def __init__(self, weights: str | None, device, batch_size: int = 64,
                 on_download: Callable[[str, Path], None] | None = None):
        from gancli.metrics.inception import InceptionExtractor, resolve_inception_weights

        self.net = InceptionExtractor(resolve_inception_weights(weights, on_download=on_download), device)
        self.batch_size = batch_size
        self.name = self.net.name
        self.resize = self.net.resize
        self.weights_sha256 = self.net.weights_sha256
        self.feature_dim = self.net.feature_dims["pool"]

    def outputs(self, images):
        out = self.net.features(images, batch_size=self.batch_size)
        return out["pool"], out["logits"]


def build_extractor(protocol: str, device, batch_size: int, inception_weights: str | None = None,
                    on_download: Callable[[str, Path], None] | None = None) -> Extractor:
    """Raises UsageError (unknown protocol, bad weights path) / GancliError (weights unavailable)."""
    if protocol == "lenet":
        return LeNetExtractor(device, batch_size=max(batch_size, 1))
    if protocol == "inception":
        return InceptionProtocolExtractor(inception_weights, device, batch_size=min(batch_size, 64),
                                          on_download=on_download)
    raise UsageError(f"unknown protocol {protocol!r}; valid choices: {', '.join(PROTOCOLS)}")


# -- image sources -------------------------------------------------------------------------
@dataclass
class ImageSource:
    """A stream of images in [-1, 1]: generated by a G, or read from a dataset / folder.

    Attributes:
        describe: provenance for the protocol record (run, step, EMA or raw; dataset:split).
        num: images the stream yields.
        batches: ``batches(batch_size)`` -> iterator of ``(images (n, C, H, W) float32 in
            [-1, 1], labels (n,) int64 or None)``; labels are the classes a conditional G
            was asked for.
        cache_id: ``(dataset, split)`` when the source is a fixed dataset split whose
            statistics may be cached; None otherwise.
    """

    describe: dict[str, Any]
    num: int
    channels: int
    resolution: int
    batches: Callable[[int], Iterator[tuple[Any, Any]]]
    cache_id: tuple[str, str] | None = None


def generator_source(G, num: int, seed: int, device, describe: dict[str, Any]) -> ImageSource:
    """``num`` images of generator ``G`` from the latents ``gan sample --seed seed`` uses
    (``latents(num, nz, seed)``; conditional G: uniformly random classes from ``seed + 1``)."""
    import torch

    from gancli.seeding import latents, random_labels

    z_all = latents(num, G.nz, seed, "cpu")
    y_all = random_labels(num, G.num_classes, seed, "cpu") if G.num_classes else None

    def batches(batch_size: int):
        was_training = G.training
        G.eval()  # BatchNorm running statistics; restored below (a G still training stays in train mode)
        try:
            with torch.no_grad():
                for i in range(0, num, batch_size):
                    z = z_all[i:i + batch_size].to(device)
                    y = y_all[i:i + batch_size] if y_all is not None else None
                    x = G(z, None if y is None else y.to(device)).float().clamp_(-1, 1)
                    yield x, y
        finally:
            G.train(was_training)

    return ImageSource({**describe, "kind": "generator",
                        "classes": "uniform random" if G.num_classes else None},
                       num, G.img_channels, G.img_resolution, batches)


def data_source(images_uint8, describe: dict[str, Any], cache_id: tuple[str, str] | None = None) -> ImageSource:
    """A preloaded ``(N, C, H, W)`` uint8 dataset split or folder as a source."""

    def batches(batch_size: int):
        for i in range(0, len(images_uint8), batch_size):
            yield images_uint8[i:i + batch_size].float().div_(127.5).sub_(1.0), None

    n, c, h, _ = images_uint8.shape
    return ImageSource(describe, int(n), int(c), int(h), batches, cache_id)


# -- the evaluation -------------------------------------------------------------------------
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
class Evaluation:
    """Results of one evaluation: ``results`` is a list of ``{"metric", "value", ...,
    "protocol"}``; ``values`` maps metric name -> headline number."""

    results: list[dict[str, Any]]
    values: dict[str, float]
    protocol: dict[str, Any]
    seconds: float
    cache_hit: bool | None = None
    notes: list[str] = field(default_factory=list)


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


def _features(extractor: Extractor, source: ImageSource, batch_size: int):
    import torch

    feats, logits, labels = [], [], []
    for x, y in source.batches(batch_size):
        f, lg = extractor.outputs(x)
        feats.append(f.float())
        logits.append(lg)
        if y is not None:
            labels.append(y)
    f = torch.cat(feats) if feats else torch.zeros(0, extractor.feature_dim)
    lg = torch.cat(logits) if logits else None
    return f, lg, (torch.cat(labels) if labels else None)


def reference_stats(extractor: Extractor, source: ImageSource, opts: EvalOptions, need_features: bool):
    """``(mu, sigma, features or None, cache_hit)`` of the reference images, through the cache."""
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
    f, _, _ = _features(extractor, source, opts.batch_size)
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
             reference: tuple[Any, Any, Any, bool | None] | None = None) -> Evaluation:
    """Compute ``opts.metrics`` (names of :data:`METRICS`) for ``fake`` against ``real`` with
    ``extractor``; under the ``lenet`` protocol also the mode-coverage report
    (classes covered, KL to uniform) and, for a conditional G, the class accuracy.

    Args:
        reference: ``(mu, sigma, features or None, cache_hit)`` of ``real`` computed
            before (:func:`reference_stats`), e.g. once for all evaluations during
            training; None = computed here (through the cache).

    Returns:
        :class:`Evaluation`; every result holds the full protocol: metric, feature
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
    f_fake, logits, y_asked = _features(extractor, fake, opts.batch_size)
    if reference is None or (need_real_features and reference[2] is None):
        reference = reference_stats(extractor, real, opts, need_real_features)
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
    return Evaluation(results, values, protocol, time.perf_counter() - t0, hit)


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

    def __call__(self, G, describe: dict[str, Any]) -> Evaluation:
        """Evaluate ``G`` (its mode is restored afterwards); ``describe``: run, step, weights."""
        fake = generator_source(G, self.num_samples, self.opts.seed, self.device, describe)
        return evaluate(fake, self.real, self.extractor, self.opts, reference=self._reference)
