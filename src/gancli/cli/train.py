"""``gan train``: resolve a run config from options (once) and train (or resume) a GAN.

The options that are config fields are not written here: they are generated from the
field declarations in :mod:`gancli.config` (flag, help, panel, choices; the
``[default: ...]`` text from the real default and the loss recipes), so the help can
never disagree with what ``--dry-run`` shows. The few options that are not config
fields (``--lr``, ``--conditional``, ``--resume``, ``--preset``...) are declared in
:data:`COMMAND_OPTIONS`.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import typer

from gancli import console
from gancli.cli.common import Command, complete_names, complete_run, handles_errors, state
from gancli.config import DATA, MODEL, OPTIM, RUN, SPEED, TASK, OptionSpec, option_specs
from gancli.errors import UsageError
from gancli.resolve import registry
from gancli.units import fmt_duration

#: Environment variable through which ``gan train --nproc N`` hands its ranks the resolved
#: config (a JSON file: ``{"config": ..., "resume": run path or null}``) instead of argv.
LAUNCH_ENV = "GANCLI_LAUNCH_CONFIG"


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


# -- the option table --------------------------------------------------------------------
_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "float | None": float}
_METAVARS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "float | None": "FLOAT"}


def format_default(value: Any) -> str:
    """How a default reads in ``[default: ...]``: on/off for booleans, ``2e-04`` style for floats."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def task_recipe_groups(option: str) -> list[tuple[list[str], Any]]:
    """The tasks whose recipe sets ``option``, grouped by the value they set, in registry order:
    ``[(["inpaint", "superres", ...], 100.0)]``."""
    groups: dict[str, tuple[list[str], Any]] = {}
    for e in registry("task"):
        if option in e.defaults:
            value = e.defaults[option]
            groups.setdefault(repr(value), ([], value))[0].append(e.name)
    return list(groups.values())


def _recipe_defaults(spec: OptionSpec) -> str:
    """``; wgan-gp: 5`` for an option a loss recipe sets, ``; --arch mlp: 1`` for one an architecture's
    sets, ``; --task inpaint, superres: 100`` for one a task's sets."""
    parts = [f"{e.name}: {format_default(e.defaults[spec.name])}" for e in registry("loss") if spec.name in e.defaults]
    parts += [f"--arch {e.name}: {format_default(e.defaults[spec.name])}" for e in registry("arch")
              if spec.name in e.defaults]
    parts += [f"--task {', '.join(names)}: {format_default(value)}" for names, value in task_recipe_groups(spec.name)]
    return "; " + "; ".join(parts) if parts else ""


def option_help(spec: OptionSpec) -> str:
    """The help of a config option: its text (plain text: ``[`` is escaped for Rich, so
    ``gancli[tensorboard]`` reads as written), the valid names, and its real default."""
    text = spec.help.replace("[", "\\[")
    if spec.registry is not None:
        names = ", ".join(registry(spec.registry).names())
        text += f" Valid: {names}" + (", or a folder of images." if spec.registry == "dataset" else ".")
    elif spec.choices is not None:
        text += f" Valid: {', '.join(spec.choices)}."
    default = spec.default_text if spec.default_text is not None else format_default(spec.default)
    return f"{text} \\[default: {default}{_recipe_defaults(spec)}]"


def _config_parameter(spec: OptionSpec) -> inspect.Parameter:
    if spec.type == "bool":
        decls = [f"{spec.flag}/--no-{spec.flag[2:]}" if spec.negative else spec.flag]
        metavar = ""
    else:
        decls = [spec.flag]
        metavar = "NAME" if spec.registry or spec.choices else _METAVARS[spec.type]
    if spec.short:
        decls.append(spec.short)
    values = None
    if spec.registry is not None:
        kind = spec.registry
        values = complete_names(lambda: [e.name for e in registry(kind)])
    elif spec.choices is not None:
        choices = list(spec.choices)
        values = complete_names(lambda: choices)
    info = typer.Option(None, *decls, rich_help_panel=spec.group, show_default=False, metavar=metavar,
                        help=option_help(spec), autocompletion=values)
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_TYPES[spec.type])


#: The options ``gan train --help`` shows (parameter names); ``--help-all`` shows every one.
SHORT_HELP_OPTIONS = frozenset({"task", "dataset", "arch", "loss", "conditional", "epochs", "steps", "batch_size",
                                "lr", "seed", "device", "eval_every", "resume", "resume_from", "preset",
                                "list_presets", "dry_run", "as_json", "nproc", "help_all"})


def _show_all_help(ctx: typer.Context, value: bool) -> None:
    """``--help-all``: the help with every option, then exit."""
    if not value or ctx.resilient_parsing:
        return
    ctx.meta[HELP_ALL] = True
    text = ctx.get_help()  # Typer's rich help prints itself and returns ""
    if text:
        typer.echo(text)
    raise typer.Exit()


HELP_ALL = "gancli.help_all"


class TrainCommand(Command):
    """``gan train``: ``--help`` lists the common options (:data:`SHORT_HELP_OPTIONS`) and says
    how many more ``--help-all`` shows (all ~80 took ~400 lines at 80 columns)."""

    def format_help(self, ctx, formatter):
        if ctx.meta.get(HELP_ALL):
            return super().format_help(ctx, formatter)
        hidden = [p for p in self.params if p.name not in SHORT_HELP_OPTIONS and not getattr(p, "hidden", False)]
        for p in hidden:
            p.hidden = True
        try:
            super().format_help(ctx, formatter)
        finally:
            for p in hidden:
                p.hidden = False
        console.out.print(f" {len(hidden)} more options (model, optimizer, regularizers, schedule, monitor, "
                          "speed...): gan train --help-all", soft_wrap=True)


#: Options of ``gan train`` that are not config fields: name -> (type, typer.Option).
COMMAND_OPTIONS: dict[str, tuple[type, Any]] = {
    "help_all": (bool, typer.Option(False, "--help-all", rich_help_panel=RUN, is_eager=True, expose_value=False,
                                    callback=_show_all_help, metavar="",
                                    help="Show every option (--help shows the common ones) and exit.")),
    "lr": (float, typer.Option(None, "--lr", rich_help_panel=OPTIM, show_default=False, metavar="FLOAT",
                               help="Learning rate of both G and D (--lr-g / --lr-d override it).")),
    "conditional": (bool, typer.Option(None, "--conditional/--unconditional", rich_help_panel=MODEL, show_default=False,
                                       metavar="", help="Class-conditional G (embedding / conditional BN) and "
                                       "projection D; the classes come from the dataset. \\[default: unconditional]")),
    "resume": (str, typer.Option(None, "--resume", metavar="RUN", rich_help_panel=RUN, show_default=False,
                                 autocompletion=complete_run,
                                 help="Continue RUN (run-N, N, latest or a run directory) from its newest valid "
                                 "checkpoint; --steps/--epochs extend it.")),
    "resume_from": (str, typer.Option(None, "--from", metavar="CHECKPOINT", rich_help_panel=RUN, show_default=False,
                                      help="With --resume: continue from a checkpoint set aside as damaged "
                                      "(damaged/step-N) when none of the run's checkpoints is usable; lost RNG "
                                      "states are re-seeded (not bitwise), later records kept in "
                                      "metrics.past-step-N.jsonl.")),
    "force": (bool, typer.Option(False, "--force", rich_help_panel=SPEED, metavar="",
                                 help="With --precision bf16 on a CPU where bf16 measures more than 1.5x slower "
                                 "than fp32: train in bf16 anyway (else the run uses fp32 and says so). A resumed run "
                                 "keeps the precision it trained in.")),
    "preset": (str, typer.Option(None, "--preset", rich_help_panel=RUN, show_default=False, metavar="NAME",
                                 autocompletion=complete_names(lambda: [e.name for e in registry("preset")]),
                                 help="Known-good recipe (see --list-presets); explicit flags win.")),
    "list_presets": (bool, typer.Option(False, "--list-presets", rich_help_panel=RUN, metavar="",
                                        help="List the presets with their cost and source, and exit.")),
    "dry_run": (bool, typer.Option(False, "--dry-run", rich_help_panel=RUN, metavar="",
                                   help="Print the resolved config as JSON and exit.")),
    "as_json": (bool, typer.Option(False, "--json", rich_help_panel=RUN, metavar="",
                                   help="Print one JSON object on stdout at the end (run, steps, wall time, img/s, "
                                   "last losses, checkpoint); progress and notes go to stderr.")),
    "nproc": (int, typer.Option(None, "--nproc", rich_help_panel=SPEED, show_default=False, metavar="N",
                                help="Train with N processes on this machine (one per GPU, or CPU processes) through "
                                "torchrun; --batch-size stays the global batch. For several machines run torchrun "
                                "yourself (docs/distributed.md). \\[default: 1]")),
}

_PANEL_ORDER = {TASK: 0, DATA: 1, MODEL: 2, OPTIM: 3, RUN: 4, SPEED: 5}


def _signature() -> inspect.Signature:
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    config_params = [(_PANEL_ORDER[s.group], _config_parameter(s)) for s in option_specs()]
    extra = [(_PANEL_ORDER[info.rich_help_panel],
              inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=type_))
             for name, (type_, info) in COMMAND_OPTIONS.items()]
    params += [p for _, p in sorted(config_params + extra, key=lambda x: x[0])]
    return inspect.Signature(params)


def preset_flags(options: dict[str, Any]) -> str:
    """A preset's options as command-line flags (``--spectral-norm``, ``--no-compile``, ``--augment ''``)."""
    import shlex

    from gancli.config import flag

    out = []
    for name, value in options.items():
        f = flag(name) if name != "conditional" else "--conditional"
        if isinstance(value, bool):
            out.append(f if value else "--no-" + f[2:])
        else:
            out.append(f"{f} {shlex.quote(str(value))}")
    return " ".join(out)


def _print_presets() -> None:
    """One block per preset, wrapped at spaces (readable at 80 columns)."""
    from rich.padding import Padding
    from rich.text import Text

    console.out.print("presets (gan train --preset NAME; explicit flags win)")
    for entry in registry("preset"):
        p = entry.obj
        console.out.print()
        console.out.print(Text(entry.name, style="bold"))
        body = Text(p.summary)
        for label, value in (("options", preset_flags(p.options)), ("cost", p.cost), ("source", p.source)):
            if value:
                body.append(f"\n{label}: ", style="dim")
                body.append(value)
        console.out.print(Padding(body, (0, 0, 0, 2)))


# -- the command ---------------------------------------------------------------------------
@handles_errors
def train(ctx: typer.Context, **options: Any) -> None:
    """Train a GAN; checkpoints, samples and metrics go to <home>/runs/run-N.

    Examples:

      gan train --dataset mnist --arch dcgan --epochs 1

      gan train --arch mlp --steps 5000 --device cuda

      gan train --resume latest --steps 4000

      gan train --resume run-3 --from damaged/step-2000

      gan train --dataset mnist --arch dcgan --nproc 2
    """
    from gancli.engine.ranks import env_ranks

    options.pop("help_all", None)  # --help-all exits in its callback
    as_json = options.pop("as_json")
    console.json_mode(as_json)
    if options.pop("list_presets"):
        if as_json:
            console.emit_json({entry.name: {"summary": entry.obj.summary, "options": entry.obj.options,
                                            "flags": preset_flags(entry.obj.options), "cost": entry.obj.cost,
                                            "source": entry.obj.source} for entry in registry("preset")})
        else:
            _print_presets()
        return
    rank, world, _ = env_ranks()
    if rank > 0:  # ranks > 0 of a torchrun job print errors only
        console.settings.errors_only = True
    st = state(ctx)
    store = st.store()
    launched = os.environ.get(LAUNCH_ENV)
    if launched:  # a rank started by `gan train --nproc`: the launcher resolved the config
        from gancli.config import RunConfig
        from gancli.runs import Run

        doc = json.loads(Path(launched).read_text("utf-8"))
        cfg, run = RunConfig.from_dict(doc["config"]), (Run(doc["resume"]) if doc["resume"] else None)
        _train(st, store, cfg, run, as_json=as_json, resume_from=doc.get("from"), force=doc.get("force", False))
        return

    resume, resume_from, preset, dry_run, nproc, force = (
        options.pop(k) for k in ("resume", "resume_from", "preset", "dry_run", "nproc", "force"))
    if resume_from is not None and resume is None:
        raise UsageError(f"--from {resume_from} continues a run: give it with --resume RUN")
    lr = options.pop("lr")
    options["lr_g"] = options["lr_g"] if options["lr_g"] is not None else lr
    options["lr_d"] = options["lr_d"] if options["lr_d"] is not None else lr
    if nproc is not None and nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    if nproc is not None and nproc > 1 and world > 1:
        raise UsageError("--nproc cannot be used inside torchrun (it already started the processes)")
    from gancli.resolve import build_config

    run = store.resolve(resume) if resume is not None else None
    base = run.read_config() if run is not None else None
    if base is not None:
        from gancli.resolve import validate_stored

        validate_stored(base, run.config_path)
    dist = device = None
    if world > 1:  # under torchrun: rank 0 resolves, the other ranks receive its config
        from gancli.engine import distributed

        spec = options["device"] or (base.train.device if base is not None else "auto")
        dist, device = distributed.setup(spec)
        cfg = dist.from_main(lambda: build_config(options, base=base, preset=preset))
    else:
        cfg = build_config(options, base=base, preset=preset)
    if dry_run or (nproc or 1) > 1:
        from gancli.engine.launch import preflight

        if nproc is not None and nproc > 1:
            from gancli.engine.distributed import rank_device

            rank_device(cfg.train.device, nproc - 1)  # a device each process may use; enough GPUs
        preflight(cfg, max(world, nproc or 1))
        if dry_run:
            if rank == 0 and as_json:
                console.emit_json(cfg.to_dict())
            elif rank == 0:
                console.out.print_json(cfg.to_json())
            if dist is not None:
                distributed.teardown(dist)
            return
        _launch_processes(st, nproc, cfg, run, as_json, resume_from, force)
    _train(st, store, cfg, run, dist, device, as_json=as_json, resume_from=resume_from, force=force)


train.__signature__ = _signature()  # type: ignore[attr-defined]
train.__annotations__ = {p.name: p.annotation for p in train.__signature__.parameters.values()}  # type: ignore[attr-defined]


def _train(st, store, cfg, run, dist=None, device=None, as_json: bool = False, resume_from: str | None = None,
           force: bool = False) -> None:
    """Train ``cfg`` in this process (one of several under torchrun: joins their process
    group unless ``dist`` is given), with signal handling."""
    from gancli.engine import distributed
    from gancli.engine.launch import train as launch

    if dist is None:
        dist, device = distributed.setup(cfg.train.device)
    reporter = console.make_reporter() if dist.is_main else None
    with StopOnSignal() as stop:
        try:
            run, result = launch(cfg, store, st.data_path, resume=run, reporter=reporter, should_stop=stop,
                                 dist=dist, device=device, resume_from=resume_from, force_precision=force)
        except KeyboardInterrupt:
            console.error("aborted by a second interrupt; the newest checkpoint on disk is intact")
            raise typer.Exit(130) from None
        finally:
            distributed.teardown(dist)

    ckpt = result.last_checkpoint
    if as_json and dist.is_main:
        console.emit_json(_summary(run, result))
    if result.interrupted:
        code = 128 + (stop.signum or signal.SIGINT)
        console.warn(
            f"stopped at step {result.step}/{result.total_steps}; checkpoint {ckpt}. "
            f"Resume with: gan train --resume {run.id}"
        )
        raise typer.Exit(code)
    console.info(
        f"done: {result.step} steps; this session {fmt_duration(result.seconds)} "
        f"at {result.images_per_sec:.0f} img/s; checkpoint {ckpt}"
    )
    if cfg.task.name == "generate":
        console.info(f"next: gan sample {run.id} -n 64 -o grid.png")
    else:  # gan translate is still to come (issue #24)
        from gancli.tasks import TRAINING_TASKS

        console.info(f"samples: {run.samples_dir}/ (rows: {TRAINING_TASKS.get(cfg.task.name).grid_rows})")


def _summary(run, result) -> dict[str, Any]:
    """``gan train --json``: what a script needs after training."""
    last = run.last_metrics_record(where=lambda r: r.get("kind") == "train") or {}
    return {"run": run.id, "path": str(run.path), "steps": result.step, "total_steps": result.total_steps,
            "interrupted": result.interrupted, "seconds": round(result.seconds, 3),
            "img_per_sec": round(result.images_per_sec, 1),
            "last_losses": {k: last[k] for k in ("step", "loss_d", "loss_g", "d_real", "d_fake") if k in last},
            "checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None}


def _launch_processes(st, nproc: int, cfg, run, as_json: bool = False, resume_from: str | None = None,
                      force: bool = False) -> None:
    """``gan train --nproc N``: run ``gan train`` in N processes through torchrun's standalone
    launcher, handing them this process's resolved config (:data:`LAUNCH_ENV`), then exit
    with their exit code."""
    from gancli.engine.distributed import launch_local

    os.environ["GANCLI_HOME"] = str(st.home_path.resolve())
    os.environ["GANCLI_DATA_DIR"] = str(st.data_path.resolve())
    fd, path = tempfile.mkstemp(prefix="gancli-launch-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"config": cfg.to_dict(), "resume": str(run.path) if run is not None else None,
                       "from": resume_from, "force": force}, f)
        os.environ[LAUNCH_ENV] = path
        argv = (["--quiet"] if console.settings.quiet else []) + ["--verbose"] * console.settings.verbose
        argv += ["train"] + (["--json"] if as_json else [])
        code = launch_local(nproc, argv)
    finally:
        os.environ.pop(LAUNCH_ENV, None)
        Path(path).unlink(missing_ok=True)
    raise typer.Exit(code)
