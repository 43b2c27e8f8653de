"""What a run learns (``gan train --task``), one registry entry per task.

* ``generate``: a GAN draws images from noise, ``G(z)`` (every run before issue #24; the default).
* ``inpaint``, ``superres``, ``denoise``, ``colorize``, ``edges``: pix2pix (Isola et al. 2017,
  arXiv 1611.07004) on the dataset's own images: each batch is corrupted on the fly
  (:mod:`gancli.translate.corrupt`, a pure function of (seed, step), so resume stays exact) and
  G learns to map the corrupted image back to the clean one, ``G(x)``, D judging (input, output)
  pairs. Their recipe: the ``unet`` architecture (U-Net G + PatchGAN D), L1 weight 100, Adam
  2e-4 with betas 0.5 / 0.999, no mode-collapse monitor (it scores noise-to-image samples).
* ``paired``: pix2pix on a folder of image pairs (:mod:`gancli.translate.pairs`: ``A/`` and
  ``B/`` matched by file name, or side-by-side A|B images with ``--paired-layout ab``); G maps
  A to B. The same recipe and step, with no corruption: the step takes each batch's inputs
  from A by the indices of its targets (:func:`gancli.engine.launch.load_training_data`).
* ``unpaired``: CycleGAN (Zhu et al. 2017, arXiv 1703.10593) between two domains, the folders
  ``A/`` and ``B/`` (or ``trainA/`` and ``trainB/``) of ``--dataset ROOT``
  (:mod:`gancli.translate.pairs`): two ResNet generators ``G_ab``, ``G_ba`` and two PatchGANs
  (``--arch cyclegan``). Recipe: ``lsgan``, cycle weight 10, identity 0.5, 50-image pools,
  Adam 2e-4 with betas 0.5 / 0.999, no monitor, and ``--adv-weight 2``: gancli's ``lsgan``
  has Mao et al.'s 1/2 in front of G's squared error, so 2 gives the reference's balance of
  the adversarial and the cycle terms (:class:`~gancli.translate.cyclegan.CycleGANStep`).

A :class:`Task` says which training step runs it (``step``, a key of
:data:`gancli.engine.steps.STEPS`), which corruption makes its inputs and which
:class:`~gancli.config.TaskConfig` options it takes; :func:`check_task_config` checks a
resolved config against it (the resolver calls it before any run directory exists).

Torch-free: the CLI lists the tasks in ``gan train --help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gancli.errors import UsageError
from gancli.registry import Registry
from gancli.translate import corrupt

if TYPE_CHECKING:
    from gancli.data import DatasetInfo

#: The recipe of the pix2pix tasks (flat option -> value): below the loss's recipe and explicit
#: options (:func:`gancli.resolve.build_config`).
PIX2PIX_RECIPE: dict[str, Any] = {"arch": "unet", "l1_weight": 100.0, "optimizer": "adam", "lr_g": 2e-4,
                                  "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "monitor_every": 0}
#: The recipe of ``--task unpaired`` (CycleGAN, arXiv 1703.10593; see the module doc for ``adv_weight``).
#: (cycle weight 10 and identity 0.5 are the defaults of --cycle-weight / --identity-weight.)
CYCLEGAN_RECIPE: dict[str, Any] = {"arch": "cyclegan", "loss": "lsgan", "adv_weight": 2.0, "optimizer": "adam",
                                   "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "monitor_every": 0}
#: The :class:`~gancli.config.TaskConfig` fields that are options of a corruption.
CORRUPTION_OPTIONS = ("mask", "mask_size", "scale", "upsample", "noise_std", "edge_threshold")
#: The :class:`~gancli.config.TaskConfig` fields that are options of a task's data (``--task paired``).
DATA_OPTIONS = ("paired_layout",)
#: The :class:`~gancli.config.TaskConfig` fields that weigh CycleGAN's extra terms.
CYCLE_OPTIONS = ("cycle_weight", "identity_weight")
#: Every option of one task or another: each is refused with the tasks that do not take it.
TASK_OPTIONS = CORRUPTION_OPTIONS + DATA_OPTIONS + CYCLE_OPTIONS
#: Options (flat names) of the image-to-image tasks' loss, refused with ``--task generate``.
TRANSLATION_OPTIONS = ("l1_weight", "adv_weight")
#: The loss options each translation step takes (flat names); the others are refused.
STEP_LOSS_OPTIONS = {"pix2pix": ("l1_weight", "adv_weight"), "cyclegan": ("adv_weight",)}
#: The architecture kind of each translation step (``--arch``).
STEP_ARCHS = {"pix2pix": ("unet",), "cyclegan": ("cyclegan",)}


@dataclass(frozen=True)
class Task:
    """One ``--task``.

    Attributes:
        name: the ``--task`` value.
        step: the training step that runs it: ``generate``, ``pix2pix`` or ``cyclegan``
            (:data:`gancli.engine.steps.STEPS`).
        corruption: the :data:`~gancli.translate.corrupt.TASKS` entry that makes G's inputs;
            ``""`` = none (``generate``, ``paired``, ``unpaired``).
        data: what ``--dataset`` is: ``""`` = a dataset name or an image folder
            (:mod:`gancli.data`); ``"paired"`` = a folder of image pairs, whose A images are G's
            inputs (:mod:`gancli.translate.pairs`); ``"unpaired"`` = a folder of two domain
            folders (:func:`gancli.translate.pairs.domain_folders`).
    """

    name: str
    step: str
    corruption: str = ""
    data: str = ""

    @property
    def translates(self) -> bool:
        """G maps an image to an image (``G(x)``) instead of drawing one from ``z``."""
        return self.step != "generate"

    @property
    def paired(self) -> bool:
        """G's inputs are the A images of a folder of pairs (``--task paired``)."""
        return self.data == "paired"

    @property
    def grid_rows(self) -> str:
        """What the rows of the run's sample grids show (``gan train``'s closing line)."""
        if self.step == "cyclegan":
            return "A, G_ab(A), B, G_ba(B)"
        return "input, output, target" if self.translates else "fixed z"

    @property
    def corruption_option_names(self) -> tuple[str, ...]:
        """The :class:`~gancli.config.TaskConfig` options of this task's corruption."""
        return tuple(corrupt.TASKS.get(self.corruption).options) if self.corruption else ()

    @property
    def options(self) -> tuple[str, ...]:
        """The :class:`~gancli.config.TaskConfig` options this task takes."""
        if self.step == "cyclegan":
            return CYCLE_OPTIONS
        return self.corruption_option_names + (DATA_OPTIONS if self.paired else ())

    def input_channels(self, channels: int) -> int:
        """C of G's image input for images (targets) of ``channels`` channels; 0 = G takes ``z``.
        A paired task's inputs A and an unpaired task's two domains are brought to ``channels``
        (``--channels``)."""
        if self.corruption:
            return corrupt.TASKS.get(self.corruption).input_channels(channels)
        return channels if self.translates else 0

    def describe_data(self, cfg: Any) -> DatasetInfo:
        """What the training data of a :class:`~gancli.config.RunConfig` yields, without decoding
        images: :func:`gancli.data.describe` of ``cfg.data``; ``paired``: the pairs of the folder
        (:func:`gancli.translate.pairs.describe_paired`: the targets' shape, the number of pairs);
        ``unpaired``: the two domain folders (``train`` size = domain A's).

        Raises:
            UsageError / UnknownDatasetError / GancliError: a bad dataset for the task (an unknown
            dataset, a registered dataset name for a folder task, unmatched A/B names, an empty folder...).
        """
        if self.data == "unpaired":
            from gancli.translate.pairs import describe_unpaired

            return describe_unpaired(cfg.data)
        if self.data == "paired":
            from gancli.translate.pairs import describe_paired

            return describe_paired(cfg.data, cfg.task.paired_layout)
        from gancli.data import describe

        return describe(cfg.data)

    def load_data(self, cfg: Any, root: Any) -> Any:
        """The training data of this task as :class:`~gancli.data.ImageData`: ``paired``: the
        targets B as ``images``, the inputs A as ``inputs``, ``labels`` = ``arange(N)``
        (:func:`gancli.translate.pairs.load_paired_split`); ``unpaired``: a
        :class:`~gancli.translate.pairs.DomainData` (domain A as ``images``, domain B as ``b``);
        otherwise :func:`gancli.data.load_split` of ``cfg.data`` (``root``: the data directory).
        Errors as those functions."""
        if self.data == "unpaired":
            from gancli.translate.pairs import load_domains

            return load_domains(cfg.data)
        if self.data == "paired":
            from gancli.translate.pairs import load_paired_split

            return load_paired_split(cfg.data, cfg.task.paired_layout)
        from gancli.data import load_split

        return load_split(cfg.data, root)

    def corruption_options(self, task_cfg: Any) -> dict[str, Any]:
        """This task's corruption options (keyword arguments of
        :func:`~gancli.translate.corrupt.corrupt`), from a :class:`~gancli.config.TaskConfig`."""
        return {name: getattr(task_cfg, name) for name in self.corruption_option_names}


#: ``--task`` names -> :class:`Task`; entry defaults are the task's recipe.
TRAINING_TASKS: Registry[Task] = Registry("task")
TRAINING_TASKS.register("generate", "images from noise: a GAN, G(z)")(Task("generate", "generate"))
for _entry in corrupt.TASKS:
    TRAINING_TASKS.register(_entry.name, f"pix2pix: {_entry.summary}", PIX2PIX_RECIPE)(
        Task(_entry.name, "pix2pix", corruption=_entry.name))
TRAINING_TASKS.register("paired", "pix2pix: A -> B on a folder of image pairs (A/ and B/ matched by file name, "
                        "or side-by-side A|B images: --paired-layout ab)", PIX2PIX_RECIPE)(
    Task("paired", "pix2pix", data="paired"))
TRAINING_TASKS.register("unpaired", "CycleGAN between the domain folders A/ and B/ of --dataset (trainA/ and "
                        "trainB/ also)", CYCLEGAN_RECIPE)(Task("unpaired", "cyclegan", data="unpaired"))


def _flags(names: Any) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def check_given_options(task_name: str, given: dict[str, Any]) -> None:
    """Refuse options of another task than ``task_name`` given explicitly (``given``: flat option
    name -> value), e.g. ``--task denoise --scale 2`` or ``--l1-weight 10`` with ``--task generate``.

    Raises:
        UnknownNameError: an unknown task (naming the valid ones).
        UsageError: one line naming the options and those the task takes.
    """
    task = TRAINING_TASKS.get(task_name)
    foreign = [n for n in TASK_OPTIONS if n in given and n not in task.options]
    if foreign:
        takes = _flags(task.options) or "none"
        raise UsageError(f"--task {task_name} takes no {_flags(foreign)}; its options: {takes}")
    loss_terms = [n for n in TRANSLATION_OPTIONS if n in given]
    if loss_terms and not task.translates:
        raise UsageError(f"--task {task_name} takes no {_flags(loss_terms)}; they weigh the loss of the "
                         f"image-to-image tasks ({', '.join(n for n in TRAINING_TASKS.names() if n != 'generate')})")
    other = [n for n in loss_terms if task.translates and n not in STEP_LOSS_OPTIONS[task.step]]
    if other:
        raise UsageError(f"--task {task_name} takes no {_flags(other)}; its loss weights: "
                         f"{_flags(STEP_LOSS_OPTIONS[task.step] + task.options)}")


def check_task_config(cfg: Any) -> None:
    """Check a resolved :class:`~gancli.config.RunConfig` against its task: the corruption's
    options against the image shape (colorize needs RGB, ``--scale`` must divide the size...),
    the architecture's kind, and the options a translation run cannot use yet.

    Raises:
        UsageError: one line naming the bad value and the valid choices.
    """
    from gancli.models import TRANSLATORS

    task = TRAINING_TASKS.get(cfg.task.name)
    m, loss = cfg.model, cfg.loss
    if not task.translates:
        if m.arch in TRANSLATORS:
            raise UsageError(f"--arch {m.arch} translates images; give it an image-to-image --task "
                             f"({', '.join(n for n in TRAINING_TASKS.names() if n != 'generate')})")
        return
    if task.corruption:
        corrupt.check_task(task.corruption, m.img_channels, m.img_resolution, m.img_resolution,
                           **task.corruption_options(cfg.task))
    if m.arch not in TRANSLATORS:
        raise UsageError(f"--arch {m.arch} draws images from noise; --task {task.name} needs an image-to-image "
                         f"architecture: {', '.join(STEP_ARCHS[task.step])}")
    if m.arch not in STEP_ARCHS[task.step]:
        raise UsageError(f"--arch {m.arch} does not fit --task {task.name}; its architecture: "
                         f"{', '.join(STEP_ARCHS[task.step])}")
    if task.step == "cyclegan":
        _check_cyclegan(cfg)
    elif not loss.l1_weight and not loss.adv_weight:
        raise UsageError(f"--l1-weight 0 and --adv-weight 0 leave --task {task.name} nothing to learn; "
                         "give one of them > 0")
    # not wired for translation runs yet (issue #24): refused rather than silently wrong
    if m.d_norm == "layer":
        raise UsageError(f"--d-norm layer is not available with --task {task.name} (the PatchGAN's: batch, none)")
    if cfg.train.monitor_every_steps:
        raise UsageError(f"--monitor-every {cfg.train.monitor_every_steps} is not available with --task {task.name}: "
                         "the collapse monitor scores samples drawn from noise; watch a translation run with "
                         "--eval-every N (PSNR, SSIM, FD, label preservation) and leave --monitor-every at 0")


def _check_cyclegan(cfg: Any) -> None:
    """What CycleGAN's step (:class:`~gancli.engine.steps.CycleGANTrainStep`) cannot do yet."""
    name = cfg.task.name
    if not cfg.loss.adv_weight:
        raise UsageError(f"--adv-weight 0 is not valid with --task {name}: the adversarial terms are CycleGAN's only "
                         "link between the domains; give a weight > 0 (recipe: 2)")
    if cfg.optim.d_steps != 1:
        raise UsageError(f"--d-steps {cfg.optim.d_steps} is not available with --task {name} (one D update of both "
                         "discriminators per step); leave it at 1")
    if cfg.train.compile:
        raise UsageError(f"--compile is not available with --task {name} yet; leave it off")
    if cfg.train.nan_policy == "skip":
        raise UsageError(f"--nan-policy skip is not available with --task {name} yet (its updates are "
                         "CycleGANStep's own); use --nan-policy stop")
