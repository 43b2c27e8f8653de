"""The one config object of a run: frozen dataclasses, JSON round-trip, validation.

The CLI builds a :class:`RunConfig`, ``gan train --dry-run`` prints it, and it
is written to ``<run>/config.json`` before step 1. Every checkpoint embeds it
too, so a checkpoint alone rebuilds the model. Torch-free on purpose.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancli.errors import GancliError, UsageError

#: Version of the config schema. Bump when a field changes meaning or is removed.
CONFIG_VERSION = 1

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "linear", "cosine")
D_NORMS = ("batch", "none")
NAN_POLICIES = ("stop", "skip")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"  # registered dataset name (see `gan train --help`)
    split: str = "train"  # which split trains the model
    limit: int = 0  # use only the first N images of the split; 0 = all
    download: bool = True  # fetch the dataset when it is missing and the network allows
    image_size: int = 0  # resize (center-crop + resize) to this H = W, pixels; 0 = the dataset's own
    channels: int = 0  # 1 = grayscale, 3 = RGB; 0 = the dataset's own
    skip_bad_images: bool = False  # image folders: skip unreadable files instead of failing


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "dcgan"  # registered architecture name
    nz: int = 100  # dimension of the latent z ~ N(0, I)
    ngf: int = 64  # generator width (channels of its last hidden layer); dcgan only
    ndf: int = 64  # discriminator width (channels of its first layer); dcgan only
    img_channels: int = 1  # C of generated images; taken from the dataset
    img_resolution: int = 28  # H = W of generated images, pixels; taken from the dataset
    num_classes: int = 0  # classes of a conditional GAN (from the dataset); 0 = unconditional
    spectral_norm: bool = False  # spectral normalisation on D's weights (arXiv 1802.05957); False = off
    d_norm: str = "batch"  # normalisation in D's hidden layers: batch | none (none for gradient penalties)


@dataclass(frozen=True)
class LossConfig:
    name: str = "bce"  # registered adversarial loss name
    gp_lambda: float = 0.0  # weight of the WGAN-GP gradient penalty (arXiv 1704.00028); 0 = off
    r1_gamma: float = 0.0  # weight gamma of the R1 penalty gamma/2 E|grad D(x)|^2 (arXiv 1801.04406); 0 = off
    r1_every: int = 16  # lazy R1: apply every N D updates, scaled by N (arXiv 1912.04958); 1 = every update


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam (arXiv 1412.6980) | sgd | rmsprop
    lr_g: float = 2e-4  # generator learning rate (TTUR: may differ from lr_d, arXiv 1706.08500)
    lr_d: float = 2e-4  # discriminator learning rate
    beta1: float = 0.5  # Adam beta1 (0.5 as in DCGAN, arXiv 1511.06434)
    beta2: float = 0.999  # Adam beta2
    momentum: float = 0.0  # SGD / RMSprop momentum; 0 = none
    lr_schedule: str = "constant"  # constant | linear (to 0 at the last step) | cosine (to 0)
    d_steps: int = 1  # D updates per G update (5 for WGAN-GP)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64  # images per D update, over all processes (each takes batch_size / world_size)
    steps: int = 1000  # total training steps (d_steps D updates + one G update each)
    epochs: float | None = None  # what the user asked for, if given in epochs; steps is derived
    seed: int = 0  # seeds weights, data order, z and dropout; same seed = same run on CPU
    device: str = "auto"  # requested device: auto | cpu | cuda | cuda:N | mps
    log_every_steps: int = 100  # metrics.jsonl + console line interval
    sample_every_steps: int = 500  # fixed-z 8x8 grid interval; 0 = only at the end
    checkpoint_every_steps: int = 1000  # checkpoint interval; 0 = only at the end
    keep_checkpoints: int = 3  # keep the newest K step checkpoints; 0 = keep all
    ema_decay: float = 0.999  # EMA of G's weights, with warm-up min(decay, (1+s)/(10+s)); 0 = off
    nan_policy: str = "stop"  # NaN/Inf loss: stop (with the last good checkpoint named) | skip (that update)
    eval_every_steps: int = 0  # FD-LeNet (MNIST) / FID every N steps, best -> checkpoints/best.safetensors; 0 = off
    eval_samples: int = 10000  # generated images per evaluation during training (>= 2048)
    augment: str = ""  # DiffAugment policy for D's inputs (arXiv 2006.10738): "", "diffaug[:color,translation,cutout]"
    precision: str = "fp32"  # autocast dtype of G and D: fp32 (autocast off) | bf16 | fp16 (with a GradScaler)
    channels_last: bool = True  # conv models (dcgan, resnet) in channels_last memory format; mlp: no effect
    compile: bool = False  # torch.compile G and D (a minute or more of warm-up per process); False = eager
    sync_bn: bool = False  # several CUDA processes: BatchNorm statistics over the global batch; False = per process


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    version: int = CONFIG_VERSION

    # -- serialization -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            GancliError: unknown keys, wrong types, or a config written by a
                newer gancli (``version`` > :data:`CONFIG_VERSION`).
        """
        if not isinstance(d, dict):
            raise GancliError("config is not a JSON object")
        version = d.get("version", CONFIG_VERSION)
        if not isinstance(version, int) or version > CONFIG_VERSION:
            raise GancliError(
                f"config version {version!r} is newer than this gancli understands "
                f"(max {CONFIG_VERSION}); upgrade gancli"
            )
        parts: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "version":
                continue
            sub_cls = f.default_factory  # type: ignore[misc]
            parts[f.name] = _sub_from_dict(sub_cls, d.get(f.name, {}), f.name)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise GancliError(f"config has unknown sections: {', '.join(sorted(unknown))}")
        return cls(**parts, version=CONFIG_VERSION)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise GancliError(f"config is not valid JSON: {e}") from None

    def replace(self, **sections: Any) -> RunConfig:
        return dataclasses.replace(self, **sections)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "float | None": (int, float, type(None)),
}


def _sub_from_dict(sub_cls: type, d: Any, section: str) -> Any:
    if not isinstance(d, dict):
        raise GancliError(f"config section {section!r} is not a JSON object")
    names = {f.name: f for f in dataclasses.fields(sub_cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise GancliError(f"config section {section!r} has unknown keys: {', '.join(sorted(unknown))}")
    for key, value in d.items():
        kind = str(names[key].type)
        ok = _JSON_TYPES.get(kind, (object,))
        if not isinstance(value, ok) or (isinstance(value, bool) and bool not in ok):
            raise GancliError(f"config {section}.{key} must be {kind}, got {value!r}")
    return sub_cls(**d)


def validate(cfg: RunConfig) -> None:
    """Check names against the registries and numbers against their ranges.

    Raises:
        UsageError: one line naming the bad value and what is allowed.
    """
    from gancli.data import get_source
    from gancli.losses import LOSSES
    from gancli.models import ARCHS

    get_source(cfg.data.dataset)  # a registered name or a folder; raises with the choices
    ARCHS.get(cfg.model.arch)
    LOSSES.get(cfg.loss.name)
    for value, flag_, choices in ((cfg.optim.name, "optimizer", OPTIMIZERS),
                                  (cfg.optim.lr_schedule, "lr schedule", LR_SCHEDULES),
                                  (cfg.model.d_norm, "d-norm", D_NORMS),
                                  (cfg.train.nan_policy, "nan policy", NAN_POLICIES),
                                  (cfg.train.precision, "precision", PRECISIONS)):
        if value not in choices:
            raise UsageError(f"unknown {flag_} {value!r}; valid choices: {', '.join(choices)}")
    from gancli.augment import parse_augment

    parse_augment(cfg.train.augment)

    def positive(value: float, flag: str) -> None:
        if not value > 0:
            raise UsageError(f"{flag} must be > 0, got {value}")

    def non_negative(value: int, flag: str) -> None:
        if value < 0:
            raise UsageError(f"{flag} must be >= 0, got {value}")

    positive(cfg.model.nz, "--nz")
    positive(cfg.model.ngf, "--ngf")
    positive(cfg.model.ndf, "--ndf")
    positive(cfg.optim.lr_g, "--lr-g")
    positive(cfg.optim.lr_d, "--lr-d")
    for value, flag in ((cfg.optim.beta1, "--beta1"), (cfg.optim.beta2, "--beta2")):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"{flag} must be in [0, 1), got {value}")
    positive(cfg.train.batch_size, "--batch-size")
    positive(cfg.train.steps, "--steps")
    positive(cfg.train.log_every_steps, "--log-every")
    non_negative(cfg.train.sample_every_steps, "--sample-every")
    non_negative(cfg.train.checkpoint_every_steps, "--checkpoint-every")
    non_negative(cfg.train.keep_checkpoints, "--keep")
    non_negative(cfg.data.limit, "--limit")
    non_negative(cfg.train.eval_every_steps, "--eval-every")
    if cfg.train.eval_every_steps and cfg.train.eval_samples < 2048:
        raise UsageError(f"--eval-samples {cfg.train.eval_samples} is too few for a Fréchet distance; use at least 2,048")
    positive(cfg.optim.d_steps, "--d-steps")
    positive(cfg.loss.r1_every, "--r1-every")
    non_negative(cfg.loss.gp_lambda, "--gp-lambda")
    non_negative(cfg.loss.r1_gamma, "--r1-gamma")
    if not 0.0 <= cfg.optim.momentum < 1.0:
        raise UsageError(f"--momentum must be in [0, 1), got {cfg.optim.momentum}")
    if not 0.0 <= cfg.train.ema_decay < 1.0:
        raise UsageError(f"--ema-decay must be in [0, 1) (0 = off), got {cfg.train.ema_decay}")
    if cfg.data.limit and cfg.data.limit < cfg.train.batch_size:
        raise UsageError(
            f"--limit {cfg.data.limit} is smaller than --batch-size {cfg.train.batch_size}"
        )


#: Flat option name (as on the command line, dashes -> underscores) -> (section, field).
OPTION_FIELDS: dict[str, tuple[str, str]] = {
    "dataset": ("data", "dataset"),
    "limit": ("data", "limit"),
    "download": ("data", "download"),
    "arch": ("model", "arch"),
    "spectral_norm": ("model", "spectral_norm"),
    "d_norm": ("model", "d_norm"),
    "gp_lambda": ("loss", "gp_lambda"),
    "r1_gamma": ("loss", "r1_gamma"),
    "r1_every": ("loss", "r1_every"),
    "optimizer": ("optim", "name"),
    "momentum": ("optim", "momentum"),
    "lr_schedule": ("optim", "lr_schedule"),
    "d_steps": ("optim", "d_steps"),
    "ema_decay": ("train", "ema_decay"),
    "augment": ("train", "augment"),
    "nan_policy": ("train", "nan_policy"),
    "image_size": ("data", "image_size"),
    "channels": ("data", "channels"),
    "skip_bad_images": ("data", "skip_bad_images"),
    "nz": ("model", "nz"),
    "ngf": ("model", "ngf"),
    "ndf": ("model", "ndf"),
    "loss": ("loss", "name"),
    "lr_g": ("optim", "lr_g"),
    "lr_d": ("optim", "lr_d"),
    "beta1": ("optim", "beta1"),
    "beta2": ("optim", "beta2"),
    "batch_size": ("train", "batch_size"),
    "steps": ("train", "steps"),
    "epochs": ("train", "epochs"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "log_every": ("train", "log_every_steps"),
    "sample_every": ("train", "sample_every_steps"),
    "checkpoint_every": ("train", "checkpoint_every_steps"),
    "keep": ("train", "keep_checkpoints"),
    "eval_every": ("train", "eval_every_steps"),
    "eval_samples": ("train", "eval_samples"),
    "precision": ("train", "precision"),
    "channels_last": ("train", "channels_last"),
    "compile": ("train", "compile"),
    "sync_bn": ("train", "sync_bn"),
}

#: Options that may change when a run is resumed: the length, the evaluation, and how (not
#: what) the step computes. The number of processes is not part of the config, so it may
#: change too.
RESUMABLE_OPTIONS = frozenset({"steps", "epochs", "device", "nan_policy", "eval_every", "eval_samples", "precision",
                               "channels_last", "compile", "sync_bn"})

#: Training length when neither --steps nor --epochs is given.
DEFAULT_EPOCHS = 1.0


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def build_config(options: dict[str, Any], base: RunConfig | None = None, preset: str | None = None) -> RunConfig:
    """Resolve a :class:`RunConfig` from flat command-line options.

    Precedence, highest first: explicit options, the ``preset``'s options, the
    loss recipe's defaults (e.g. ``wgan-gp``: ``d_steps=5``, Adam(1e-4, 0, 0.9)),
    the dataclass defaults. The image shape comes from the dataset,
    ``conditional=True`` takes the number of classes from it, and ``epochs`` is
    converted to steps with the dataset size (``limit`` applied), the batch
    size and ``d_steps`` (each D update consumes one batch).

    Args:
        options: option name (see :data:`OPTION_FIELDS`, plus ``conditional``)
            -> value; ``None`` = not given.
        base: the config of a run being resumed. Then only
            :data:`RESUMABLE_OPTIONS` may differ from it, and no preset applies.
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
            from gancli.presets import PRESETS

            recipe = PRESETS.get(preset)
            given = {**recipe.options, **given}
            if "steps" in options and options["steps"] is not None:
                given.pop("epochs", None)
            if "epochs" in options and options["epochs"] is not None:
                given.pop("steps", None)
        from gancli.losses import LOSSES

        loss = given.get("loss", RunConfig().loss.name)
        given = {**LOSSES.entry(loss).defaults, **given}
        cfg = RunConfig()
    conditional = given.pop("conditional", None)
    cfg = _apply(cfg, given)
    if "steps" in given:
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=None))

    from gancli.data import DATASETS, describe, is_folder_path

    if cfg.data.dataset not in DATASETS and is_folder_path(cfg.data.dataset):
        # a folder: store it absolute so a resume from elsewhere finds it
        folder = str(Path(cfg.data.dataset).expanduser().resolve())
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, dataset=folder))
    info = describe(cfg.data)
    num_classes = cfg.model.num_classes
    if conditional is not None and base is None:
        if conditional and not info.num_classes:
            raise UsageError(f"--conditional needs a labelled dataset; {cfg.data.dataset!r} has no labels")
        num_classes = info.num_classes if conditional else 0
    cfg = cfg.replace(model=dataclasses.replace(cfg.model, img_channels=info.channels,
                                                img_resolution=info.resolution, num_classes=num_classes))
    validate(cfg)
    epochs = cfg.train.epochs
    if base is None and "steps" not in given and epochs is None:
        epochs = DEFAULT_EPOCHS
    if epochs is not None and ("epochs" in given or base is None):
        if not epochs > 0:
            raise UsageError(f"--epochs must be > 0, got {epochs}")
        size = info.sizes[cfg.data.split]
        if cfg.data.limit:
            size = min(size, cfg.data.limit)
        per_epoch = size // cfg.train.batch_size
        if per_epoch < 1:
            raise UsageError(f"--batch-size {cfg.train.batch_size} is larger than the dataset ({size} images)")
        steps = max(1, math.ceil(epochs * per_epoch / cfg.optim.d_steps))
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
