"""Options + preset + loss recipe + dataset description -> one validated :class:`RunConfig`, once.

``gan train`` calls :func:`build_config` once per command (with ``--nproc`` in the
launching process only: the ranks receive the resolved config). Everything that needs a
registry (names of architectures, losses, datasets, optimizers, schedules, precisions,
presets) or the dataset (image shape, classes, size) is looked up here, not in
:mod:`gancli.config`, which stays a leaf.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from gancli.config import DEFAULT_EPOCHS, MAX_STEPS, OPTION_FIELDS, RESUMABLE_OPTIONS, RunConfig, flag, option_specs
from gancli.errors import UsageError
from gancli.registry import Registry



def registry(kind: str) -> Registry:
    """The registry whose names are the valid values of options declared with ``registry=kind``."""
    if kind == "arch":
        from gancli.models import ARCHS

        return ARCHS
    if kind == "loss":
        from gancli.losses import LOSSES

        return LOSSES
    if kind == "dataset":
        from gancli.data import DATASETS

        return DATASETS
    if kind in ("optimizer", "lr schedule"):
        from gancli.engine.optim import LR_SCHEDULES, OPTIMIZERS

        return OPTIMIZERS if kind == "optimizer" else LR_SCHEDULES
    if kind == "precision":
        from gancli.engine.precision import PRECISIONS

        return PRECISIONS
    if kind == "preset":
        from gancli.presets import PRESETS

        return PRESETS
    if kind == "task":
        from gancli.tasks import TRAINING_TASKS

        return TRAINING_TASKS
    raise KeyError(kind)


def _check_fields(cfg: RunConfig, specs) -> None:
    """Each field of ``specs`` (:func:`~gancli.config.option_specs`) against its registry,
    choices and range. Raises: UsageError naming the flag, the value and what is allowed."""
    for spec in specs:
        value = getattr(getattr(cfg, spec.section), spec.field)
        if spec.registry is not None and spec.registry != "dataset":
            registry(spec.registry).get(value)
        if spec.choices is not None and value not in spec.choices:
            raise UsageError(f"unknown {spec.flag[2:]} {value!r}; valid choices: {', '.join(spec.choices)}")
        if spec.finite and isinstance(value, float) and not math.isfinite(value):  # inf / nan pass range checks
            raise UsageError(f"{spec.flag} must be a finite number, got {value}")
        if spec.bounds is not None and value is not None and not spec.bounds.contains(value):
            raise UsageError(spec.bounds.error(spec.flag, value))


def validate_stored(cfg: RunConfig, path: Path) -> None:
    """A resumed run's stored config (``path``: its config.json): the fields no flag may change
    on resume (the others are checked after the resume's flags apply, by :func:`validate`)
    against their registries, choices and ranges, so a hand-edited value is named with its file.

    Raises:
        GancliError: naming the file, the field's flag, the value and what is allowed.
    """
    from gancli.errors import GancliError

    try:
        _check_fields(cfg, [s for s in option_specs() if not s.resumable])
    except (UsageError, GancliError) as e:
        raise GancliError(f"{path} has a bad value: {e}; set it back (or start a new run)") from None


def validate(cfg: RunConfig) -> None:
    """Check names against the registries and numbers against their ranges.

    Raises:
        UsageError: one line naming the bad value and what is allowed, or ``--tensorboard``
            without the tensorboard package.
    """
    from gancli.augment.spec import parse_augment
    from gancli.data import get_source

    get_source(cfg.data.dataset)  # a registered name or a folder; raises with the choices
    _check_fields(cfg, option_specs())  # names and ranges: one pass over the declarations in gancli.config
    parse_augment(cfg.train.augment)
    from gancli.tasks import check_task_config

    check_task_config(cfg)  # the task's options against the image shape, the architecture's kind

    # checks of one option against another, or against what is installed
    if cfg.train.eval_samples < 2048:  # also without --eval-every: a resume may turn it on
        raise UsageError(f"--eval-samples {cfg.train.eval_samples} is too few for a Fréchet distance; use at least 2,048")
    if cfg.train.stop_on_collapse and not cfg.train.monitor_every_steps:
        raise UsageError("--stop-on-collapse needs the collapse monitor, which --monitor-every 0 turns off; "
                         "give --monitor-every N (N >= 1) or drop --stop-on-collapse")
    if cfg.data.limit and cfg.data.limit < cfg.train.batch_size:
        raise UsageError(
            f"--limit {cfg.data.limit} is smaller than --batch-size {cfg.train.batch_size}"
        )
    if cfg.model.cluster_features == "umap" and cfg.model.clusters and not cfg.model.num_classes:
        from gancli.conditioning import UMAP_MISSING, umap_available

        if not umap_available():
            raise UsageError(UMAP_MISSING)
    if cfg.train.tensorboard:
        from gancli.engine.tensorboard import require_tensorboard

        require_tensorboard()


def build_config(options: dict[str, Any], base: RunConfig | None = None, preset: str | None = None) -> RunConfig:
    """Resolve a :class:`RunConfig` from flat command-line options.

    Precedence, highest first: explicit options, the ``preset``'s options, the
    loss recipe's defaults (e.g. ``wgan-gp``: ``d_steps=5``, Adam(1e-4, 0, 0.9)), the
    task's recipe (the image-to-image tasks: ``--arch unet``, L1 100, :mod:`gancli.tasks`),
    the architecture's recipe defaults (``mlp``: R1), the dataclass defaults. The image shape comes from the dataset,
    ``conditional=True`` takes the number of classes from it, and ``epochs`` is
    converted to steps with the dataset size (``limit`` applied), the batch
    size and ``d_steps`` (each D update consumes one batch).

    Args:
        options: option name (see :data:`~gancli.config.OPTION_FIELDS`, plus
            ``conditional``) -> value; ``None`` = not given.
        base: the config of a run being resumed. Then only
            :data:`~gancli.config.RESUMABLE_OPTIONS` may differ from it, and no preset applies.
        preset: a registered preset name (``gancli.presets``).

    Raises:
        UsageError: unknown option or preset, conflicting options, an option
            that cannot change on resume, or a bad value.
    """
    given = {k: v for k, v in options.items() if v is not None}
    unknown = set(given) - set(OPTION_FIELDS) - {"conditional"}
    if unknown:
        raise UsageError(f"unknown options: {', '.join(sorted(unknown))}")
    if "steps" in given and "epochs" in given:
        raise UsageError("give --steps or --epochs, not both")
    if base is not None:
        if preset is not None:
            raise UsageError("--preset cannot be combined with --resume (the run keeps its recipe)")
        _check_resume(given, base)
        cfg = base
    else:
        if preset is not None:
            recipe = registry("preset").get(preset)
            given = {**recipe.options, **given}
            if "steps" in options and options["steps"] is not None:
                given.pop("epochs", None)
            if "epochs" in options and options["epochs"] is not None:
                given.pop("steps", None)
        from gancli.tasks import check_given_options

        task_name = given.get("task", RunConfig().task.name)
        check_given_options(task_name, given)
        task_recipe = registry("task").entry(task_name).defaults
        loss = given.get("loss", task_recipe.get("loss", RunConfig().loss.name))
        arch = given.get("arch", task_recipe.get("arch", RunConfig().model.arch))
        given = {**registry("arch").entry(arch).defaults, **task_recipe, **registry("loss").entry(loss).defaults,
                 **given}
        cfg = RunConfig()
    conditional = given.pop("conditional", None)
    cfg = _apply(cfg, given)
    if "steps" in given:
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=None))

    from gancli.data import DATASETS, is_folder_path

    if cfg.data.dataset not in DATASETS and is_folder_path(cfg.data.dataset):
        # a folder: store it absolute so a resume from elsewhere finds it
        folder = str(Path(cfg.data.dataset).expanduser().resolve())
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, dataset=folder))
    task = registry("task").get(cfg.task.name)
    info = task.describe_data(cfg)  # a dataset, an image folder, a folder of pairs or of two domains
    if base is None:  # a new run's conditioning: classes, clusters or none (gancli.conditioning)
        from gancli.conditioning import resolve_new

        size = info.sizes[cfg.data.split]
        if cfg.data.limit:
            size = min(size, cfg.data.limit)
        fields = resolve_new(conditional if conditional is not None else bool(cfg.model.num_classes),
                             info.num_classes, size, given, cfg.data.dataset,
                             translating=task.name if task.translates else "")
    else:
        fields = {}
    cfg = cfg.replace(model=dataclasses.replace(cfg.model, img_channels=info.channels, img_resolution=info.resolution,
                                                in_channels=task.input_channels(info.channels), **fields))
    validate(cfg)
    size = info.sizes[cfg.data.split]
    if cfg.data.limit:
        size = min(size, cfg.data.limit)
    if cfg.train.batch_size > size:
        raise UsageError(f"--batch-size {cfg.train.batch_size} is larger than the dataset ({size:,} images); "
                         f"use --batch-size {size} or less")
    epochs = cfg.train.epochs
    if base is None and "steps" not in given and epochs is None:
        epochs = DEFAULT_EPOCHS
    if epochs is not None and ("epochs" in given or base is None):
        per_epoch = size // cfg.train.batch_size
        exact = epochs * per_epoch / cfg.optim.d_steps
        if exact < 1:
            raise UsageError(f"--epochs {epochs:g} is less than one step ({per_epoch:,} batches per epoch, "
                             f"{cfg.optim.d_steps} per step); use --epochs {cfg.optim.d_steps / per_epoch:.2g} "
                             "or more, or --steps N")
        if exact > MAX_STEPS:
            raise UsageError(f"--epochs {epochs:g} is {exact:.3g} steps, more than gancli trains ({MAX_STEPS:,}); "
                             "use a smaller --epochs")
        steps = math.ceil(exact)
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=float(epochs), steps=steps))
    return cfg


def _apply(cfg: RunConfig, given: dict[str, Any]) -> RunConfig:
    sections: dict[str, dict[str, Any]] = {}
    for name, value in given.items():
        section, key = OPTION_FIELDS[name]
        sections.setdefault(section, {})[key] = value
    return cfg.replace(**{s: dataclasses.replace(getattr(cfg, s), **kv) for s, kv in sections.items()})


def _check_resume(given: dict[str, Any], base: RunConfig) -> None:
    from gancli.data import DATASETS, is_folder_path

    allowed = ", ".join(map(flag, sorted(RESUMABLE_OPTIONS)))
    for name, value in given.items():
        if name == "dataset" and value not in DATASETS and is_folder_path(value):
            value = str(Path(value).expanduser().resolve())
        if name == "conditional":
            current: Any = bool(base.model.num_classes)
        else:
            section, key = OPTION_FIELDS[name]
            current = getattr(getattr(base, section), key)
        if name not in RESUMABLE_OPTIONS and current != value:
            raise UsageError(f"{flag(name)} cannot change when resuming (the run has {current!r}); only {allowed} may")
