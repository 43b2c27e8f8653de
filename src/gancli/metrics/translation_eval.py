"""``gan evaluate`` on an image-to-image run (``gan train --task inpaint|superres|...``, issue #24):
how well its generator repairs held-out images, beside two baselines measured in the same call.

Protocol (docs/metrics.md, "Image-to-image runs"):

* **Images**: the held-out split of the run's dataset (MNIST, Fashion-MNIST, CIFAR-10: ``test``;
  CelebA: ``test``), at the run's image size and channels, the first ``num`` of them (None = all).
  An image folder has no held-out split: its own (training) images are scored, and the result
  says so (``"held_out": false`` and a note). ``real`` picks other clean images.
* **Corruption**: the run's own training corruption (:meth:`Translator.corrupt
  <gancli.translate.load.Translator.corrupt>`, the options it was trained with) at the evaluation
  seed ``derive_seed(seed, "eval-corrupt")`` (``seed`` = ``--seed``, default 0), applied in chunks
  of :data:`CORRUPT_CHUNK` images (chunk k at index k), so the damaged inputs depend neither on
  ``--batch-size`` nor on the device.
* **Rows**: ``run`` (:meth:`Translator.repair`: G's output, inpainting keeps the known pixels),
  ``identity`` (the corrupted input itself as the output: the damaged image, the upsampled low-res
  image, the noisy image; a 1-channel input (colorize, edges) repeated to the image's channels),
  ``baseline`` (``--baseline RUN``: another run of the same task, options and data, e.g. trained
  with ``--adv-weight 0``) and ``real`` (the clean targets themselves: label preservation only,
  the ceiling the others are read against).
* **Figures**, each against the clean targets paired by index: PSNR, SSIM and L1
  (:mod:`gancli.translate.quality`, torchmetrics inside); the Fréchet distance of the output set
  against the clean set in the features of the run's protocol (``lenet``: FD-LeNet, MNIST;
  ``inception``: FID, only where the Inception weights can be had), left out below
  :data:`~gancli.metrics.evaluate.MIN_FID_SAMPLES` images as ``gan evaluate`` refuses it; on MNIST
  the label preservation (:func:`~gancli.translate.quality.label_preservation`).
* **Paired and unpaired runs** (``--task paired|unpaired``: no corruption): test pairs instead,
  inputs and their true targets matched by file name (:mod:`gancli.metrics.translation_pairs`:
  the dataset folder's ``testA/`` + ``testB/``, ``test/``, or ``pairs``; ``direction`` ``b2a``
  swaps the sides of an unpaired run), the first ``num`` by name; ``identity`` is the input
  itself; label preservation when a ``labels.json`` names the digits of 1x28x28 images (which
  also makes FD-LeNet the default protocol). The protocol gains ``direction`` and ``pairs``;
  ``corruption_seed`` and ``corrupt_chunk`` are None.

No Typer, no Rich; torch-free at import. For example::

    from gancli.metrics.translation_eval import TranslationEvalSettings, evaluate_translation

    report = evaluate_translation("runs/run-4", TranslationEvalSettings(num=1000), data_root="data")
    report.doc["rows"]["run"]["psnr"], report.doc["rows"]["identity"]["psnr"]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gancli.errors import GancliError, UsageError
from gancli.metrics.extractors import PROTOCOLS

__all__ = ["CORRUPT_CHUNK", "ROWS", "SEED_PURPOSE", "TranslationEvalSettings", "TranslationTrainingEvaluator",
           "corrupted_chunks", "evaluate_translation", "identity_output", "repaired_sets", "translated_sets"]

#: Images corrupted per call of the corruption (chunk k is corrupted at index k).
CORRUPT_CHUNK = 500
#: The rows of the result, in order: the run, the corrupted input, ``--baseline``, the clean targets.
ROWS = ("run", "identity", "baseline", "real")
#: The purpose the evaluation's corruption seed is derived under (:func:`gancli.seeding.derive_seed`).
SEED_PURPOSE = "eval-corrupt"
#: Datasets whose digits the shipped LeNet reads (label preservation).
LABELLED_DIGITS = frozenset({"mnist"})


@dataclass(frozen=True)
class TranslationEvalSettings:
    """What :func:`evaluate_translation` computes, and how.

    Attributes:
        num: clean images scored, the first ``num`` of the split (>= 1); None = all of it.
        batch_size: images per forward pass (>= 1).
        seed: the corruption seed is ``derive_seed(seed, "eval-corrupt")``; in [0, 2^63 - 1].
        ema: use the EMA generators when the checkpoints have them.
        protocol: features of the Fréchet distance, ``lenet`` or ``inception``; None = ``lenet``
            for MNIST, else ``inception``.
        inception_weights: InceptionV3 weights file; None = the environment, hub cache or download.

    Raises:
        UsageError: a bad count, batch size, seed or protocol (on construction).
    """

    num: int | None = None
    batch_size: int = 256
    seed: int = 0
    ema: bool = True
    protocol: str | None = None
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        from gancli.seeding import check_seed

        if self.num is not None and self.num < 1:
            raise UsageError(f"--num-samples must be >= 1, got {self.num}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        check_seed(self.seed)
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise UsageError(f"unknown protocol {self.protocol!r}; valid choices: {', '.join(PROTOCOLS)}")


def identity_output(source, img_channels: int):
    """The identity baseline's output: the image part of G's input ``source`` ``(N, C_in, H, W)``
    -> ``(N, img_channels, H, W)``: its first ``img_channels`` channels (inpaint: the damaged
    image without the mask), or a 1-channel input repeated (colorize, edges on RGB)."""
    if source.shape[1] >= img_channels:
        return source[:, :img_channels]
    return source[:, :1].expand(-1, img_channels, -1, -1)


def _load(path, device, ema: bool, what: str, direction: str | None = None):
    from gancli.translate.load import load_translator

    try:
        return load_translator(path, device=device, ema=ema, direction=direction)
    except UsageError:
        if what == "run":
            raise
        raise UsageError(f"--baseline {path} is a generation run (--task generate); give an image-to-image run "
                         "of the same task, options and dataset (e.g. one trained with --adv-weight 0)") from None


def _check_baseline(run, base, base_label: str) -> None:
    """UsageError naming the first thing ``base`` differs from ``run`` in (task, corruption options, data)."""
    d_run, d_base = run.config.data, base.config.data
    for what, a, b in (("task", run.task, base.task), ("task options", run.options, base.options),
                       ("dataset", d_run.dataset, d_base.dataset),
                       ("images (channels x size)", (run.img_channels, d_run.image_size),
                        (base.img_channels, d_base.image_size))):
        if a != b:
            raise UsageError(f"--baseline {base_label} differs from the run evaluated in its {what}: {b} vs {a}; "
                             "give a run trained on the same task, options and dataset")


def _clean_images(translator, real: str | None, num: int | None, data_root, loaded=None):
    """``(images (N, C, H, W) uint8, labels (N,) or None, source record, dataset name or None, notes)``.
    ``loaded``: the run's training :class:`~gancli.data.ImageData`, already in memory: an image
    folder's images are then taken from it instead of being decoded again."""
    from gancli.config import DataConfig
    from gancli.data import describe, is_folder_path, load_split

    trained = translator.config.data
    notes: list[str] = []
    if real is not None and Path(real).is_dir():
        cfg = DataConfig(dataset=str(Path(real).resolve()), image_size=trained.image_size, channels=trained.channels)
        record = {"folder": cfg.dataset, "held_out": None}
    elif real is not None:
        name, _, split = real.partition(":")
        cfg = DataConfig(dataset=name, split=split or "test", image_size=trained.image_size,
                         channels=trained.channels)
        record = {"dataset": name, "split": cfg.split, "held_out": None}
    elif is_folder_path(trained.dataset) and Path(trained.dataset).is_dir():
        cfg = replace(trained, split="train", limit=0)
        record = {"folder": trained.dataset, "held_out": False}
        notes.append(f"the run trained on the image folder {trained.dataset}, which has no held-out split: "
                     "its own training images are scored (pass --real DIR for other images)")
        if loaded is not None:
            return loaded.images[:num] if num else loaded.images, None, record, None, notes
    else:
        sizes = describe(replace(trained, split="train", limit=0)).sizes
        split = next((s for s in ("test", "valid") if s in sizes), "train")
        cfg = replace(trained, split=split, limit=0)
        record = {"dataset": trained.dataset, "split": split, "held_out": split != "train"}
        if split == "train":
            notes.append(f"{trained.dataset} has no held-out split: its training images are scored")
    data = load_split(replace(cfg, limit=num or 0), data_root)
    labels = data.labels if record.get("dataset") in LABELLED_DIGITS else None
    return data.images, labels, record, record.get("dataset"), notes


def _outputs(translator, source, extra, batch_size: int):
    import torch

    outs = []
    for i in range(0, len(source), batch_size):
        part = {k: v[i:i + batch_size] for k, v in (extra or {}).items()}
        outs.append(translator.repair(source[i:i + batch_size], part).clamp_(-1, 1).cpu())
    return torch.cat(outs)


def repaired_sets(translator, images, corrupt_seed: int, batch_size: int = 256, baseline=None):
    """The images the figures compare: clean ``images`` corrupted at ``corrupt_seed`` (chunk k of
    :data:`CORRUPT_CHUNK` images at index k) and each row's output.

    Args:
        translator: the run's :class:`~gancli.translate.load.Translator`.
        images: ``(N, C, H, W)`` uint8 clean images, N >= 1.
        baseline: another Translator of the same task and options, or None.

    Returns:
        ``(clean, sets)``: ``clean`` ``(N, C, H, W)`` float32 in [-1, 1] on the CPU; ``sets`` maps
        ``run``, ``identity`` (and ``baseline``) to outputs of the same shape, in [-1, 1], CPU.
    """
    import torch

    clean, outs = [], {"run": [], "identity": [], **({"baseline": []} if baseline is not None else {})}
    for x, source, extra in corrupted_chunks(translator, images, corrupt_seed):
        clean.append(x)
        outs["identity"].append(identity_output(source, translator.img_channels).clamp(-1, 1).cpu())
        outs["run"].append(_outputs(translator, source, extra, batch_size))
        if baseline is not None:
            outs["baseline"].append(_outputs(baseline, source, extra, batch_size))
    return torch.cat(clean), {row: torch.cat(parts) for row, parts in outs.items()}


def corrupted_chunks(translator, images, corrupt_seed: int):
    """Yield ``(clean, source, extra)`` per chunk of :data:`CORRUPT_CHUNK` of the uint8 ``images``
    ``(N, C, H, W)``: the clean chunk as float32 in [-1, 1], G's input and the corruption's extras
    (:meth:`Translator.corrupt <gancli.translate.load.Translator.corrupt>` at ``corrupt_seed``,
    chunk k at index k), all on the CPU."""
    for k, start in enumerate(range(0, len(images), CORRUPT_CHUNK)):
        x = images[start:start + CORRUPT_CHUNK].float().div_(127.5).sub_(1.0)
        source, extra = translator.corrupt(x, corrupt_seed, k)
        yield x, source, extra


def translated_sets(translator, inputs, targets, batch_size: int = 256, baseline=None):
    """The images the figures compare on test pairs (paired and unpaired runs): ``inputs``
    ``(N, in_channels, H, W)`` and ``targets`` ``(N, img_channels, H, W)`` uint8, N >= 1.

    Returns:
        ``(targets, sets)`` as :func:`repaired_sets`: ``targets`` float32 in [-1, 1] on the CPU,
        ``sets`` maps ``run``, ``identity`` (the input itself) and ``baseline`` to outputs.
    """
    source = inputs.float().div_(127.5).sub_(1.0)
    sets = {"run": _outputs(translator, source, None, batch_size),
            "identity": identity_output(source, translator.img_channels).clamp(-1, 1).cpu()}
    if baseline is not None:
        sets["baseline"] = _outputs(baseline, source, None, batch_size)
    return targets.float().div_(127.5).sub_(1.0), {row: sets[row] for row in ROWS if row in sets}


def _fd_extractor(settings: TranslationEvalSettings, dataset: str | None, shape, num: int, device, notes,
                  on_download):
    """``(protocol, extractor)`` for the Fréchet distance, or ``(protocol, None)`` with a note why not."""
    from gancli.metrics.evaluate import MIN_FID_SAMPLES
    from gancli.metrics.extractors import LeNetExtractor, build_extractor, default_protocol

    protocol = settings.protocol or default_protocol(dataset or "")
    name = "FD-LeNet" if protocol == "lenet" else "FID"
    if num < MIN_FID_SAMPLES:
        notes.append(f"{name} left out: {num:,} images are too few for a Fréchet distance "
                     f"(at least {MIN_FID_SAMPLES:,}; the whole held-out split is the default)")
        return protocol, None
    if protocol == "lenet":
        try:
            LeNetExtractor.check_shape(shape[0], shape[1])
        except UsageError:
            if settings.protocol is not None:
                raise
            notes.append(f"FD-LeNet left out: the images are {shape[0]}x{shape[1]}x{shape[1]}, not MNIST's 1x28x28")
            return protocol, None
    try:
        return protocol, build_extractor(protocol, device, settings.batch_size, settings.inception_weights,
                                         on_download=on_download)
    except GancliError as e:
        if settings.protocol is not None or settings.inception_weights is not None:
            raise
        notes.append(f"FID left out: {e}")
        return protocol, None


def _stats(extractor, images, batch_size: int):
    """``(mu, sigma)`` of ``extractor``'s features of ``images`` ``(N, C, H, W)`` in [-1, 1]."""
    import torch

    from gancli.metrics.frechet import feature_stats

    feats = [extractor.outputs(images[i:i + batch_size])[0].float() for i in range(0, len(images), batch_size)]
    return feature_stats(torch.cat(feats))


def _frechet(extractor, sets: dict[str, Any], reference, batch_size: int) -> dict[str, float]:
    """Fréchet distance of each set against ``reference`` (images, or their ``(mu, sigma)``)."""
    from gancli.metrics.frechet import frechet_distance

    mu_r, sigma_r = reference if isinstance(reference, tuple) else _stats(extractor, reference, batch_size)
    return {row: frechet_distance(*_stats(extractor, images, batch_size), mu_r, sigma_r) for row, images in sets.items()}


def _figures(sets: dict[str, Any], clean, labels, extractor, fd_name: str, reference, device, batch_size: int,
             real_row: bool = False) -> dict[str, dict[str, float]]:
    """The figures of each set of outputs against ``clean`` ``(N, C, H, W)`` in [-1, 1] (paired by
    index): PSNR, SSIM, L1; with ``extractor`` the Fréchet distance ``fd_name`` against
    ``reference`` (images, or their ``(mu, sigma)``); with ``labels`` and 1x28x28 images the label
    preservation, and with ``real_row`` a ``real`` row holding that of ``clean`` itself. Raw
    floats (inf PSNR kept)."""
    from gancli.translate import quality

    out = {row: dict(quality.image_quality(images, clean, batch_size)) for row, images in sets.items()}
    if extractor is not None:
        for row, value in _frechet(extractor, sets, reference, batch_size).items():
            out[row][fd_name] = value
    if labels is not None and tuple(clean.shape[1:3]) == (1, 28):
        scored = {**sets, "real": clean} if real_row else sets
        for row, images in scored.items():
            out.setdefault(row, {})["label_preservation"] = quality.label_preservation(images, labels, device,
                                                                                       batch_size)
    return out


def _fd_record(extractor, protocol: str, fd_name: str) -> dict[str, Any] | None:
    """The ``fd`` entry of a protocol record: metric, protocol, extractor, its weights, resize."""
    return None if extractor is None else {"metric": fd_name, "protocol": protocol, "feature_extractor": extractor.name,
                                           "weights_sha256": extractor.weights_sha256, "resize": extractor.resize}


def _finite(value: float) -> float | None:
    """JSON number: rounded to 6 decimals; inf (PSNR of exact reproductions) -> None."""
    return round(value, 6) if math.isfinite(value) else None


def evaluate_translation(path: str | Path, settings: TranslationEvalSettings, *, data_root: str | Path,
                         device="auto", real: str | None = None, baseline: str | Path | None = None,
                         run=None, run_id: str | None = None, baseline_id: str | None = None,
                         pairs: str | Path | None = None, direction: str | None = None,
                         warn: Callable[[str], None] | None = None,
                         on_download: Callable[[str, Path], None] | None = None):
    """Score the translator of ``path`` (a checkpoint file or run directory) on held-out images
    corrupted as in training, beside the identity baseline and, given, ``baseline`` (module
    docstring: the protocol).

    Args:
        settings: see :class:`TranslationEvalSettings`.
        data_root: the data directory.
        device: ``auto``, ``cpu``, ``cuda[:N]``, ``mps`` or a ``torch.device``.
        real: the clean images, ``DATASET[:split]`` (default split ``test``) or an image folder;
            None = the held-out split of the run's dataset. Repair tasks only.
        pairs: paired and unpaired runs: a folder of test pairs (A/ + B/ or testA/ + testB/,
            matched by file name); None = the test split of the run's dataset folder
            (:func:`~gancli.metrics.translation_pairs.find_test_pairs`).
        direction: unpaired runs: ``a2b`` (default: inputs A, targets B) or ``b2a``.
        baseline: another translation run's checkpoint file or directory; None = none.
        run: the :class:`~gancli.runs.Run` evaluated: its metrics.jsonl gets a ``"kind": "eval"``
            record; None = no record.
        run_id, baseline_id: the names given in the result (None: ``run``'s id; the path).
        warn: called with each note (a folder scored on its own images, FD left out).
        on_download: called as ``(url, destination)`` before Inception weights are downloaded.

    Returns:
        :class:`~gancli.metrics.run_eval.Report` whose ``doc`` is the ``--json`` document:
        ``kind`` ``"translation"``, ``task``, ``options``, ``step``, ``protocol``, ``run``,
        ``baseline``, ``rows`` (row -> figure -> value; null = infinite PSNR), ``notes``,
        ``seconds`` and, when recorded, ``metrics_file``; ``result`` is ``doc["rows"]``.

    Raises:
        UsageError: a generation run (as ``path``: :func:`~gancli.translate.load.load_translator`'s
            message; as ``baseline``), a baseline of another task / options / data, an unknown
            dataset or split, a protocol the images cannot take.
        GancliError: an unreadable checkpoint, missing data, Inception weights given but unusable.
    """
    from gancli._version import __version__
    from gancli.metrics.catalog import metric_names
    from gancli.metrics.run_eval import Report, as_device
    from gancli.seeding import derive_seed

    t0 = time.perf_counter()
    dev = as_device(device)
    g = _load(path, dev, settings.ema, "run", direction)
    if g.corruption and pairs is not None:
        raise UsageError(f"--pairs applies to paired and unpaired runs (--task paired|unpaired); {run_id or path} "
                         f"is a --task {g.task} run, scored on clean images corrupted as in training (--real)")
    if not g.corruption and real is not None:
        raise UsageError(f"--real applies to repair tasks; {run_id or path} is a --task {g.task} run, scored on "
                         "test pairs: give them with --pairs DIR")
    base = _load(baseline, dev, settings.ema, "baseline", direction) if baseline is not None else None
    if base is not None:
        _check_baseline(g, base, str(baseline_id or baseline))
    if g.corruption:
        images, labels, source, dataset, notes = _clean_images(g, real, settings.num, data_root)
    else:
        from gancli.metrics.translation_pairs import find_test_pairs, load_test_pairs

        inputs, images, labels, source, notes = load_test_pairs(g, find_test_pairs(g, pairs, direction),
                                                                settings.num)
        dataset = "mnist" if labels is not None and tuple(images.shape[1:3]) == (1, 28) else None
    n, c, h, _ = images.shape
    protocol, extractor = _fd_extractor(settings, dataset, (int(c), int(h)), int(n), dev, notes, on_download)
    for note in notes:
        if warn is not None:
            warn(note)

    corrupt_seed = derive_seed(settings.seed, SEED_PURPOSE) if g.corruption else None
    if g.corruption:
        clean_t, sets = repaired_sets(g, images, corrupt_seed, settings.batch_size, base)
    else:
        clean_t, sets = translated_sets(g, inputs, images, settings.batch_size, base)

    fd_name = metric_names(protocol)["fid"]
    figures = _figures(sets, clean_t, labels, extractor, fd_name, clean_t, dev, settings.batch_size, real_row=True)
    rows = {row: {k: _finite(v) for k, v in values.items()} for row, values in figures.items()}

    def weights(t, label):
        return {"run": label, "checkpoint": str(t.path), "step": t.step, "weights": "ema" if t.uses_ema else "raw"}

    run_id = run_id if run_id is not None else getattr(run, "id", None)
    fd = _fd_record(extractor, protocol, fd_name)
    record = {"images": source, "num": int(n), "weights": "ema" if g.uses_ema else "raw", "seed": settings.seed,
              "corruption_seed": corrupt_seed,
              "corrupt_chunk": CORRUPT_CHUNK if g.corruption else None, "task": g.task, "options": dict(g.options),
              "fd": fd, "gancli_version": __version__}
    if not g.corruption:
        record.update(direction=g.direction, pairs=source["pairs"])
    seconds = time.perf_counter() - t0
    doc = {"kind": "translation", "task": g.task, "options": dict(g.options), "step": g.step,
           **({} if g.corruption else {"direction": g.direction}),
           "protocol": record, "run": weights(g, run_id),
           "baseline": None if base is None else weights(base, str(baseline_id or baseline)),
           "rows": rows, "notes": notes, "seconds": round(seconds, 2)}
    _append(run, g, rows, record, doc)
    return Report(rows, doc, seconds, notes)


def _append(run, g, rows: dict[str, dict[str, float | None]], record: dict[str, Any], doc: dict[str, Any]) -> None:
    """The ``"kind": "eval"`` record of ``run`` (None: nothing): the run row's figures as
    top-level numbers (``gan report`` series), every row under ``rows``; ``doc["metrics_file"]``."""
    if run is None:
        return
    from datetime import datetime, timezone

    figures = {k: v for k, v in rows["run"].items() if v is not None}
    run.append_metrics({"kind": "eval", "step": g.step, **figures, "task": g.task, "rows": rows,
                        "results": [{"metric": k, "value": v, "protocol": record} for k, v in figures.items()],
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    doc["metrics_file"] = str(run.metrics_path)


class TranslationTrainingEvaluator:
    """``gan train --eval-every`` on an image-to-image run: the figures of ``gan evaluate`` (run
    row only, the module's protocol) of the generator being trained, on fixed images.

    The images are those ``gan evaluate`` scores by default: a repair task's held-out split
    (MNIST: the test split; an image folder: its own training images), the first ``num_images``,
    corrupted at ``derive_seed(0, "eval-corrupt")`` exactly as ``gan evaluate --num-samples
    num_images`` corrupts them; a paired / unpaired run's test pairs (direction ``a2b``). The
    headline, which picks ``checkpoints/best.safetensors``, is the Fréchet distance (FD-LeNet on
    MNIST, FID where the Inception weights can be had) when at least
    :data:`~gancli.metrics.evaluate.MIN_FID_SAMPLES` images are scored, else PSNR (higher is
    better). Built before the run directory exists, so missing test pairs fail first.

    Args:
        cfg: the run's :class:`~gancli.config.RunConfig` (an image-to-image ``--task``).
        data_root: the data directory.
        num_images: images scored per evaluation (>= 1; fewer when the split has fewer).
        device: where G and the feature extractor run.
        batch_size: images per forward pass.
        train_data: the run's training images (an image folder's are scored without reloading).

    Raises:
        UsageError: a paired / unpaired run without test pairs (the message says where to put
            them), a protocol the images cannot take. GancliError: missing data.
    """

    def __init__(self, cfg, data_root, num_images: int, device, batch_size: int = 256, train_data=None):
        import torch

        from gancli.seeding import derive_seed
        from gancli.tasks import TRAINING_TASKS
        from gancli.translate.load import Translator

        task = TRAINING_TASKS.get(cfg.task.name)
        self.cyclegan = task.step == "cyclegan"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.probe = Translator(None, cfg, task.name, task.corruption, task.corruption_options(cfg.task), 0, False,
                                Path(f"the --task {task.name} run"), "a2b" if self.cyclegan else None)
        settings = TranslationEvalSettings(num=num_images, batch_size=batch_size)
        if task.corruption:
            images, labels, source, dataset, self.notes = _clean_images(self.probe, None, num_images, data_root,
                                                                        loaded=train_data)
            self.corrupt_seed = derive_seed(settings.seed, SEED_PURPOSE)
            self.inputs = None
        else:
            from gancli.metrics.translation_pairs import find_test_pairs, load_test_pairs, expected_pairs_place

            try:
                found = find_test_pairs(self.probe)
            except UsageError:
                raise UsageError(f"--eval-every scores a --task {task.name} run on test pairs and there are none: "
                                 f"put them in {expected_pairs_place(self.probe)}, or leave --eval-every off") from None
            self.inputs, images, labels, source, self.notes = load_test_pairs(self.probe, found, num_images)
            dataset = "mnist" if labels is not None and tuple(images.shape[1:3]) == (1, 28) else None
            self.corrupt_seed = None
        self.images, self.labels = images, labels
        n, c, h, _ = images.shape
        self.protocol_name, self.extractor = _fd_extractor(settings, dataset, (int(c), int(h)), int(n), self.device,
                                                           self.notes, None)
        from gancli.metrics.catalog import metric_names

        self.fd_name = metric_names(self.protocol_name)["fid"]
        self.headline = self.fd_name if self.extractor is not None else "psnr"
        self.clean = images.float().div(127.5).sub(1.0)
        self._reference = None if self.extractor is None else _stats(self.extractor, self.clean, batch_size)
        self.record = {"images": source, "num": int(n), "num_generated": int(n), "seed": settings.seed,
                       "corruption_seed": self.corrupt_seed, "corrupt_chunk": CORRUPT_CHUNK if task.corruption else None,
                       "task": task.name, "options": dict(self.probe.options),
                       "fd": _fd_record(self.extractor, self.protocol_name, self.fd_name),
                       **({} if task.corruption else {"direction": "a2b", "pairs": source["pairs"]})}

    def __call__(self, G, describe: dict[str, Any]):
        """Score ``G`` (the run's sampling generator; a CycleGAN pair is scored A -> B), its mode
        restored afterwards; ``describe``: run, step, weights (``ema`` or ``raw``).

        Returns:
            :class:`~gancli.metrics.evaluate.EvalResult`: ``values`` the headline,
            ``figures`` every finite figure (the eval record's numbers), ``protocol`` with
            ``num_generated``, ``results`` as ``gan evaluate``'s record.
        """
        from dataclasses import replace as _replace

        import torch

        from gancli.metrics.evaluate import EvalResult

        t0 = time.perf_counter()
        module = G.g_ab if self.cyclegan else G
        was = module.training
        module.eval()
        try:
            t = _replace(self.probe, G=module, step=int(describe.get("step", 0)),
                         uses_ema=describe.get("weights") == "ema")
            if self.inputs is None:
                outs = [_outputs(t, source, extra, self.batch_size)
                        for _, source, extra in corrupted_chunks(t, self.images, self.corrupt_seed)]
            else:
                outs = [_outputs(t, self.inputs.float().div(127.5).sub(1.0), None, self.batch_size)]
        finally:
            module.train(was)
        figures = _figures({"run": torch.cat(outs)}, self.clean, self.labels, self.extractor, self.fd_name,
                           self._reference, self.device, self.batch_size)["run"]
        value = float(figures[self.headline])
        figures = {k: round(v, 6) for k, v in figures.items() if math.isfinite(v)}  # inf PSNR: left out
        record = {**self.record, "run": describe.get("run"), "step": t.step, "weights": describe.get("weights")}
        return EvalResult([{"metric": k, "value": v, "protocol": record} for k, v in figures.items()],
                          {self.headline: value}, record, time.perf_counter() - t0, figures=figures)
