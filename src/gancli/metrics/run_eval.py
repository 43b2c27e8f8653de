"""``gan evaluate`` as library functions: load what is scored, score it, record it.

* :func:`evaluate_generator` -- a checkpoint or bundle's generator: FID / KID / IS / PR, or
  the offline LeNet protocol (:mod:`gancli.metrics.evaluate`).
* :func:`evaluate_folder` -- an image folder, the same way.
* :func:`gancli.metrics.run_cas.evaluate_cas` (``--cas``), in a module of its own.

Each validates its settings, returns a :class:`Report` holding the JSON document ``gan
evaluate --json`` prints, and appends a ``"kind": "eval"`` record to the run's
metrics.jsonl when given the run. No Typer, no Rich: warnings, downloads and progress go
through callbacks. Torch-free at import. For example::

    from gancli.metrics.run_eval import EvalSettings, evaluate_generator
    from gancli.runs import RunStore

    run = RunStore("~/.cache/gancli").resolve("run-3")
    report = evaluate_generator(run.checkpoint_path(), EvalSettings(metrics=("fid",), num_samples=10_000),
                                data_root="data", run=run)
    report.doc["fd_lenet"], report.result.protocol["weights_sha256"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gancli.errors import UsageError
from gancli.metrics.evaluate import DEFAULT_METRICS, METRICS, EvalOptions, check_num_samples
from gancli.metrics.extractors import PROTOCOLS
from gancli.metrics.sources import ImageSource

#: ``-n`` of ``gan evaluate``, and of ``--fast``.
DEFAULT_SAMPLES, FAST_SAMPLES = 50_000, 10_000
#: ``"reference_cache"`` / ``"baseline_cache"`` of the JSON document, by cache hit.
CACHE_WORDS = {True: "hit", False: "miss", None: "off"}


@dataclass(frozen=True)
class EvalSettings:
    """What :func:`evaluate_generator` / :func:`evaluate_folder` compute, and how.

    Attributes:
        metrics: names of :data:`~gancli.metrics.evaluate.METRICS` (``fid``, ``kid``, ``is``, ``pr``).
        protocol: ``lenet`` or ``inception``; None = ``lenet`` for MNIST references, else ``inception``.
        num_samples: images generated (>= 1; >= 2048 with ``fid``); ignored for a folder (all of it).
        batch_size: images per forward pass (>= 1; Inception takes at most 64).
        seed: latents (as ``gan sample --seed``) and KID / IS subsets, in [0, 2^63 - 1] (:data:`gancli.config.MAX_SEED`).
        ema: use the EMA generator when the checkpoint has one.
        use_cache: read the reference statistics from the cache (they are written either way).
        inception_weights: InceptionV3 weights file; None = the environment, hub cache or download.

    Raises:
        UsageError: a bad batch size, seed or protocol (on construction).
    """

    metrics: tuple[str, ...] = DEFAULT_METRICS
    protocol: str | None = None
    num_samples: int = DEFAULT_SAMPLES
    batch_size: int = 256
    seed: int = 0
    ema: bool = True
    use_cache: bool = True
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        from gancli.seeding import check_seed

        check_seed(self.seed)
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise UsageError(f"unknown protocol {self.protocol!r}; valid choices: {', '.join(PROTOCOLS)}")
        for m in self.metrics:
            METRICS.get(m)  # UnknownNameError naming the valid ones


@dataclass
class Report:
    """What one ``gan evaluate`` measured.

    Attributes:
        result: the :class:`~gancli.metrics.evaluate.EvalResult` (or, from
            :func:`~gancli.metrics.run_cas.evaluate_cas`, :class:`~gancli.metrics.cas.CasResult`).
        doc: the JSON document of ``gan evaluate --json``: ``step``, every value by name,
            ``results`` (each with its protocol), ``seconds``, the cache word (``hit``,
            ``miss``, ``off``) and, when appended to a run, ``metrics_file``.
        seconds: wall time of the whole evaluation, loading included (``doc`` rounds it).
        notes: warnings given (too few images for unbiased numbers).
    """

    result: Any
    doc: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)


def load_generator(path: Path, device, ema: bool = True):
    """``(G, DataConfig it was trained on or None)`` from a checkpoint ``.safetensors`` file
    (one read, generator parts only) or a bundle folder (no training config inside)."""
    from gancli.bundle import load_bundle
    from gancli.checkpoint import GENERATOR_PARTS, generator_from_checkpoint, load_checkpoint

    if Path(path).is_dir():
        return load_bundle(path, device=device, ema=ema), None
    ckpt = load_checkpoint(path, device="cpu", prefixes=GENERATOR_PARTS)
    return generator_from_checkpoint(ckpt, device=device, ema=ema), ckpt.config.data


def evaluate_generator(path: str | Path, settings: EvalSettings, *, data_root: str | Path, device="auto",
                       real: str | None = None, run=None, run_id: str | None = None, home: Path | None = None,
                       warn: Callable[[str], None] | None = None,
                       on_download: Callable[[str, Path], None] | None = None,
                       progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Score the generator of ``path`` (a checkpoint ``.safetensors`` file or a bundle folder)
    on ``settings.num_samples`` images drawn from the latents ``gan sample --seed`` uses.

    Args:
        settings: see :class:`EvalSettings`.
        data_root: the data directory (reference datasets).
        device: ``auto``, ``cpu``, ``cuda[:N]``, ``mps`` or a ``torch.device``.
        real: reference images, ``DATASET[:split]`` or an image folder; None = the whole train
            split of the dataset the generator was trained on (a bundle's run config, from ``run``).
        run: the :class:`~gancli.runs.Run` the generator comes from: its metrics.jsonl gets the
            record; None = no record.
        run_id: the run named in the protocol record; None = ``run``'s id.
        home: the gancli home (statistics cache); None = the default.
        warn: called with each warning before the images are scored.
        on_download: called as ``(url, destination)`` before the Inception weights are downloaded.
        progress: ``(phase, images done, total)`` during each pass over images (generating and
            scoring; the reference statistics when not cached): see
            :data:`gancli.metrics.evaluate.Progress`.

    Returns:
        :class:`Report`.

    Raises:
        UsageError: too few samples, unknown dataset, shapes the protocol cannot take.
        GancliError: unreadable checkpoint or bundle, weights unavailable.
    """
    from gancli.metrics.sources import generator_source, reference_source

    t0 = time.perf_counter()
    dev = as_device(device)
    check_num_samples(settings.num_samples, settings.metrics)  # before loading anything heavy
    G, train_data = load_generator(Path(path), dev, settings.ema)
    if train_data is None and run is not None:
        train_data = run.read_config().data
    run_id = run_id if run_id is not None else getattr(run, "id", None)
    describe = {"run": run_id, "checkpoint": str(path), "step": G.step, "weights": "ema" if G.uses_ema else "raw"}
    fake = generator_source(G, settings.num_samples, settings.seed, dev, describe)
    reference = reference_source(real, data_root, train_data, fake.channels, fake.resolution)
    return _score(fake, reference, G.step, settings, dev, home, run, warn, on_download, t0, progress)


def evaluate_folder(folder: str | Path, real: str, settings: EvalSettings, *, data_root: str | Path, device="auto",
                    home: Path | None = None, warn: Callable[[str], None] | None = None,
                    on_download: Callable[[str, Path], None] | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Score all images of ``folder`` against ``real`` (``DATASET[:split]`` or an image
    folder), resized to the reference's shape; as :func:`evaluate_generator` otherwise
    (``settings.num_samples`` is not used; nothing is appended anywhere).

    Raises:
        UsageError: ``real`` is None, too few images, unknown dataset.
    """
    from gancli.metrics.sources import folder_source, reference_source

    t0 = time.perf_counter()
    dev = as_device(device)
    if real is None:
        raise UsageError("--fake DIR needs --real DATASET[:split] or --real DIR to compare against")
    reference = reference_source(real, data_root)
    fake = folder_source(folder, reference[0].channels, reference[0].resolution, data_root)
    return _score(fake, reference, None, settings, dev, home, None, warn, on_download, t0, progress)


def as_device(device):
    """``device`` as a :class:`torch.device`: a spelling (``auto``, ``cpu``, ``cuda:1``) is
    resolved as ``--device`` is (UsageError when the machine lacks it)."""
    if isinstance(device, str):
        from gancli.engine.device import resolve_device

        return resolve_device(device)
    return device


def _score(fake: ImageSource, reference: tuple[ImageSource, str | None], step: int | None, settings: EvalSettings,
           device, home: Path | None, run, warn, on_download, t0: float, progress=None) -> Report:
    from gancli.metrics.evaluate import evaluate
    from gancli.metrics.extractors import LeNetExtractor, build_extractor, default_protocol

    real, ref_dataset = reference
    protocol = settings.protocol or default_protocol(ref_dataset or "")
    warning = check_num_samples(fake.num, settings.metrics)
    notes = [warning] if warning else []
    if protocol == "lenet":
        LeNetExtractor.check_shape(fake.channels, fake.resolution)
    extractor = build_extractor(protocol, device, settings.batch_size, settings.inception_weights,
                                on_download=on_download)
    for n in notes:
        if warn is not None:
            warn(n)
    result = evaluate(fake, real, extractor, EvalOptions(protocol=protocol, metrics=settings.metrics,
                                                         batch_size=settings.batch_size, seed=settings.seed,
                                                         use_cache=settings.use_cache, home=home),
                      progress=progress)
    seconds = time.perf_counter() - t0
    doc = {"step": step, **result.values, "results": result.results, "seconds": round(seconds, 2),
           "reference_cache": CACHE_WORDS[result.cache_hit]}
    append_record(run, step, result.values, result.results, doc)
    return Report(result, doc, seconds, notes)


def append_record(run, step: int | None, values: dict[str, float], results: list[dict[str, Any]],
                  doc: dict[str, Any]) -> None:
    """The ``"kind": "eval"`` record of ``run`` (None: nothing), and ``doc["metrics_file"]``."""
    if run is None:
        return
    run.append_metrics({"kind": "eval", "step": step if step is not None else 0,
                        **{k: round(v, 6) for k, v in values.items()}, "results": results,
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    doc["metrics_file"] = str(run.metrics_path)
