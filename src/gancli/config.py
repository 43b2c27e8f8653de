"""The one config object of a run: frozen dataclasses, JSON round-trip, field docs.

``gan train`` resolves a :class:`RunConfig` once (:mod:`gancli.resolve`), ``--dry-run``
prints it, and it is written to ``<run>/config.json`` before step 1. Every checkpoint
embeds it too, so a checkpoint alone rebuilds the model.

Each field that is a ``gan train`` option is declared here once, with :func:`option`:
its flag, help text, help panel, choices and valid range live in the field's metadata, and
the Typer options, the ``[default: ...]`` strings, the flat option table
(:data:`OPTION_FIELDS`), the range checks (:func:`gancli.resolve.validate`) and the
option tables of docs/cli.md and docs/runs.md (``scripts/gen_docs.py``) are generated from it. Choices that
come from a registry (architectures, losses, datasets, optimizers...) are named by the
registry's kind; the resolver checks them.

This module is a leaf: it imports nothing of gancli but :mod:`gancli.errors` and three constants of
:mod:`gancli.conditioning` (itself a leaf), and no torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from gancli.conditioning import CLUSTER_FEATURES, DEFAULT_CLUSTERS, UMAP_MIN_IMAGES
from gancli.errors import GancliError

#: Version of the config schema. Bump when a field changes meaning or is removed.
CONFIG_VERSION = 1
#: Training length when neither --steps nor --epochs is given.
DEFAULT_EPOCHS = 1.0

#: Help panels of ``gan train --help``, in display order.
TASK, DATA, MODEL, OPTIM, RUN, SPEED = "Task", "Data", "Model", "Optimization", "Run", "Speed and scale"

D_NORMS = ("batch", "layer", "none")
NAN_POLICIES = ("stop", "skip")
#: ``--mask`` of ``--task inpaint``; the same tuple as :data:`gancli.translate.corrupt.MASK_KINDS`
#: (this module is a leaf; tests/test_translate_train.py checks they agree).
MASK_KINDS = ("box", "free", "mixed")
#: ``--upsample`` of ``--task superres`` (:data:`gancli.translate.corrupt.UPSAMPLE_MODES`).
UPSAMPLE_MODES = ("bicubic", "nearest")
#: ``--paired-layout`` of ``--task paired`` (the keys of :data:`gancli.translate.pairs.PAIRED_LAYOUTS`).
PAIRED_LAYOUTS = ("folders", "ab")


#: Largest seed of every command (``gan train / sample / evaluate --seed``): seeds go to torch
#: generators, whose seeds are 64-bit, and every seed a command derives from it (``seed + 1``,
#: sha256 sub-seeds) stays below 2^64.
MAX_SEED = 2**63 - 1
#: The most training steps a run may ask for (``--steps``, or ``--epochs`` converted).
MAX_STEPS = 10**9


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric option: ``min`` / ``max`` (None = unbounded), each
    inclusive unless ``min_exclusive`` / ``max_exclusive``."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def contains(self, value: float) -> bool:
        if self.min is not None and (value <= self.min if self.min_exclusive else value < self.min):
            return False
        return not (self.max is not None and (value >= self.max if self.max_exclusive else value > self.max))

    def text(self) -> str:
        """How the range reads in messages and docs: ``> 0``, ``>= 0``, ``in [0, 1)``, ``in [0, 2^63 - 1]``."""
        if self.max is None:
            return f"{'>' if self.min_exclusive else '>='} {_number_text(self.min)}"
        if self.min is None:
            return f"{'<' if self.max_exclusive else '<='} {_number_text(self.max)}"
        return (f"in {'(' if self.min_exclusive else '['}{_number_text(self.min)}, "
                f"{_number_text(self.max)}{')' if self.max_exclusive else ']'}")

    def error(self, flag_: str, value: float) -> str:
        """The one-line message of a value out of range: ``--beta1 must be in [0, 1), got 1.5``."""
        return f"{flag_} must be {self.text()}, got {value}"


def _number_text(x: float | None) -> str:
    """``0``, ``0.5``, and ``2^63 - 1`` for a large 2^k - 1."""
    if isinstance(x, int) and x > 2**31 and (x + 1) & x == 0:
        return f"2^{x.bit_length()} - 1"
    return f"{x:g}" if isinstance(x, float) else str(x)


def option(default: Any, help: str, *, flag: str | None = None, short: str | None = None, group: str,
           choices: tuple[str, ...] | None = None, registry: str | None = None, default_text: str | None = None,
           resumable: bool = False, negative: bool = True, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None, finite: bool = True) -> Any:
    """A dataclass field that is also a ``gan train`` option.

    Args:
        default: the field's default (what ``--dry-run`` shows when the option is not given).
        help: one or two sentences; no ``[default: ...]`` (it is generated).
        flag: the long flag; default ``--<field name with dashes>``.
        short: a short flag (``-b``), if any.
        group: the help panel (:data:`DATA`, :data:`MODEL`, ...).
        choices: the valid values, when they are a fixed set.
        registry: the kind of registry whose names are the valid values ("arch", "loss", ...).
        default_text: what the help says instead of the literal default (e.g. for a default
            that the resolver derives, such as ``steps`` from ``epochs``).
        resumable: may differ from the run's config when it is resumed.
        negative: booleans only: also a ``--no-<flag>`` form.
        gt, ge: numbers only: the value must be > ``gt`` / >= ``ge`` (at most one of them).
        lt, le: numbers only: the value must be < ``lt`` / <= ``le`` (at most one of them).
        finite: floats only: inf and nan are refused.

    The resolver checks the range of every option in one pass (:func:`gancli.resolve.validate`);
    checks that involve two options (``--limit`` and ``--batch-size``...) are written there.
    """
    if gt is not None and ge is not None or lt is not None and le is not None:
        raise ValueError("give one lower bound (gt or ge) and one upper bound (lt or le) at most")
    bounds = None
    if (gt, ge, lt, le) != (None,) * 4:
        bounds = Bounds(min=gt if gt is not None else ge, max=lt if lt is not None else le,
                        min_exclusive=gt is not None, max_exclusive=lt is not None)
    return field(default=default, metadata={"option": {
        "flag": flag, "short": short, "help": help, "group": group, "choices": choices, "registry": registry,
        "default_text": default_text, "resumable": resumable, "negative": negative, "bounds": bounds,
        "finite": finite}})


def derived(default: Any, doc: str) -> Any:
    """A dataclass field that is not a ``gan train`` option: the resolver sets it (from the
    dataset, or from another option) or it is fixed; ``doc`` says what it holds (docs/runs.md)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("mnist", "Dataset name, or a folder of images (class subfolders become labels).",
                          short="-d", group=DATA, registry="dataset")
    split: str = derived("train", "The split that trains the model. No option sets it.")
    limit: int = option(0, "Train on the first N images only; 0 = all.", group=DATA, ge=0)
    download: bool = option(True, "Download the dataset if it is missing and the network allows.", group=DATA)
    image_size: int = option(0, "Center-crop + resize to this H = W, pixels: 8 to 1024; 0 = the dataset's own "
                             "(64 for folders).",
                             group=DATA)
    channels: int = option(0, "1 = grayscale, 3 = RGB; 0 = the dataset's own (3 for folders).", group=DATA)
    skip_bad_images: bool = option(False, "Image folders and CelebA: skip unreadable files (reported) instead of failing.",
                                   group=DATA, negative=False)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = option("dcgan", "Architecture.", short="-a", group=MODEL, registry="arch")
    nz: int = option(100, "Dimension of the latent z ~ N(0, I).", group=MODEL, gt=0)
    ngf: int = option(64, "Generator width (dcgan: channels of the last hidden layer; resnet: 4x this).", group=MODEL,
                     gt=0)
    ndf: int = option(64, "Discriminator width (dcgan: channels of the first layer; resnet: 2x this).", group=MODEL,
                     gt=0)
    img_channels: int = derived(1, "C of the generated images: the dataset's, after --channels.")
    img_resolution: int = derived(28, "H = W of the generated images, pixels: the dataset's, after --image-size.")
    in_channels: int = derived(0, "C of the image G translates (an image-to-image --task's input, e.g. the "
                               "damaged image + its hole mask); 0 = G draws its images from z (--task generate).")
    num_classes: int = derived(0, "Classes of a conditional GAN (--conditional takes them from the dataset); "
                               "0 = unconditional (--unconditional).")
    spectral_norm: bool = option(False, "Spectral normalisation on D's weights (arXiv 1802.05957).", group=MODEL)
    d_norm: str = option("batch", "Normalisation in the dcgan D's hidden layers: batch, layer (per sample, "
                         "fits gradient penalties) or none.",
                         group=MODEL, choices=D_NORMS)
    # 0 here (a model built in Python, or a config written before the option existed, is a plain
    # GAN); a new run of `gan train` gets DEFAULT_CLUSTERS from the resolver
    clusters: int = option(0, "Self-conditioned GAN (arXiv 2006.10728): G and D are conditioned on this "
                           "many k-means clusters of the training images (G draws one from z, so it stays "
                           "unconditional); fewer on small datasets; 0 = off.", group=MODEL, ge=0,
                           default_text=f"{DEFAULT_CLUSTERS}; --conditional: 0")
    # "pixels" here (configs written before the option); the resolver gives new runs on
    # UMAP_MIN_IMAGES or more images "umap"
    cluster_features: str = option("pixels", "Where --clusters are found: k-means on the pixels (pooled to 16x16 above "
                                   "32 px), or on a 10-d UMAP embedding of them (arXiv 1802.03426; far purer "
                                   "clusters, about 35 s more on 60k images on 2 CPU cores).", group=MODEL,
                                   choices=CLUSTER_FEATURES,
                                   default_text=f"umap; pixels below {UMAP_MIN_IMAGES:,} images")


@dataclass(frozen=True)
class LossConfig:
    name: str = option("bce", "Adversarial loss.", flag="--loss", group=OPTIM, registry="loss")
    gp_lambda: float = option(0.0, "Weight of the WGAN-GP gradient penalty (arXiv 1704.00028); 0 = off.", group=OPTIM,
                              ge=0)
    r1_gamma: float = option(0.0, "Weight gamma of the R1 penalty gamma/2 E|grad D(x)|^2 (arXiv 1801.04406); 0 = off.",
                             group=OPTIM, ge=0)
    r1_every: int = option(16, "Lazy R1: apply it every N D updates, scaled by N (arXiv 1912.04958).", group=OPTIM,
                         gt=0)
    # 0 / 1 here: a generate run has no L1 term; the image-to-image tasks' recipe sets L1 100 (pix2pix)
    l1_weight: float = option(0.0, "Image-to-image tasks: weight of the L1 distance of G's output to the target "
                              "(pix2pix's lambda, arXiv 1611.07004); 0 = off.", group=OPTIM, ge=0)
    adv_weight: float = option(1.0, "Image-to-image tasks: weight of G's adversarial loss; 0 = an L1-only "
                               "baseline (D still trains, G ignores it).", group=OPTIM, ge=0)


@dataclass(frozen=True)
class OptimConfig:
    name: str = option("adam", "Optimizer of G and D.", flag="--optimizer", group=OPTIM, registry="optimizer")
    lr_g: float = option(2e-4, "Generator learning rate (TTUR: may differ from --lr-d, arXiv 1706.08500).", group=OPTIM,
                         gt=0)
    lr_d: float = option(2e-4, "Discriminator learning rate.", group=OPTIM, gt=0)
    beta1: float = option(0.5, "Adam beta1 (0.5 as in DCGAN, arXiv 1511.06434).", group=OPTIM, ge=0, lt=1)
    beta2: float = option(0.999, "Adam beta2.", group=OPTIM, ge=0, lt=1)
    momentum: float = option(0.0, "SGD / RMSprop momentum; 0 = none.", group=OPTIM, ge=0, lt=1)
    lr_schedule: str = option("constant", "Learning-rate schedule over the run (linear / cosine decay towards 0).",
                              group=OPTIM, registry="lr schedule")
    d_steps: int = option(1, "D updates per G update.", group=OPTIM, gt=0)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = option(64, "Images per D update, over all processes (each takes batch-size / processes).",
                             short="-b", group=OPTIM, gt=0)
    steps: int = option(1000, "Training steps (--d-steps D updates + one G update each).", group=OPTIM,
                        default_text="from --epochs", resumable=True, gt=0, le=MAX_STEPS)
    epochs: float | None = option(None, "Training length in passes over the data; converted to steps.", group=OPTIM,
                                  default_text=f"{DEFAULT_EPOCHS:g}", resumable=True, gt=0)
    seed: int = option(0, "Seed of weights, data order, z, fake labels, dropout and augmentation; same seed = same run "
                       "on CPU.", group=OPTIM, ge=0, le=MAX_SEED)
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps; auto = CUDA, then MPS, then the CPU.", group=RUN,
                         resumable=True)
    log_every_steps: int = option(100, "Log metrics every N steps.", flag="--log-every", group=RUN, gt=0)
    sample_every_steps: int = option(500, "Write the fixed-z 8x8 grid every N steps, and at step 200 (a first look); "
                                     "0 = at the end only.",
                                     flag="--sample-every", group=RUN, ge=0)
    checkpoint_every_steps: int = option(1000, "Checkpoint every N steps; 0 = at the end only.",
                                         flag="--checkpoint-every", group=RUN, ge=0)
    keep_checkpoints: int = option(3, "Keep the newest K step checkpoints; 0 = all.", flag="--keep", group=RUN, ge=0)
    ema_decay: float = option(0.999, "EMA of G's weights, used for samples, with warm-up min(decay, (1+s)/(10+s)); "
                              "0 = off.", group=MODEL, ge=0, lt=1)
    nan_policy: str = option("stop", "On a NaN/Inf loss: stop (naming the last good checkpoint) or skip that update "
                             "(checks every step: a device sync).", group=RUN, choices=NAN_POLICIES, resumable=True)
    eval_every_steps: int = option(0, "Every N steps compute FD-LeNet (MNIST) or FID (other datasets, needs the "
                                   "Inception weights; image-to-image runs: gan evaluate's figures of the "
                                   "outputs), log it and keep checkpoints/best.safetensors; 0 = off.",
                                   flag="--eval-every", group=RUN, resumable=True, ge=0)
    eval_samples: int = option(10000, "Generated images per --eval-every evaluation (>= 2048).", group=RUN,
                               resumable=True)
    monitor_every_steps: int = option(500, "Mode-collapse monitor: every N steps score a fixed batch of 256 samples "
                                      "(diversity and near-duplicates; classes for MNIST), log it and warn on collapse; "
                                      "also at step 200 (a first look); 0 = off.",
                                      flag="--monitor-every", group=RUN, resumable=True, ge=0)
    stop_on_collapse: bool = option(False, "Stop (naming the last good checkpoint) when the monitor sees mode collapse.",
                                    group=RUN, resumable=True)
    # False = metrics.jsonl only (also what a config.json written before the option existed loads as)
    tensorboard: bool = option(False, "Also write TensorBoard event files to <run>/tensorboard/ (losses, learning "
                               "rates, eval and monitor scores, the fixed-z grids, hparams); needs "
                               "pip install 'gancli[tensorboard]'.", group=RUN,
                               resumable=True)
    augment: str = option("", "DiffAugment on D's inputs (arXiv 2006.10738): none, diffaug, "
                          "diffaug:color,translation,cutout.", group=OPTIM, default_text="none")
    precision: str = option("auto", "Autocast dtype of G and D: auto (bf16 where this CPU measures it faster, "
                            "else fp32), fp32, bf16, fp16 (loss-scaled).", group=SPEED,
                            registry="precision", resumable=True)
    channels_last: bool = option(True, "Conv models (dcgan, resnet) in channels_last memory format.", group=SPEED,
                                 resumable=True)
    compile: bool = option(False, "Run G and D through torch.compile (slow start; needs a C++ compiler on CPU).",
                           group=SPEED, resumable=True)
    sync_bn: bool = option(False, "Several CUDA processes: BatchNorm statistics over the global batch.", group=SPEED,
                           resumable=True)


@dataclass(frozen=True)
class TaskConfig:
    """What the run learns (:mod:`gancli.tasks`): images from noise (``generate``, every run
    before issue #24) or an image-to-image task, with the options of its corruption
    (:mod:`gancli.translate.corrupt`; the defaults are the corruptions' own) or of its data
    (``paired_layout``, :mod:`gancli.translate.pairs`). An option of
    another task than the run's keeps its default and is refused when given."""

    name: str = option("generate", "What G learns: generate = images from noise (a GAN); the others translate "
                       "an image: corrupted -> clean images, paired A/ -> B/ (pix2pix, arXiv 1611.07004), "
                       "unpaired A/ <-> B/ (CycleGAN, arXiv 1703.10593).", flag="--task",
                       group=TASK, registry="task")
    mask: str = option("box", "--task inpaint: the holes: squares of --mask-size, free-form brush strokes, or "
                       "either at random.", group=TASK, choices=MASK_KINDS)
    mask_size: int = option(0, "--task inpaint: side of a square hole, pixels; 0 = 3/7 of the image side "
                            "(12 px on MNIST).", group=TASK, ge=0)
    scale: int = option(4, "--task superres: downscaling factor (2, 4 or 8, dividing the image size).", group=TASK,
                        gt=0)
    upsample: str = option("bicubic", "--task superres: how the low-resolution image is brought back to full "
                           "size for G.", group=TASK, choices=UPSAMPLE_MODES)
    noise_std: float = option(0.2, "--task denoise: standard deviation of the Gaussian noise, in [-1, 1] units "
                              "(0.2 = 25.5 of 255).", group=TASK, gt=0, le=2)
    edge_threshold: float = option(0.2, "--task edges: Sobel gradient magnitude above which a pixel is an edge "
                                   "(1 = a sharp step across the whole range).", group=TASK, gt=0, lt=1.5)
    paired_layout: str = option("folders", "--task paired: how the --dataset folder holds the pairs: folders = "
                                "A/ (inputs) and B/ (targets) matched by file name; ab = side-by-side A|B images "
                                "(pix2pix's datasets; in ROOT/train when that folder exists).", group=TASK,
                                choices=PAIRED_LAYOUTS)
    cycle_weight: float = option(10.0, "--task unpaired: weight of each cycle-consistency L1, |G_ba(G_ab(a)) - a| "
                                 "and |G_ab(G_ba(b)) - b| (CycleGAN's lambda, arXiv 1703.10593).", group=TASK, ge=0)
    identity_weight: float = option(0.5, "--task unpaired: weight of the identity L1s |G_ba(a) - a| and "
                                    "|G_ab(b) - b| as a fraction of --cycle-weight; 0 = off.", group=TASK, ge=0)


#: Sections that a config written by an older gancli may lack; they read as their defaults
#: (``task``: every run before issue #24 generates from noise).
OPTIONAL_SECTIONS = frozenset({"task"})


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
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
            if f.name not in d and f.name in OPTIONAL_SECTIONS:
                continue
            if f.name not in d:  # a missing section is damage, not a request for defaults
                raise GancliError(f"config has no {f.name!r} section")
            parts[f.name] = section_from_dict(sub_cls, d[f.name], f.name)
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


#: (section, key) -> what a config.json written before the key's default changed loads as, so an
#: older run resumes as it trained: ``--precision`` was fp32 before ``auto`` became the default.
LEGACY_DEFAULTS: dict[tuple[str, str], Any] = {("train", "precision"): "fp32"}


def section_from_dict(sub_cls: type, d: Any, section: str) -> Any:
    """One config section (``DataConfig``, ``ModelConfig``...) from its JSON object.

    Raises:
        GancliError: not an object, unknown keys, or a value of the wrong JSON type.
    """
    if not isinstance(d, dict):
        raise GancliError(f"config section {section!r} is not a JSON object")
    d = {**{k: v for (sec, k), v in LEGACY_DEFAULTS.items() if sec == section}, **d}
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


# -- the option table, generated from the field metadata ----------------------------------
@dataclass(frozen=True)
class OptionSpec:
    """One ``gan train`` option as declared on its field (see :func:`option`)."""

    name: str  # flat option name: the long flag without dashes, '-' -> '_' (``log_every``)
    section: str  # RunConfig section ("train")
    field: str  # field in that section ("log_every_steps")
    type: str  # "int" | "float" | "bool" | "str" | "float | None"
    default: Any
    flag: str
    short: str | None
    help: str
    group: str
    choices: tuple[str, ...] | None
    registry: str | None
    default_text: str | None
    resumable: bool
    negative: bool
    bounds: Bounds | None  # numbers: the valid range; None = any
    finite: bool  # floats: inf and nan are refused


def option_specs() -> list[OptionSpec]:
    """Every field declared with :func:`option`, in declaration order."""
    out = []
    for sec in dataclasses.fields(RunConfig):
        if sec.name == "version":
            continue
        for f in dataclasses.fields(sec.default_factory):  # type: ignore[arg-type]
            meta = f.metadata.get("option")
            if meta is None:
                continue
            flag_ = meta["flag"] or "--" + f.name.replace("_", "-")
            out.append(OptionSpec(
                name=flag_[2:].replace("-", "_"), section=sec.name, field=f.name, type=str(f.type), default=f.default,
                flag=flag_, short=meta["short"], help=meta["help"], group=meta["group"], choices=meta["choices"],
                registry=meta["registry"], default_text=meta["default_text"], resumable=meta["resumable"],
                negative=meta["negative"], bounds=meta["bounds"], finite=meta["finite"] and "float" in str(f.type)))
    return out


#: Flat option name (as on the command line, dashes -> underscores) -> (section, field).
OPTION_FIELDS: dict[str, tuple[str, str]] = {s.name: (s.section, s.field) for s in option_specs()}

#: Options that may change when a run is resumed: the length, the evaluation, and how (not
#: what) the step computes. The number of processes is not part of the config, so it may
#: change too.
RESUMABLE_OPTIONS = frozenset(s.name for s in option_specs() if s.resumable)


def flag(option_name: str) -> str:
    """``log_every`` -> ``--log-every``."""
    return "--" + option_name.replace("_", "-")
