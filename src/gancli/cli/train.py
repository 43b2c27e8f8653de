"""``gan train``: build a run config from options and train (or resume) a GAN."""

from __future__ import annotations

import os
import signal
from typing import Any

import typer

from gancli import console
from gancli.cli.common import handles_errors, state
from gancli.config import DEFAULT_EPOCHS, build_config
from gancli.data import DATASETS
from gancli.errors import UsageError
from gancli.losses import LOSSES
from gancli.models import ARCHS
from gancli.presets import PRESETS

_DATA = "Data"
_MODEL = "Model"
_OPT = "Optimization"
_RUN = "Run"
_SPEED = "Speed and scale"


def _choices(registry) -> str:
    return ", ".join(registry.names())


class StopOnSignal:
    """First SIGINT/SIGTERM: ask the loop to checkpoint and stop after the current
    step (exit 130/143). A second signal of either kind aborts at once with exit
    130; files are written atomically, so nothing half-written is left."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        console.warn(
            f"{signal.Signals(signum).name}: finishing the current step and saving a checkpoint "
            "(Ctrl-C again aborts without saving)"
        )

    def __enter__(self) -> StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _print_presets() -> None:
    from rich.table import Table

    table = Table(title="presets (gan train --preset NAME; explicit flags win)", title_justify="left")
    table.add_column("name", no_wrap=True, style="bold")
    for col in ("recipe", "options", "expected cost", "source"):
        table.add_column(col, overflow="fold")
    for entry in PRESETS:
        p = entry.obj
        opts = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in p.options.items())
        table.add_row(entry.name, p.summary, opts, p.cost, p.source)
    console.out.print(table)


@handles_errors
def train(
    ctx: typer.Context,
    dataset: str = typer.Option(None, "--dataset", "-d", rich_help_panel=_DATA, show_default=False,
                                help=f"Dataset: {_choices(DATASETS)}, or a folder of images. \\[default: mnist]"),
    limit: int = typer.Option(None, "--limit", rich_help_panel=_DATA, show_default=False,
                              help="Train on the first N images only. \\[default: all]"),
    download: bool = typer.Option(None, "--download/--no-download", rich_help_panel=_DATA, show_default=False,
                                  help="Download the dataset if missing. \\[default: download]"),
    image_size: int = typer.Option(None, "--image-size", rich_help_panel=_DATA, show_default=False,
                                   help="Center-crop + resize to this size, pixels. \\[default: the dataset's; 64 for folders]"),
    channels: int = typer.Option(None, "--channels", rich_help_panel=_DATA, show_default=False,
                                 help="1 = grayscale, 3 = RGB. \\[default: the dataset's; 3 for folders]"),
    skip_bad_images: bool = typer.Option(None, "--skip-bad-images", rich_help_panel=_DATA, show_default=False,
                                         help="Image folders and CelebA: skip unreadable files (reported) instead of failing."),
    arch: str = typer.Option(None, "--arch", "-a", rich_help_panel=_MODEL, show_default=False,
                             help=f"Architecture: {_choices(ARCHS)}. \\[default: dcgan]"),
    nz: int = typer.Option(None, "--nz", rich_help_panel=_MODEL, show_default=False,
                           help="Latent dimension of z ~ N(0, I). \\[default: 100]"),
    ngf: int = typer.Option(None, "--ngf", rich_help_panel=_MODEL, show_default=False,
                            help="Generator width (dcgan: last hidden layer; resnet: 4x this). \\[default: 64]"),
    ndf: int = typer.Option(None, "--ndf", rich_help_panel=_MODEL, show_default=False,
                            help="Discriminator width (dcgan: first layer; resnet: 2x this). \\[default: 64]"),
    conditional: bool = typer.Option(None, "--conditional/--unconditional", rich_help_panel=_MODEL,
                                     show_default=False,
                                     help="Class-conditional G (embedding / conditional BN) and projection D. "
                                     "\\[default: unconditional]"),
    spectral_norm: bool = typer.Option(None, "--spectral-norm/--no-spectral-norm", rich_help_panel=_MODEL,
                                       show_default=False, help="Spectral norm on D (arXiv 1802.05957). \\[default: off]"),
    d_norm: str = typer.Option(None, "--d-norm", rich_help_panel=_MODEL, show_default=False,
                               help="Normalisation in the dcgan D: batch, none (spectral norm replaces it). "
                               "\\[default: batch; none for wgan-gp]"),
    ema_decay: float = typer.Option(None, "--ema-decay", rich_help_panel=_MODEL, show_default=False,
                                    help="EMA of G's weights, used for samples; 0 = off. \\[default: 0.999]"),
    loss: str = typer.Option(None, "--loss", rich_help_panel=_OPT, show_default=False,
                             help=f"Adversarial loss: {_choices(LOSSES)}. \\[default: bce (non-saturating)]"),
    gp_lambda: float = typer.Option(None, "--gp-lambda", rich_help_panel=_OPT, show_default=False,
                                    help="Gradient penalty weight; 0 = off. \\[default: 0; 10 for wgan-gp]"),
    r1_gamma: float = typer.Option(None, "--r1-gamma", rich_help_panel=_OPT, show_default=False,
                                   help="R1 penalty weight gamma (arXiv 1801.04406); 0 = off. \\[default: 0]"),
    r1_every: int = typer.Option(None, "--r1-every", rich_help_panel=_OPT, show_default=False,
                                 help="Lazy R1: every N D updates. \\[default: 16]"),
    augment: str = typer.Option(None, "--augment", rich_help_panel=_OPT, show_default=False,
                                help="DiffAugment on D's inputs: none, diffaug, diffaug:color,translation,cutout "
                                "(arXiv 2006.10738). \\[default: none]"),
    steps: int = typer.Option(None, "--steps", rich_help_panel=_OPT, show_default=False,
                              help="Training steps (--d-steps D updates + one G update each)."),
    epochs: float = typer.Option(None, "--epochs", rich_help_panel=_OPT, show_default=False,
                                 help=f"Training length in passes over the data. \\[default: {DEFAULT_EPOCHS:g}]"),
    batch_size: int = typer.Option(None, "--batch-size", "-b", rich_help_panel=_OPT, show_default=False,
                                   help="Images per step. \\[default: 64]"),
    lr: float = typer.Option(None, "--lr", rich_help_panel=_OPT, show_default=False,
                             help="Learning rate of both G and D. \\[default: 2e-4]"),
    lr_g: float = typer.Option(None, "--lr-g", rich_help_panel=_OPT, show_default=False,
                               help="Generator learning rate (overrides --lr)."),
    lr_d: float = typer.Option(None, "--lr-d", rich_help_panel=_OPT, show_default=False,
                               help="Discriminator learning rate (overrides --lr)."),
    beta1: float = typer.Option(None, "--beta1", rich_help_panel=_OPT, show_default=False,
                                help="Adam beta1. \\[default: 0.5]"),
    beta2: float = typer.Option(None, "--beta2", rich_help_panel=_OPT, show_default=False,
                                help="Adam beta2. \\[default: 0.999]"),
    optimizer: str = typer.Option(None, "--optimizer", rich_help_panel=_OPT, show_default=False,
                                  help="adam, sgd or rmsprop. \\[default: adam]"),
    momentum: float = typer.Option(None, "--momentum", rich_help_panel=_OPT, show_default=False,
                                   help="SGD/RMSprop momentum. \\[default: 0]"),
    lr_schedule: str = typer.Option(None, "--lr-schedule", rich_help_panel=_OPT, show_default=False,
                                    help="constant, linear or cosine (decaying towards 0 over the run). \\[default: constant]"),
    d_steps: int = typer.Option(None, "--d-steps", rich_help_panel=_OPT, show_default=False,
                                help="D updates per G update. \\[default: 1; 5 for wgan-gp]"),
    nan_policy: str = typer.Option(None, "--nan-policy", rich_help_panel=_RUN, show_default=False,
                                   help="On a NaN/Inf loss: stop (name the last good checkpoint) or skip that update "
                                   "(checks every step: a device sync). \\[default: stop]"),
    seed: int = typer.Option(None, "--seed", rich_help_panel=_OPT, show_default=False,
                             help="Seed of weights, data order, z, fake labels, augmentation. \\[default: 0]"),
    device: str = typer.Option(None, "--device", rich_help_panel=_RUN, show_default=False,
                               help="auto, cpu, cuda, cuda:N or mps; auto = CUDA, then MPS, then CPU. \\[default: auto]"),
    log_every: int = typer.Option(None, "--log-every", rich_help_panel=_RUN, show_default=False,
                                  help="Log metrics every N steps. \\[default: 100]"),
    sample_every: int = typer.Option(None, "--sample-every", rich_help_panel=_RUN, show_default=False,
                                     help="Write the fixed-z 8x8 grid every N steps; 0 = at the end only. \\[default: 500]"),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", rich_help_panel=_RUN, show_default=False,
                                         help="Checkpoint every N steps; 0 = at the end only. \\[default: 1000]"),
    keep: int = typer.Option(None, "--keep", rich_help_panel=_RUN, show_default=False,
                             help="Keep the newest K checkpoints; 0 = all. \\[default: 3]"),
    eval_every: int = typer.Option(None, "--eval-every", rich_help_panel=_RUN, show_default=False,
                                   help="Every N steps compute FD-LeNet (MNIST) or FID (other datasets, needs the Inception "
                                   "weights), log it and keep checkpoints/best.safetensors; 0 = off. \\[default: 0]"),
    eval_samples: int = typer.Option(None, "--eval-samples", rich_help_panel=_RUN, show_default=False,
                                     help="Generated images per --eval-every evaluation (>= 2048). \\[default: 10000]"),
    resume: str = typer.Option(None, "--resume", metavar="RUN", rich_help_panel=_RUN, show_default=False,
                               help="Continue RUN (run-N, N, latest or a run directory) from its newest valid checkpoint; "
                               "--steps/--epochs extend it."),
    preset: str = typer.Option(None, "--preset", rich_help_panel=_RUN, show_default=False,
                               help=f"Known-good recipe: {_choices(PRESETS)}; explicit flags win."),
    list_presets: bool = typer.Option(False, "--list-presets", rich_help_panel=_RUN,
                                      help="List the presets with their cost and source, and exit."),
    dry_run: bool = typer.Option(False, "--dry-run", rich_help_panel=_RUN,
                                 help="Print the resolved config as JSON and exit."),
    precision: str = typer.Option(None, "--precision", rich_help_panel=_SPEED, show_default=False,
                                  help="fp32, bf16 or fp16: autocast dtype of G and D (fp16 with loss scaling). "
                                  "\\[default: fp32]"),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last", rich_help_panel=_SPEED,
                                       show_default=False,
                                       help="Conv models (dcgan, resnet) in channels_last memory format. \\[default: on]"),
    compile: bool = typer.Option(None, "--compile/--no-compile", rich_help_panel=_SPEED, show_default=False,
                                 help="Run G and D through torch.compile (slow start; needs a C++ compiler on CPU). "
                                 "\\[default: off]"),
    sync_bn: bool = typer.Option(None, "--sync-bn/--no-sync-bn", rich_help_panel=_SPEED, show_default=False,
                                 help="Several CUDA processes: BatchNorm statistics over the global batch. "
                                 "\\[default: off]"),
    nproc: int = typer.Option(None, "--nproc", rich_help_panel=_SPEED, show_default=False,
                              help="Train with N processes on this machine (one per GPU, or CPU processes) through "
                              "torchrun; --batch-size stays the global batch. For several machines run torchrun "
                              "yourself (docs/distributed.md). \\[default: 1]"),
) -> None:
    """Train a GAN; checkpoints, samples and metrics go to <home>/runs/run-N.

    Examples:

      gan train --dataset mnist --arch dcgan --epochs 1

      gan train --arch mlp --steps 5000 --device cuda

      gan train --resume latest --steps 4000

      gan train --dataset mnist --arch dcgan --nproc 2
    """
    if list_presets:
        _print_presets()
        return
    from gancli.engine.distributed import env_ranks

    st = state(ctx)
    rank, world, _ = env_ranks()
    if rank > 0:  # ranks > 0 of a torchrun job print errors only
        console.settings.errors_only = True
    options = dict(dataset=dataset, limit=limit, download=download, image_size=image_size, channels=channels,
                   skip_bad_images=skip_bad_images, arch=arch, nz=nz, ngf=ngf, ndf=ndf, conditional=conditional,
                   spectral_norm=spectral_norm, d_norm=d_norm, ema_decay=ema_decay, loss=loss, gp_lambda=gp_lambda,
                   r1_gamma=r1_gamma, r1_every=r1_every, augment=augment, steps=steps, epochs=epochs,
                   batch_size=batch_size, lr_g=lr_g if lr_g is not None else lr,
                   lr_d=lr_d if lr_d is not None else lr, beta1=beta1, beta2=beta2, optimizer=optimizer,
                   momentum=momentum, lr_schedule=lr_schedule, d_steps=d_steps, nan_policy=nan_policy, seed=seed, device=device,
                   log_every=log_every, sample_every=sample_every, checkpoint_every=checkpoint_every, keep=keep,
                   eval_every=eval_every, eval_samples=eval_samples, precision=precision,
                   channels_last=channels_last, compile=compile, sync_bn=sync_bn)
    store = st.store()
    run = None
    if resume is not None:
        run = store.resolve(resume)
        cfg = build_config(options, base=run.read_config(), preset=preset)
    else:
        cfg = build_config(options, preset=preset)
    from gancli.engine.launch import preflight
    from gancli.engine.launch import train as launch

    if nproc is not None and nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    if nproc is not None and nproc > 1 and world > 1:
        raise UsageError("--nproc cannot be used inside torchrun (it already started the processes)")
    if nproc is not None and nproc > 1:
        from gancli.engine.distributed import rank_device

        rank_device(cfg.train.device, nproc - 1)  # a device each process may use; enough GPUs
    preflight(cfg, max(world, nproc or 1))
    if dry_run:
        if rank == 0:
            console.out.print_json(cfg.to_json())
        return
    if nproc is not None and nproc > 1:
        _launch_processes(ctx, nproc, run)

    from gancli.engine import distributed

    dist, device = distributed.setup(cfg.train.device)
    reporter = console.make_reporter() if dist.is_main else None

    def started(run, trainer) -> None:
        how = " (auto)" if cfg.train.device == "auto" else ""
        what = f"resuming {run.id} at step {trainer.step}" if resume else f"{run.id}:"
        cond = f", conditional ({cfg.model.num_classes} classes)" if cfg.model.num_classes else ""
        length = f"{cfg.train.steps} steps" + (f" ({cfg.train.epochs:g} epochs)" if cfg.train.epochs else "")
        console.info(
            f"{what} {cfg.model.arch} on {cfg.data.dataset} ({len(trainer.batcher)} images, "
            f"{cfg.model.img_channels}x{cfg.model.img_resolution}x{cfg.model.img_resolution}){cond}, loss {cfg.loss.name}, "
            f"{length}, batch {cfg.train.batch_size}, device {trainer.device}{how}"
            + (f", {dist.world_size} processes (batch {cfg.train.batch_size // dist.world_size} each)"
               if dist.enabled else "")
        )
        console.info(f"run directory: {run.path}")

    with StopOnSignal() as stop:
        try:
            run, result = launch(cfg, store, st.data_path, resume=run, reporter=reporter, should_stop=stop,
                                 on_run=started, dist=dist, device=device)
        except KeyboardInterrupt:
            console.error("aborted by a second interrupt; the newest checkpoint on disk is intact")
            raise typer.Exit(130) from None
        finally:
            distributed.teardown(dist)

    ckpt = result.last_checkpoint
    if result.interrupted:
        code = 128 + (stop.signum or signal.SIGINT)
        console.warn(
            f"stopped at step {result.step}/{result.total_steps}; checkpoint {ckpt}. "
            f"Resume with: gan train --resume {run.id}"
        )
        raise typer.Exit(code)
    console.info(
        f"done: {result.step} steps; this session {console.fmt_duration(result.seconds)} "
        f"at {result.images_per_sec:.0f} img/s; checkpoint {ckpt}"
    )
    console.info(f"next: gan sample {run.id} -n 64 -o grid.png")


def _launch_processes(ctx: typer.Context, nproc: int, run) -> None:
    """``gan train --nproc N``: run this same command without ``--nproc`` in N processes
    through torchrun's standalone launcher, then exit with their exit code."""
    from gancli.engine.distributed import launch_local

    st = state(ctx)
    os.environ["GANCLI_HOME"] = str(st.home_path.resolve())
    os.environ["GANCLI_DATA_DIR"] = str(st.data_path.resolve())
    argv = (["--quiet"] if console.settings.quiet else []) + ["--verbose"] * console.settings.verbose + ["train"]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)  # an enum of (typer's) click
        if param.name == "nproc" or getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        if param.name == "resume":
            value = str(run.path)  # as resolved here: `latest` must not move meanwhile
        if getattr(param, "is_flag", False):
            if value:
                argv.append(param.opts[0])
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
        else:
            argv += [param.opts[0], str(value)]
    raise typer.Exit(launch_local(nproc, argv))
