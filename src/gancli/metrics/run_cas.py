"""``gan evaluate --cas`` as a library function: a conditional MNIST-family generator's
Classification Accuracy Score (:mod:`gancli.metrics.cas`), recorded with the run.

:class:`CasSettings` checks the values when built; :func:`evaluate_cas` loads the generator
and the data, measures, and returns a :class:`~gancli.metrics.run_eval.Report`. No Typer, no
Rich; torch-free at import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gancli.errors import UsageError
from gancli.metrics.run_eval import CACHE_WORDS, Report, append_record, as_device

#: ``-n`` of ``gan evaluate --cas``: generated images the classifier trains on.
CAS_SAMPLES = 10_000
#: Datasets --cas knows the test split of (1x28x28, 10 classes: the LeNet's input and output).
CAS_DATASETS = ("mnist", "fashion-mnist")


@dataclass(frozen=True)
class CasSettings:
    """What :func:`evaluate_cas` measures (see :func:`gancli.metrics.cas.classification_accuracy_score`).

    Attributes:
        num: generated images the classifier trains on (>= 128, one classifier batch).
        epochs: passes over the classifier's training images (>= 1).
        mix: generated fraction R in [0, 1) of a real + generated training set; None = plain CAS.
        real_limit: real labelled images M with ``mix`` (>= 1); None = ``num``.
        seed: labels' real subset, classifier and latents (``derive_seed(seed, "cas")``).
        batch_size: images per generator forward pass (>= 1).
        ema: use the EMA generator when the checkpoint has one.
        use_cache: read the real baseline from the cache (it is written either way).

    Raises:
        UsageError: a value out of range, or ``real_limit`` without ``mix`` (on construction).
    """

    num: int = CAS_SAMPLES
    epochs: int = 10
    mix: float | None = None
    real_limit: int | None = None
    seed: int = 0
    batch_size: int = 256
    ema: bool = True
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.num < 128:
            raise UsageError(f"-n {self.num} is too few for --cas; valid choices: -n >= 128 (one classifier batch)")
        if self.epochs < 1:
            raise UsageError(f"--cas-epochs must be >= 1, got {self.epochs}")
        if self.mix is not None and not 0 <= self.mix < 1:
            raise UsageError(f"--cas-mix {self.mix} is out of range; valid choices: 0 <= R < 1 (the generated fraction)")
        if self.real_limit is not None and self.mix is None:
            raise UsageError("--cas-real-limit goes with --cas-mix (plain --cas uses -n real images for its baseline)")
        if self.real_limit is not None and self.real_limit < 1:
            raise UsageError(f"--cas-real-limit must be >= 1, got {self.real_limit}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")



def evaluate_cas(path: str | Path, settings: CasSettings, *, data_root: str | Path, device="auto", run=None,
                 run_id: str | None = None, label: str | None = None, home: Path | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Classification Accuracy Score of the conditional generator in the checkpoint ``path``:
    a LeNet trained on ``settings.num`` generated images (image i has class i % 10, latents
    from ``derive_seed(seed, "cas")``), tested on the real test split, next to the same LeNet
    trained on as many real images (or, with ``mix``, the augmentation gain).

    Args:
        data_root: the data directory (the checkpoint's train and test splits).
        device, run, run_id: as :func:`~gancli.metrics.run_eval.evaluate_generator`.
        home: the gancli home, whose ``stats/`` caches the real baseline; None = no cache.
        label: how errors name the generator (``run-3``); None = the file name.
        progress: ``(phase, done, total)`` as the work advances (see :data:`gancli.metrics.cas.Progress`).

    Returns:
        :class:`Report` of a :class:`~gancli.metrics.cas.CasResult`; the document also holds
        ``phase_seconds`` and ``baseline_cache``.

    Raises:
        UsageError: a bundle, an unconditional generator, images other than 1x28x28 of 10
            classes of :data:`CAS_DATASETS`, too few real images of a class.
    """
    from dataclasses import replace

    import torch

    from gancli.checkpoint import GENERATOR_PARTS, generator_from_checkpoint, load_checkpoint
    from gancli.data import load_split
    from gancli.metrics.cas import classification_accuracy_score
    from gancli.generate.sampling import generate
    from gancli.seeding import derive_seed, latents

    t0 = time.perf_counter()
    path = Path(path)
    label = label or path.name
    if path.is_dir():
        raise UsageError(f"--cas needs a run or checkpoint (it reads the training dataset from it), not the bundle {path}")
    dev = as_device(device)
    ckpt = load_checkpoint(path, device="cpu", prefixes=GENERATOR_PARTS)
    G = generator_from_checkpoint(ckpt, device=dev, ema=settings.ema)
    data_cfg = ckpt.config.data
    if not G.num_classes:
        raise UsageError(f"--cas needs labels: {label} is unconditional; train a conditional run "
                         "(gan train --conditional) and evaluate that")
    if data_cfg.dataset not in CAS_DATASETS or G.num_classes != 10 or (G.img_channels, G.img_resolution) != (1, 28):
        raise UsageError(f"--cas trains a LeNet on 1x28x28 images of 10 classes; {label} was trained on "
                         f"{data_cfg.dataset!r} ({G.img_channels}x{G.img_resolution}x{G.img_resolution}, {G.num_classes} "
                         f"classes); valid datasets: {', '.join(CAS_DATASETS)}")
    train = load_split(replace(data_cfg, split="train", limit=0), data_root)
    test = load_split(replace(data_cfg, split="test", limit=0), data_root)
    as_float = lambda d: (d.images.to(torch.float32).div_(127.5).sub_(1.0), d.labels.long())  # noqa: E731

    z_seed = derive_seed(settings.seed, "cas")
    drawn = 0

    def generate_labelled(labels: torch.Tensor) -> torch.Tensor:
        # one latent stream for all chunks: image i gets row i of latents(total, nz, z_seed)
        nonlocal drawn
        z = latents(drawn + len(labels), G.nz, z_seed)[drawn:]
        drawn += len(labels)
        return generate(G, z.to(dev), labels.to(dev), settings.batch_size)

    run_id = run_id if run_id is not None else getattr(run, "id", None)
    generated_info = {"run": run_id, "checkpoint": str(path), "step": G.step,
                      "weights": "ema" if G.uses_ema else "raw", "latent_seed": z_seed,
                      "labels": "balanced: image i has class i % 10"}
    try:
        result = classification_accuracy_score(
            generate_labelled, as_float(train), as_float(test), num=settings.num, epochs=settings.epochs,
            seed=settings.seed, mix=settings.mix, real_limit=settings.real_limit, dataset=data_cfg.dataset,
            generated_info=generated_info, home=home, use_cache=settings.use_cache, progress=progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    seconds = time.perf_counter() - t0
    doc = {"step": G.step, **result.values, "results": result.results, "seconds": round(seconds, 2),
           "phase_seconds": result.seconds, "baseline_cache": CACHE_WORDS[result.cache_hit]}
    append_record(run, G.step, result.values, result.results, doc)
    return Report(result, doc, seconds)
