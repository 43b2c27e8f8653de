"""Start or resume a run: resolve the device, load data, create/lock the run
directory, write config.json, restore the newest valid checkpoint, train.

With several processes (torchrun) every rank runs :func:`train`: each loads the
data (the first process of each machine first: it may download), rank 0 alone
creates and locks the run directory and reads the checkpoint, which it sends to
the others, and every rank trains its slice of each batch."""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from gancli._version import __version__
from gancli.checkpoint import Checkpoint, load_checkpoint
from gancli.conditioning import Conditioning
from gancli.config import RunConfig
from gancli.data import ImageData, load_split
from gancli.engine.device import pin_threads, resolve_device
from gancli.engine.distributed import SINGLE, Dist
from gancli.engine.hooks import Checkpoints, MetricsFile, Monitor, PeriodicEvaluation, Samples, monitor_hook
from gancli.engine.parts import build_parts
from gancli.engine.protocols import Hook, Reporter
from gancli.engine.precision import check_precision, precision_warning, probed_bf16_speedup, resolve_precision
from gancli.engine.trainer import Trainer, TrainResult
from gancli.errors import GancliError, UsageError
from gancli.models import check_supported
from gancli.runs import Run, RunStore
from gancli.tasks import TRAINING_TASKS
from gancli.units import plural


def run_meta(device: torch.device, data_dir: Path, command: list[str] | None = None, world_size: int = 1) -> dict:
    """Provenance stored next to the config in ``config.json``; ``device`` is rank 0's."""
    import torchvision

    return {
        "gancli_version": __version__,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "data_dir": str(data_dir),
        "command": command if command is not None else sys.argv,
        "world_size": world_size,
    }


def newest_valid_checkpoint(run: Run, note: Callable[[str], None]) -> Checkpoint | None:
    """The newest checkpoint of ``run`` whose whole training state loads and checks out.

    A damaged one is never deleted: it is moved to ``checkpoints/damaged/`` with a note (its
    generator may still load with ``gan sample``), so neither pruning nor the resumed run
    overwrites it.

    Raises:
        GancliError: no checkpoint holds a usable training state and some are set aside in
            ``checkpoints/damaged/`` (by this call or an earlier resume).
    """
    for _, path in reversed(run.checkpoints()):
        try:
            return load_checkpoint(path, device="cpu")
        except GancliError as e:
            run.damaged_dir.mkdir(exist_ok=True)
            path.replace(run.damaged_dir / path.name)
            note(f"moved damaged checkpoint {path.name} to {run.damaged_dir}/ ({e})")
    aside = run.damaged_checkpoints()  # set aside now, or by an earlier resume: never start over silently
    if aside:
        raise GancliError(f"no checkpoint of {run.id} holds a usable training state ({len(aside)} set aside in "
                          f"{run.damaged_dir}/: {', '.join(p.name for _, p in aside)}; their generators may still "
                          f"load: gan sample {run.id} --checkpoint damaged/step-{aside[-1][0]}); continue from one with "
                          f"gan train --resume {run.id} --from damaged/step-{aside[-1][0]}, or start a new run")
    return None


def salvaged_checkpoint(run: Run, which: str, note: Callable[[str], None]) -> Checkpoint:
    """``gan train --resume RUN --from damaged/step-N``: the set-aside checkpoint ``which`` of
    ``run``, read by :func:`~gancli.checkpoint.salvage_checkpoint` (lost RNG states, loss scalers
    or image pools start afresh, each named in a note; the run goes on, not bitwise as if it
    had never stopped). Only for a run none of whose checkpoints holds a usable training state.

    Raises:
        UsageError: ``which`` is not a set-aside checkpoint (the valid choices named), or the
            run still has a usable checkpoint (resume without ``--from``).
        GancliError: a part training needs is damaged too.
    """
    from gancli.checkpoint import salvage_checkpoint

    if not str(which).startswith("damaged/"):
        choices = ", ".join(f"damaged/step-{s}" for s, _ in run.damaged_checkpoints()) or "(none set aside)"
        raise UsageError(f"--from takes a checkpoint set aside in {run.damaged_dir}/, got {which!r}; "
                         f"valid choices: {choices}")
    path = run.checkpoint_path(which)  # UsageError naming the choices
    try:
        usable = newest_valid_checkpoint(run, note)
    except GancliError:  # every checkpoint is set aside: what --from is for
        usable = None
    if usable is not None:
        raise UsageError(f"{run.id} still has a usable checkpoint ({usable.path.name}): resume it without --from")
    ckpt = salvage_checkpoint(path)
    parts = {"rng": "random streams re-seeded from (seed, step)", "scaler_d": "a new fp16 loss scale",
             "scaler_g": "a new fp16 loss scale", "task_step": "empty image pools"}
    lost = "; ".join(dict.fromkeys(parts.get(n, n) for n in ckpt.lost))
    note(f"continuing {run.id} from {which} (step {ckpt.step})"
         + (f"; damaged parts left out: {', '.join(ckpt.lost)} ({lost}): not bitwise as if it had never stopped"
            if ckpt.lost else ""))
    return ckpt


def check_config_matches_checkpoint(cfg: RunConfig, ckpt: Checkpoint, run_id: str) -> None:
    """Refuse a resume whose config (config.json, plus the resume's options) differs from the
    config embedded in the checkpoint in a field that may not change on resume: every field
    but the resumable options (:data:`gancli.config.RESUMABLE_OPTIONS`), e.g. ``nz``, the widths,
    the loss, the learning rates. Catches a hand-edited config.json before the weights load.

    Raises:
        GancliError: naming the first differing field, both values and what to do.
    """
    from gancli.config import option_specs

    resumable = {(s.section, s.field) for s in option_specs() if s.resumable}
    flags = {(s.section, s.field): s.flag for s in option_specs()}
    now, then = cfg.to_dict(), ckpt.config.to_dict()
    for section, fields in then.items():
        if not isinstance(fields, dict):
            continue
        for key, old in fields.items():
            new = now.get(section, {}).get(key, old)
            if (section, key) in resumable or new == old:
                continue
            name = flags.get((section, key), f"{section}.{key}")
            raise GancliError(f"{run_id}'s config.json has {section}.{key} = {new!r} but its checkpoint "
                              f"{ckpt.path.name} was trained with {old!r} ({name} may not change on resume): "
                              f"set it back to {old!r} in config.json, or start a new run")


def preflight(cfg: RunConfig, world_size: int = 1, device: torch.device | None = None) -> torch.device:
    """Checks that need torch but no data: the architecture supports the image
    shape, the device exists and supports ``--precision``, and ``world_size``
    processes can share the work (:func:`check_parallel`). Returns the device
    (``device`` when given, else ``cfg.train.device`` resolved).

    Raises:
        UsageError: with the bad value and the valid choices.
    """
    check_supported(cfg.model)
    if device is None:
        device = resolve_device(cfg.train.device)
    check_precision(cfg.train.precision, device)
    check_parallel(cfg, world_size, device)
    return device


def check_parallel(cfg: RunConfig, world_size: int, device: torch.device) -> None:
    """Raise :class:`UsageError` if ``world_size`` processes cannot train ``cfg``:
    the global batch must split evenly, and ``--sync-bn`` needs CUDA."""
    if world_size <= 1:
        return
    if TRAINING_TASKS.get(cfg.task.name).step == "cyclegan":
        raise UsageError(f"--task {cfg.task.name} trains in one process for now (its two generators are not "
                         "wrapped for DistributedDataParallel); drop --nproc")
    b = cfg.train.batch_size
    if b % world_size:
        lower = max(world_size, b - b % world_size)
        raise UsageError(f"--batch-size {b} does not split evenly over {world_size} processes; "
                         f"use a multiple of {world_size} (e.g. {lower} or {lower + world_size})")
    if cfg.train.sync_bn and device.type != "cuda":
        raise UsageError(f"--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm does not run on {device.type}); "
                         "drop --sync-bn")


def start_line(cfg: RunConfig, run: Run, trainer: Trainer, resumed: bool, precision_why: str = "") -> str:
    """What ``gan train`` says when the run is ready: what trains on what, how long, where
    (``precision_why``: how ``--precision auto`` chose, from :func:`resolve_precision`)."""
    how = " (auto)" if cfg.train.device == "auto" else ""
    what = f"resuming {run.id} at step {trainer.step}:" if resumed else f"{run.id}:"
    c = Conditioning.of(cfg.model)
    cond = f", {c.describe()}" if c.kind == "classes" else ""
    model = f"{cfg.task.name} with {cfg.model.arch}" if c.takes_image else cfg.model.arch
    epochs = cfg.train.epochs
    length = f"{cfg.train.steps} steps" + (f" ({epochs:g} epoch{'' if epochs == 1 else 's'})" if epochs else "")
    dist = trainer.dist

    unit = "pairs" if TRAINING_TASKS.get(cfg.task.name).paired else "images"
    return (
        f"{what} {model} on {cfg.data.dataset} ({len(trainer.batcher)} {unit}, "
        f"{cfg.model.img_channels}x{cfg.model.img_resolution}x{cfg.model.img_resolution}){cond}, loss {cfg.loss.name}, "
        f"{length}, batch {cfg.train.batch_size}, device {trainer.device}{how}, precision {cfg.train.precision}"
        + (f" ({precision_why})" if precision_why else "")
        + (f", {plural(torch.get_num_threads(), 'CPU thread')}" if trainer.device.type == "cpu" else "")
        + (f", {dist.world_size} processes (batch {cfg.train.batch_size // dist.world_size} each)"
           if dist.enabled else "")
        + f"\nrun directory: {run.path}"
    )


def reporter_phase(reporter: Reporter | None, label: str) -> contextlib.AbstractContextManager:
    """``reporter.phase(label)`` (a spinner, or a "still working" line every 10 s, while a
    step with no progress of its own runs), or nothing for no reporter / one without phases."""
    phase = getattr(reporter, "phase", None)
    return phase(label) if phase is not None else contextlib.nullcontext()


def load_training_data(cfg: RunConfig, data_dir: str | Path) -> ImageData:
    """The training split: :func:`gancli.data.load_split` of ``cfg.data`` (``data_dir``: the data
    directory), or for ``--task paired`` the folder's pairs
    (:func:`gancli.translate.pairs.load_paired_split`: the targets B as ``images``, the inputs A
    as ``inputs``, ``labels`` = ``arange(N)``), or for ``--task unpaired`` its two domains
    (:meth:`gancli.tasks.Task.load_data`).

    Raises:
        UsageError / GancliError: as those functions (also: A and B of a pair of other pixel sizes).
    """

    task = TRAINING_TASKS.get(cfg.task.name)
    return task.load_data(cfg, data_dir) if task.data else load_split(cfg.data, data_dir)


def train(cfg: RunConfig, store: RunStore, data_dir: str | Path, *, resume: Run | None = None,
          reporter: Reporter | None = None, should_stop: Callable[[], bool] = lambda: False,
          dist: Dist | None = None, device: torch.device | None = None,
          resume_from: str | None = None, force_precision: bool = False) -> tuple[Run, TrainResult]:
    """Train a new run (``resume=None``) or continue ``resume`` with the resolved config ``cfg``.

    Runs the preflight checks (:func:`preflight`) once, loads the data once (the
    training evaluator of ``--eval-every`` reuses it), creates or locks the run,
    restores the newest valid checkpoint and trains. Nothing is created on disk
    before the device and the data are known good.

    Args:
        reporter: progress sink; it is also told the start line (:func:`start_line`).
        dist, device: this process's rank and device, from
            :func:`gancli.engine.distributed.setup`; default one process on
            ``cfg.train.device``. Every rank of a multi-process run calls this
            with the same arguments; only rank 0 touches the run directory.
        force_precision: keep an explicit ``--precision bf16`` on a CPU where it measures
            much slower than fp32 (:func:`resolve_precision`'s ``force``). A resume always
            keeps the precision of the run's config.json.
        resume_from: with ``resume``, continue from this set-aside checkpoint
            (``damaged/step-N``) instead of the newest valid one: see :func:`salvaged_checkpoint`.

    Raises:
        UsageError: device unavailable, unsupported shape. GancliError: data
            missing, run locked, checkpoint damaged, training diverged.
            ErrorOnAnotherRank: on the other ranks when rank 0 failed.
    """
    data_dir = Path(data_dir)
    dist = dist or SINGLE
    threads = torch.get_num_threads()  # the user's (OMP_NUM_THREADS, --threads, torch.set_num_threads): kept
    note = reporter.note if reporter is not None else (lambda _t: None)
    device = preflight(cfg, dist.world_size, device)
    # --precision auto becomes fp32 or bf16 once, on rank 0, and config.json keeps what it became; a resume
    # keeps the precision the run trained in (a bf16 of config.json was explicit, or forced with --force)
    precision, precision_why = dist.from_main(lambda: resolve_precision(
        cfg.train.precision, device, store.home, force=force_precision or resume is not None))
    if cfg.train.precision == "bf16" and precision == "fp32" and dist.is_main and reporter is not None:
        reporter.warn(precision_why)  # an explicit bf16 that measured much slower here: fp32, said loudly
        precision_why = ""
    if precision != cfg.train.precision:
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, precision=precision))
    with reporter_phase(reporter, f"loading {cfg.data.dataset}"):
        data = dist.leaders_first(lambda: load_training_data(cfg, data_dir))
    if data.skipped:
        note(f"skipped {len(data.skipped)} unreadable image(s) (--skip-bad-images), e.g. {data.skipped[0]}")
    slow = precision_warning(cfg.train.precision, device, speedup=probed_bf16_speedup(store.home))
    if slow and dist.is_main and reporter is not None:
        reporter.warn(slow)
    evaluator = None
    if cfg.train.eval_every_steps:

        def make_evaluator() -> None:  # rank 0 evaluates; an error here stops every rank
            nonlocal evaluator
            if cfg.task.name != "generate":
                from gancli.metrics.translation_eval import TranslationTrainingEvaluator

                note(f"preparing --eval-every: the held-out images of --task {cfg.task.name}")
                evaluator = TranslationTrainingEvaluator(cfg, data_dir, cfg.train.eval_samples, device,
                                                         train_data=data)
                return
            from gancli.metrics.evaluate import TrainingEvaluator

            note("preparing --eval-every: reference statistics of the training set")
            with reporter_phase(reporter, "reference statistics"):
                evaluator = TrainingEvaluator(cfg.data, data_dir, cfg.train.eval_samples, device, home=store.home,
                                              train_data=data)

        dist.from_main(make_evaluator)
    with contextlib.ExitStack() as held:

        def prepare() -> tuple[Run, Checkpoint | None]:
            """Rank 0: create or check the run, hold its lock, read its checkpoint."""
            if resume is None:
                run = store.create()
                run.write_config(cfg.to_dict(), run_meta(device, data_dir, world_size=dist.world_size))
            else:
                run = resume
            held.enter_context(run.lock())
            if resume_from is not None:
                ckpt = salvaged_checkpoint(run, resume_from, note)
            else:
                ckpt = newest_valid_checkpoint(run, note) if resume is not None else None
            if ckpt is not None:
                check_config_matches_checkpoint(cfg, ckpt, run.id)
            if resume is not None and ckpt is None:
                newest = run.last_metrics_record()  # from the end of the file: no full read
                reached = newest["step"] if newest is not None else 0
                if reached > 0:  # it trained: resuming from step 0 would erase that history
                    raise GancliError(f"{run.id} trained to step {reached} but kept no checkpoint to resume from "
                                      f"({run.checkpoints_dir}); start a new run (its records stay in {run.id})")
            if resume is not None:
                done = ckpt.step if ckpt is not None else 0
                if cfg.train.steps <= done:
                    raise UsageError(
                        f"{run.id} is already at step {done} of {cfg.train.steps}; "
                        f"pass --steps N (N > {done}) or a larger --epochs to train further"
                    )
            return run, ckpt

        run, ckpt = dist.from_main(prepare)  # the other ranks get the run's path and the checkpoint's contents
        try:
            clusters = None
            cond = Conditioning.of(cfg.model)
            if cond.self_conditioned:  # found once for a new run, stored with it; rank 0 reads it for all
                from gancli.conditioning.store import run_clusters
                from gancli.seeding import derive_seed

                clusters = dist.from_main(lambda: run_clusters(
                    run.path, data.images, cond.num_labels, cond.cluster_features, derive_seed(cfg.train.seed, "clusters"),
                    resumed=resume is not None, home=store.home, note=note))
            pin_threads(threads)  # clustering (numba's OpenMP start-up) may have reset the pools to all cores
            trainer = build_trainer(cfg, run, device, data, reporter, evaluator=evaluator, dist=dist, clusters=clusters)
            if ckpt is not None:
                trainer.restore(ckpt)
        except BaseException:
            if resume is None and dist.is_main:  # a new run that never started leaves no junk run behind
                held.close()  # release the lock, then remove the directory
                shutil.rmtree(run.path, ignore_errors=True)
            raise
        if resume is not None and dist.is_main:  # only a resume that restored records itself
            done = ckpt.step if ckpt is not None else 0
            meta = run.read_config_doc().get("meta", {})
            earlier = meta.get("resumes")
            resumes = [*(earlier if isinstance(earlier, list) else []),
                       {**run_meta(device, data_dir, world_size=dist.world_size), "from_step": done}]
            if resume_from is not None:  # records past the step it continues from are kept, set aside
                kept = run.set_aside_metrics(done)
                resumes[-1].update({"from_checkpoint": resume_from, "lost": list(ckpt.lost), "bitwise": False,
                                    "metrics_set_aside": kept.name if kept is not None else None})
                if kept is not None:
                    note(f"the records past step {done} are kept in {kept}")
            run.write_config(cfg.to_dict(), {**meta, "resumes": resumes})
            run.truncate_metrics(done)
        note(start_line(cfg, run, trainer, resumed=resume is not None, precision_why=precision_why))
        if cfg.train.tensorboard:
            from gancli.engine.tensorboard import TENSORBOARD_DIR

            note(f"tensorboard: event files in {run.path / TENSORBOARD_DIR}; view them with: "
                 f"tensorboard --logdir {run.path / TENSORBOARD_DIR}")
        result = trainer.fit(should_stop)
    return run, result


def default_hooks(cfg, evaluator: Any = None, evaluating: bool = False, monitor: Monitor | None = None) -> list[Hook]:
    """The hooks of ``gan train``: metrics.jsonl, samples, checkpoints, the collapse
    monitor when given, when ``evaluating`` (rank 0 has an evaluator and
    ``eval_every_steps`` > 0) evaluation, and with ``tensorboard`` the event files (last,
    so that at the end it sees the final evaluation and the best value)."""
    t = cfg.train
    hooks: list[Hook] = [MetricsFile(), Samples(t.sample_every_steps)]
    if monitor is not None:  # before the checkpoint: a collapsed step is not saved as the last good one
        hooks.append(monitor)
    hooks.append(Checkpoints(t.checkpoint_every_steps))
    if evaluating and t.eval_every_steps:
        hooks.append(PeriodicEvaluation(evaluator, t.eval_every_steps))
    if t.tensorboard:
        from gancli.engine.tensorboard import TensorBoard

        hooks.append(TensorBoard())
    return hooks


def build_trainer(cfg: RunConfig, run: Run, device: torch.device, data: ImageData, reporter: Reporter | None = None,
                  evaluator: Any = None, dist: Dist | None = None, hooks: list[Hook] | None = None,
                  clusters: Any = None) -> Trainer:
    """A :class:`Trainer` with freshly built parts and ``gan train``'s hooks.

    Args:
        evaluator: for ``eval_every_steps``: a
            :class:`~gancli.metrics.evaluate.TrainingEvaluator` on rank 0 (the other ranks
            pass None; rank 0 tells them whether it has one: a collective).
        hooks: replace the default hooks (:func:`default_hooks`).
        clusters: a self-conditioned run's stored cluster assignment
            (:func:`~gancli.conditioning.store.run_clusters`).
    """
    dist = dist or SINGLE
    parts = build_parts(cfg, device, data, dist, clusters)
    evaluating = dist.from_main(lambda: evaluator is not None)  # rank 0 evaluates for all
    if hooks is None:
        hooks = default_hooks(cfg, evaluator, evaluating, monitor_hook(cfg, data, device))
    return Trainer(cfg, run, device, parts, hooks, reporter, dist)
