"""The hooks of ``gan train``: metrics.jsonl, fixed-z sample grids, checkpoints, evaluation
and the best checkpoint, the mode-collapse monitor (TensorBoard event files:
:mod:`gancli.engine.tensorboard`). They implement :class:`~gancli.engine.protocols.Hook`;
:func:`default_hooks` assembles them where a run is launched
(:func:`gancli.engine.launch.build_trainer`). Hooks use no global RNG, so a run trains
the same with or without them.

Torch-free at import (so :mod:`gancli.engine.tensorboard` is too).
"""

from __future__ import annotations

import math
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancli.engine.protocols import Hook

if TYPE_CHECKING:
    from gancli.checkpoint import Checkpoint
    from gancli.engine.trainer import Trainer


class MetricsFile(Hook):
    """Appends every log record to ``metrics.jsonl`` (rank 0)."""

    def on_log(self, t: Trainer, record: dict[str, Any]) -> None:
        if t.dist.is_main:
            t.run.append_metrics(record)


#: A run's first look: the fixed-z grid and the monitor's first (baseline) check also come at this
#: step when their interval is longer, so a new run shows its first samples and scores within the
#: first minute on a 2-core CPU (the README job: ~25 s of training; issue #25).
FIRST_LOOK_STEP = 200
#: ``--stop-on-collapse`` stops a run only from this step on (and never on a baseline check): a
#: generator a few steps old is its initialisation, not a collapse (issue #26: with
#: ``--monitor-every 1`` a healthy new run stopped at step 2). Warnings still come from 2 x every.
STOP_FROM_STEP = FIRST_LOOK_STEP


def due(step: int, every: int) -> bool:
    """Whether a hook that acts every ``every`` steps (0 = never) acts at ``step``: on the
    interval's grid, and at :data:`FIRST_LOOK_STEP` when the interval is longer."""
    return bool(every) and (step % every == 0 or (step == FIRST_LOOK_STEP and every > FIRST_LOOK_STEP))


class Samples(Hook):
    """The sample grid every ``sample_every_steps`` (and at :data:`FIRST_LOOK_STEP`) and at the end: ``samples/step-<S>.png``
    (EMA G when enabled): the task step's (:meth:`~gancli.engine.steps.TrainStep.sample_grid`):
    a GAN's fixed-z grid (8x8, or one row per class for a conditional G), an image-to-image
    task's input | output | target rows. Rank 0 writes."""

    def __init__(self, every_steps: int):
        self.every = every_steps

    def after_step(self, t: Trainer) -> float:
        if due(t.step, self.every):
            self.write(t)
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if not interrupted and not due(t.step, self.every):
            self.write(t)

    @staticmethod
    def write(t: Trainer) -> Path:
        from gancli.engine.steps import GRID_COLUMNS
        from gancli.generate.sampling import save_grid

        path = t.run.samples_dir / f"step-{t.step}.png"
        if t.dist.is_main:
            images = t.parts.task_step.sample_grid(t)
            save_grid(images, path, nrow=GRID_COLUMNS)
            t.reporter.detail(f"wrote samples {path}")
            t.samples_written(images, path)
        return path


class Checkpoints(Hook):
    """A checkpoint every ``checkpoint_every_steps`` (before the last step) and at the end."""

    def __init__(self, every_steps: int):
        self.every = every_steps

    def after_step(self, t: Trainer) -> float:
        if self.every and t.step % self.every == 0 and t.step < t.cfg.train.steps:
            t.save()
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if t.last_checkpoint is None or t.last_checkpoint.name != f"step-{t.step}.safetensors":
            t.save()


class PeriodicEvaluation(Hook):
    """``--eval-every``: score the sampling generator with ``evaluator`` every
    ``every_steps`` and at the end, append a ``"kind": "eval"`` record to metrics.jsonl,
    and when the headline metric (lower is better) improves copy this step's checkpoint
    (saved now if needed) to ``checkpoints/best.safetensors``. Restores G's mode. With
    several processes rank 0 evaluates while the others wait; a new best is saved by all
    (the checkpoint is a collective) and copied by rank 0.

    Args:
        evaluator: a :class:`~gancli.metrics.evaluate.TrainingEvaluator` on rank 0,
            None on the other ranks.
    """

    def __init__(self, evaluator: Any, every_steps: int):
        self.evaluator = evaluator
        self.every = every_steps
        self.best: tuple[float, int] | None = None  # (headline value, step) of best.safetensors

    def after_step(self, t: Trainer) -> float:
        if self.every and t.step % self.every == 0:
            return self.evaluate(t)["seconds"]
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        if not interrupted and t.step % self.every:
            self.evaluate(t)  # the final weights are always scored

    def on_restore(self, t: Trainer, ckpt: Checkpoint) -> None:
        """The best so far, from the evaluations up to the checkpoint's step (rank 0's run directory)."""

        def best() -> tuple[float, int] | None:
            from gancli.metrics.catalog import higher_is_better

            name = self.evaluator.headline
            seen = [(r[name], r["step"]) for r in t.run.read_metrics_report(kinds=("eval",))[0]
                    if isinstance(r.get(name), (int, float)) and r.get("step", 0) <= ckpt.step]
            if not seen:
                return None
            return max(seen, key=lambda v: v[0]) if higher_is_better(name) else min(seen, key=lambda v: v[0])

        self.best = t.dist.from_main(best)

    def evaluate(self, t: Trainer) -> dict[str, Any]:
        from gancli.fsutil import atomic_path
        from gancli.runs import BEST_CHECKPOINT

        def score() -> tuple[dict[str, Any], str, float, int]:
            name = self.evaluator.headline
            describe = {"run": t.run.id, "step": t.step, "weights": "ema" if t.parts.G_ema is not None else "raw"}
            ev = self.evaluator(t.parts.sampling_generator, describe)
            value = ev.values[name]
            figures = getattr(ev, "figures", None) or {name: round(value, 6)}  # EvalResult.figures, optional
            record = {"kind": "eval", "step": t.step, "epoch": t.epoch, **figures,
                      "results": ev.results, "seconds": round(ev.seconds, 2),
                      "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            t.append_record(record)
            return record, name, value, ev.protocol["num_generated"]

        from gancli.metrics.catalog import higher_is_better

        record, name, value, num_generated = t.dist.from_main(score)
        better = (value > self.best[0] if higher_is_better(name) else value < self.best[0]) if self.best else True
        improved = math.isfinite(value) and better
        if improved:
            if t.last_checkpoint is None or t.last_checkpoint.name != f"step-{t.step}.safetensors":
                t.save()
            if t.dist.is_main:
                with atomic_path(t.run.checkpoints_dir / BEST_CHECKPOINT) as tmp:
                    shutil.copyfile(t.last_checkpoint, tmp)
            self.best = (value, t.step)
        best_value, best_step = self.best if self.best is not None else (float("nan"), 0)
        t.reporter.note(f"step {t.step}: {name} {value:.4g} ({num_generated} samples, "
                        f"{record['seconds']:.0f} s); best {best_value:.4g} at step {best_step}"
                        + (" -> checkpoints/best.safetensors" if improved else ""))
        return record


class Monitor(Hook):
    """The mode-collapse monitor (:mod:`gancli.metrics.monitor`): every ``every_steps`` (and at
    :data:`FIRST_LOOK_STEP`) it scores a fixed batch of samples of the sampling generator (fixed latents, no global
    RNG, G's mode restored), appends a ``"kind": "monitor"`` record to metrics.jsonl,
    shows the scores in the progress display and warns (one line) when a symptom appears
    (again after it cleared). The first check (steps below ``2 * every_steps``) only records
    (``"baseline": true``): an immature generator is not a collapsed one. With ``stop`` a symptom
    at a later check, from :data:`STOP_FROM_STEP` on, stops the run with an error naming the last good checkpoint: the newest one at or before the
    last check that saw no symptom (none when every check, the first included, saw one). Without
    it the final weights get a check of their own, a run that ends with symptoms says so (naming
    that checkpoint), and ``--keep`` pruning never deletes that checkpoint. With several
    processes rank 0 scores and the others learn the verdict.

    Args:
        real: ``(N, C, H, W)`` uint8 real images (the reference batch; N >= 2).
        classifier: ``images -> logits`` for the class histogram (MNIST), or None.
        seed: the run seed (the monitor's latents derive from it).
    """

    def __init__(self, every_steps: int, real, classifier, seed: int, nz: int, num_classes: int, stop: bool):
        from gancli.metrics.monitor import BATCH, CollapseMonitor
        from gancli.seeding import derive_seed, latents, random_labels

        self.every = every_steps
        self.stop = stop
        self.scorer = CollapseMonitor(real.float().div(127.5).sub(1.0), classifier)
        seed_z = derive_seed(seed, "monitor-z")
        self.z = latents(BATCH, nz, seed_z)
        self.y = random_labels(BATCH, num_classes, seed_z) if num_classes else None
        self.active: set[str] = set()  # symptom kinds seen at the last check
        self.last_kinds: list[str] = []  # the same, in the order symptoms() names them
        self.clean_step: int | None = None  # step of the newest check that saw no symptom
        self.first_step: int | None = None  # step of this run's first check

    def after_step(self, t: Trainer) -> float:
        if due(t.step, self.every):
            self.check(t)
        return 0.0

    def at_end(self, t: Trainer, interrupted: bool) -> None:
        """A last check of the final weights (when the last step is off the ``every_steps`` grid), then,
        when it saw symptoms, a warning that the run ended collapsed, naming the last good checkpoint.
        Nothing in a run too short to get past the baseline (below ``2 * every_steps``)."""
        if interrupted or not self.every or t.step < 2 * self.every:
            return
        if t.step % self.every:
            self.check(t)
        if self.last_kinds:
            t.reporter.warn(f"{t.run.id} ended with mode collapse: the monitor's last check (step {t.step}) saw "
                            f"{', '.join(self.last_kinds)}; {self.last_good(t, final=True)}")

    def protected_steps(self, t: Trainer) -> set[int]:
        """The checkpoint of the last check without symptoms is never pruned."""
        from gancli.metrics.monitor import last_good_checkpoint

        good = last_good_checkpoint((step for step, _ in t.run.checkpoints()), self.clean_step)
        return {good} if good is not None else set()

    def on_restore(self, t: Trainer, ckpt: Checkpoint) -> None:
        """The symptoms of the last check up to the checkpoint's step, so a resumed run warns as the run would have."""

        def last() -> tuple[list[str], int | None, int | None]:
            rows = [r for r in t.run.read_metrics_report(kinds=("monitor",))[0] if r.get("step", 0) <= ckpt.step]
            clean = [r["step"] for r in rows if not r.get("symptoms")]
            return (list(rows[-1].get("symptoms", [])) if rows else [], clean[-1] if clean else None,
                    rows[0]["step"] if rows else None)

        active, self.clean_step, self.first_step = t.dist.from_main(last)
        self.active, self.last_kinds = set(active), list(active)

    def check(self, t: Trainer) -> list[str]:
        from gancli.errors import GancliError
        from gancli.metrics.monitor import advice, symptoms
        from gancli.generate.sampling import generate

        def score() -> list[str]:
            t0 = time.perf_counter()
            G = t.parts.sampling_generator
            y = self.y.to(t.device) if self.y is not None else None
            scores = self.scorer.score(generate(G, self.z.to(t.device), y))
            found = symptoms(scores)
            kinds = [s.split(" (")[0] for s in found]
            t.append_record({"kind": "monitor", "step": t.step, "epoch": t.epoch, **scores, "symptoms": kinds,
                             **({"baseline": True} if warming_up else {}),
                             "seconds": round(time.perf_counter() - t0, 4),
                             "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            text = f"diversity {scores['diversity']:.2f} dup {scores['duplicates']:.1%}"
            if "classes_covered" in scores:
                text += f" classes {scores['classes_covered']}/{len(scores['histogram'])} KL {scores['kl_to_uniform']:.2f}"
            t.reporter.monitor(text)
            new = [s for s, kind in zip(found, kinds) if kind not in self.active]
            if new and not warming_up:
                tips = advice(t.cfg.loss.name, t.cfg.model.spectral_norm, t.cfg.train.augment)
                t.reporter.warn(f"mode collapse? {'; '.join(new)} at step {t.step}; {tips}")
            return kinds

        # The first check is a baseline: a generator a few hundred steps old is still blurry, and
        # the classifier's histogram of blurry digits is uneven without any collapse.
        warming_up = t.step < 2 * self.every
        kinds = t.dist.from_main(score)
        if self.first_step is None:
            self.first_step = t.step
        if not kinds:
            self.clean_step = t.step
        if warming_up:
            return kinds
        self.active, self.last_kinds = set(kinds), kinds
        if kinds and self.stop and t.step >= STOP_FROM_STEP:
            message = (f"stopped at step {t.step} on mode collapse ({', '.join(kinds)}; --stop-on-collapse); "
                       + self.last_good(t))
            t.record_stop("collapse", message)
            raise GancliError(message)
        return kinds

    def last_good(self, t: Trainer, final: bool = False) -> str:
        """The part of the stop (``final``: end-of-run) message that names the checkpoint to go back to."""
        from gancli.metrics.monitor import last_good_checkpoint

        newest = t.last_checkpoint.name if t.last_checkpoint is not None else "none"
        if self.clean_step is None:
            return (f"no checkpoint is known good: every check saw symptoms, the first (step {self.first_step}) "
                    f"included" + ("" if final else f"; newest checkpoint: {newest}"))
        good = last_good_checkpoint((step for step, _ in t.run.checkpoints()), self.clean_step)
        if good is None:
            return (f"last good checkpoint: none kept (the last check without symptoms was at step "
                    f"{self.clean_step})" + ("" if final else f"; newest checkpoint: {newest}"))
        return (f"last good checkpoint: step-{good}.safetensors (the last check without symptoms was at step "
                f"{self.clean_step})" + (f"; sample it with --checkpoint {good}" if final else ""))


def _lenet_logits(lenet, images):
    """The monitor's classifier: LeNet's class logits ``(N, 10)`` of ``images`` ``(N, 1, 28, 28)``."""
    from gancli.metrics.lenet import lenet_outputs

    return lenet_outputs(lenet, images)[1]


def monitor_hook(cfg, data, device) -> Monitor | None:
    """The :class:`Monitor` of a run (None when ``monitor_every_steps`` is 0): a real reference
    batch drawn from ``data`` with a seed of its own, and the LeNet classifier for MNIST."""
    import torch

    from gancli.metrics.extractors import LENET_DATASETS
    from gancli.metrics.monitor import BATCH
    from gancli.seeding import derive_seed

    t = cfg.train
    if not t.monitor_every_steps:
        return None
    g = torch.Generator().manual_seed(derive_seed(t.seed, "monitor-real") % 2**63)
    idx = torch.randperm(len(data.images), generator=g)[:BATCH]
    real = data.images[idx.to(data.images.device)].cpu()
    classifier = None
    m = cfg.model
    if cfg.data.dataset in LENET_DATASETS and (m.img_channels, m.img_resolution) == (1, 28):
        import functools

        from gancli.metrics.lenet import load_lenet

        with torch.random.fork_rng(devices=[]):  # building the net draws init weights: keep the run's stream
            lenet = load_lenet(device)
        classifier = functools.partial(_lenet_logits, lenet)

    from gancli.conditioning import Conditioning

    return Monitor(t.monitor_every_steps, real, classifier, t.seed, m.nz, Conditioning.of(m).generator_classes,
                   t.stop_on_collapse)
