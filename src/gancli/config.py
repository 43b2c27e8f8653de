"""The one config object of a run: frozen dataclasses, JSON round-trip, validation.

The CLI builds a :class:`RunConfig`, ``gan train --dry-run`` prints it, and it
is written to ``<run>/config.json`` before step 1. Every checkpoint embeds it
too, so a checkpoint alone rebuilds the model. Torch-free on purpose.
"""

from __future__ import annotations

import dataclasses
import math
import json
from dataclasses import dataclass, field
from typing import Any

from gancli.errors import GancliError, UsageError

#: Version of the config schema. Bump when a field changes meaning or is removed.
CONFIG_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"  # registered dataset name (see `gan train --help`)
    split: str = "train"  # which split trains the model
    limit: int = 0  # use only the first N images of the split; 0 = all
    download: bool = True  # fetch the dataset when it is missing and the network allows


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "dcgan"  # registered architecture name
    nz: int = 100  # dimension of the latent z ~ N(0, I)
    ngf: int = 64  # generator width (channels of its last hidden layer); dcgan only
    ndf: int = 64  # discriminator width (channels of its first layer); dcgan only
    img_channels: int = 1  # C of generated images; taken from the dataset
    img_resolution: int = 28  # H = W of generated images, pixels; taken from the dataset


@dataclass(frozen=True)
class LossConfig:
    name: str = "bce"  # registered adversarial loss name


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # optimizer (Adam, Kingma & Ba 2014, arXiv 1412.6980)
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate
    beta1: float = 0.5  # Adam beta1 (0.5 as in DCGAN, arXiv 1511.06434)
    beta2: float = 0.999  # Adam beta2


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64  # images per step (global batch)
    steps: int = 1000  # total training steps (one D update + one G update each)
    epochs: float | None = None  # what the user asked for, if given in epochs; steps is derived
    seed: int = 0  # seeds weights, data order, z and dropout; same seed = same run on CPU
    device: str = "auto"  # requested device: auto | cpu | cuda | cuda:N | mps
    log_every_steps: int = 100  # metrics.jsonl + console line interval
    sample_every_steps: int = 500  # fixed-z 8x8 grid interval; 0 = only at the end
    checkpoint_every_steps: int = 1000  # checkpoint interval; 0 = only at the end
    keep_checkpoints: int = 3  # keep the newest K step checkpoints; 0 = keep all


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


def _sub_from_dict(sub_cls: type, d: Any, section: str) -> Any:
    if not isinstance(d, dict):
        raise GancliError(f"config section {section!r} is not a JSON object")
    names = {f.name: f for f in dataclasses.fields(sub_cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise GancliError(f"config section {section!r} has unknown keys: {', '.join(sorted(unknown))}")
    return sub_cls(**d)


def validate(cfg: RunConfig) -> None:
    """Check names against the registries and numbers against their ranges.

    Raises:
        UsageError: one line naming the bad value and what is allowed.
    """
    from gancli.data import DATASETS
    from gancli.losses import LOSSES
    from gancli.models import ARCHS

    if cfg.data.dataset not in DATASETS:
        DATASETS.get(cfg.data.dataset)  # raises with choices
    ARCHS.get(cfg.model.arch)
    LOSSES.get(cfg.loss.name)
    if cfg.optim.name != "adam":
        raise UsageError(f"unknown optimizer {cfg.optim.name!r}; valid choices: adam")

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
}

#: Options that may change when a run is resumed.
RESUMABLE_OPTIONS = frozenset({"steps", "epochs", "device"})

#: Training length when neither --steps nor --epochs is given.
DEFAULT_EPOCHS = 1.0


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def build_config(options: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Resolve a :class:`RunConfig` from flat command-line options.

    Args:
        options: option name (see :data:`OPTION_FIELDS`) -> value; ``None`` = not given.
        base: the config of a run being resumed. Then only
            :data:`RESUMABLE_OPTIONS` may differ from it.

    The image shape comes from the dataset; ``--epochs`` is converted to steps
    with the dataset size (``--limit`` applied) and the batch size.

    Raises:
        UsageError: unknown option, conflicting options, or an option that
            cannot change on resume.
    """
    given = {k: v for k, v in options.items() if v is not None}
    unknown = set(given) - set(OPTION_FIELDS)
    if unknown:
        raise UsageError(f"unknown options: {', '.join(sorted(unknown))}")
    if "steps" in given and "epochs" in given:
        raise UsageError("give --steps or --epochs, not both")
    cfg = base or RunConfig()
    if base is not None:
        for name, value in given.items():
            section, key = OPTION_FIELDS[name]
            if name not in RESUMABLE_OPTIONS and getattr(getattr(base, section), key) != value:
                raise UsageError(
                    f"{flag(name)} cannot change when resuming (the run has "
                    f"{getattr(getattr(base, section), key)!r}); only {', '.join(map(flag, sorted(RESUMABLE_OPTIONS)))} may"
                )
    sections: dict[str, dict[str, Any]] = {}
    for name, value in given.items():
        section, key = OPTION_FIELDS[name]
        sections.setdefault(section, {})[key] = value
    if "steps" in given:
        sections.setdefault("train", {})["epochs"] = None
    cfg = cfg.replace(**{s: dataclasses.replace(getattr(cfg, s), **kv) for s, kv in sections.items()})

    from gancli.data import check_split, get_source

    source = get_source(cfg.data.dataset)
    check_split(source, cfg.data.dataset, cfg.data.split)
    cfg = cfg.replace(model=dataclasses.replace(cfg.model, img_channels=source.channels,
                                                img_resolution=source.resolution))
    validate(cfg)
    epochs = cfg.train.epochs
    if base is None and "steps" not in given and epochs is None:
        epochs = DEFAULT_EPOCHS
    if epochs is not None and ("epochs" in given or base is None):
        if not epochs > 0:
            raise UsageError(f"--epochs must be > 0, got {epochs}")
        size = source.sizes[cfg.data.split]
        if cfg.data.limit:
            size = min(size, cfg.data.limit)
        per_epoch = size // cfg.train.batch_size
        if per_epoch < 1:
            raise UsageError(f"--batch-size {cfg.train.batch_size} is larger than the dataset ({size} images)")
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=float(epochs),
                                                    steps=max(1, math.ceil(epochs * per_epoch))))
    return cfg
