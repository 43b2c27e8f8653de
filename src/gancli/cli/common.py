"""Shared CLI plumbing: global state, error handling."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from gancli import console
from gancli.errors import GancliError, UsageError
from gancli.runs import Run, RunStore, default_home

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """Global options, resolved lazily."""

    home: Path | None = None
    data_dir: Path | None = None

    @property
    def home_path(self) -> Path:
        return (self.home or default_home()).expanduser()

    @property
    def data_path(self) -> Path:
        return (self.data_dir or self.home_path / "data").expanduser()

    def store(self) -> RunStore:
        return RunStore(self.home_path)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def error_kind(error: BaseException) -> str:
    """The ``kind`` of a ``--json`` error object: the exception class in snake case without
    ``Error`` (``usage``, ``unknown_name``, ``unknown_dataset``, ``diverged``...), ``error`` for
    a plain :class:`GancliError`, ``os`` for a file-system error."""
    import re

    if isinstance(error, OSError):
        return "os"
    name = type(error).__name__
    if name == "GancliError":
        return "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower() or "error"


def handles_errors(func: F) -> F:
    """Turn :class:`GancliError` (and an :class:`OSError`) into one ``error:`` line on stderr
    and its exit code; with the command's ``--json`` (``as_json=True``, or
    :func:`gancli.console.json_active`), also one ``{"error": {"message", "exit_code",
    "kind"}}`` object on stdout (:func:`error_kind`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except GancliError as e:
            if getattr(e, "silent", False):  # silent: another process of the run reported it
                raise typer.Exit(e.exit_code) from None
            console.error(str(e))
            if as_json or console.json_active():
                console.emit_json_error(str(e), e.exit_code, error_kind(e))
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # e.g. permission denied or disk full outside the training loop
            where = f" ({e.filename})" if e.filename else ""
            console.error(f"{e.strerror or e}{where}")
            if as_json or console.json_active():
                console.emit_json_error(f"{e.strerror or e}{where}", 1, error_kind(e))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@dataclass
class GeneratorSource:
    """Where a command loads a generator from (the RUN argument of ``sample`` / ``export``)."""

    path: Path  # a checkpoint file or a bundle folder; load it with gancli.load_generator
    label: str  # for default output names: the run id, the bundle's name, or the fallback
    run_id: str | None  # the run the weights come from, when known
    run: Any = None  # the Run, when ``path`` is a run's newest checkpoint ("latest")

    def load(self, device: Any = "cpu", ema: bool = True):
        """``gancli.load_generator(path)``; for a run's newest checkpoint, a file pruned meanwhile
        by a training that is still running (``--keep``) is replaced by the then newest one."""
        from gancli.checkpoint import load_generator

        for _ in range(3):
            try:
                return load_generator(self.path, device=device, ema=ema)
            except GancliError as e:
                if self.run is None:
                    raise
                if self.path.exists():  # damaged: the newest older checkpoint whose generator loads
                    return self._older(e, device, ema)
                self.path = self.run.checkpoint_path("latest")
        return load_generator(self.path, device=device, ema=ema)

    def model_config(self) -> Any:
        """The generator's :class:`~gancli.config.ModelConfig` from the checkpoint's header or
        the bundle's config.json, without reading any weights (checks that need only the
        config answer at once); None when it cannot be read (loading then says why)."""
        try:
            if self.path.is_dir():
                from gancli.bundle import read_bundle_config
                from gancli.config import ModelConfig, section_from_dict

                return section_from_dict(ModelConfig, read_bundle_config(self.path)["model"], "model")
            from gancli.checkpoint import read_header
            from gancli.config import RunConfig

            return RunConfig.from_json(read_header(self.path)["config"]).model
        except (GancliError, KeyError, TypeError, ValueError):
            return None

    def _older(self, error: GancliError, device: Any, ema: bool):
        from gancli.checkpoint import load_generator

        ckpts = self.run.checkpoints()
        below = next((step for step, path in ckpts if path == self.path), None)
        for step, path in reversed(ckpts):
            if below is None or step >= below:
                continue
            try:
                g = load_generator(path, device=device, ema=ema)
            except GancliError:
                continue
            console.warn(f"{error}; using the newest checkpoint that loads: {path.name}")
            self.path = path
            return g
        raise error


def resolve_generator_source(ctx: typer.Context, ref: str, checkpoint: str, fallback_label: str) -> GeneratorSource:
    """``run-N``, ``N``, ``latest``, a run directory, a checkpoint ``.safetensors`` file
    or a generator bundle folder -> the file or folder to load.

    Raises:
        UsageError: unknown run or step, or ``--checkpoint`` with a file or bundle.
        GancliError: the run has no checkpoints.
    """
    from gancli.bundle import is_bundle, read_bundle_config

    path = Path(ref)
    if path.suffix == ".safetensors":
        if checkpoint != "latest":
            raise UsageError("--checkpoint applies to runs, not to a checkpoint file")
        in_run = path.parent.name == "checkpoints"
        run_id = path.parent.parent.name if in_run else None
        if in_run:
            warn_if_collapsed(Run(path.parent.parent), path)
        return GeneratorSource(path, run_id or fallback_label, run_id)
    if not re.fullmatch(r"latest|(run-)?\d+", ref) and is_bundle(path):
        if checkpoint != "latest":
            raise UsageError("--checkpoint applies to runs, not to an exported bundle")
        run_id = read_bundle_config(path).get("meta", {}).get("source_run")
        return GeneratorSource(path, path.resolve().name, run_id if isinstance(run_id, str) else None)
    store = state(ctx).store()
    r = newest_run_with_a_checkpoint(store) if ref == "latest" and checkpoint == "latest" else None
    r = r or store.resolve(ref)
    path = r.checkpoint_path(checkpoint)
    warn_if_collapsed(r, path)
    return GeneratorSource(path, r.id, r.id, r if checkpoint == "latest" else None)


def newest_run_with_a_checkpoint(store: RunStore) -> Run | None:
    """What ``latest`` means to a command that loads a generator: the newest run with a step
    checkpoint, saying which newer runs it skipped and why (a run that failed or was stopped
    before its first checkpoint); None when no run has one (``RunStore.resolve`` then explains)."""
    skipped = []
    for run in reversed(store.list()):
        if run.checkpoints():
            if skipped:
                console.warn(f"latest: using {run.id}, the newest run with a checkpoint ({', '.join(skipped)} "
                             f"{'has' if len(skipped) == 1 else 'have'} none: failed or stopped before the first)")
            return run
        skipped.append(run.id)
    return None


def warn_if_collapsed(run: Run, path: Path) -> None:
    """Warn when the collapse monitor saw symptoms at the last check covering the step checkpoint
    ``path`` of ``run``, naming the last checkpoint without symptoms (``--checkpoint`` picks it)."""
    from gancli.metrics.monitor import last_good_checkpoint, verdict

    m = re.fullmatch(r"step-(\d+)\.safetensors", path.name)
    if m is None:  # best.safetensors: chosen by its evaluation
        return
    v = verdict(run.read_metrics_report(kinds=("monitor",))[0], int(m.group(1)))
    if v is None or not v.collapsed:
        return
    good = last_good_checkpoint((step for step, _ in run.checkpoints()), v.clean_step)
    where = (f"the last checkpoint without symptoms is step {good}: pass --checkpoint {good}" if good is not None
             else "no kept checkpoint of the run was seen without symptoms")
    console.warn(f"{run.id} {path.name}: the collapse monitor saw mode collapse ({', '.join(v.symptoms)}) at step "
                 f"{v.step}" + (f", since step {v.since}" if v.since < v.step else "") + f"; {where}")


def _plain_metavars(params) -> None:
    """Typer shows ``<bool>`` / ``<int>`` type labels in --help: flags get none, values click's names."""
    for p in params:
        if getattr(p, "metavar", "") is None and getattr(p, "param_type_name", "") == "option":
            if p.is_flag or p.count:
                p.metavar = ""
            else:
                bare = p.bare_type()
                p.metavar = {"int": "INTEGER", "str": "TEXT", "float": "FLOAT"}.get(bare, bare.upper())


def global_option_hint(command: str, args: list[str], option: str, takes_value: bool) -> str:
    """The message for a global option given after the command: where it goes, as a command line."""
    i = next((j for j, a in enumerate(args) if a == option or a.startswith(option + "=")), None)
    if i is None:
        moved, rest = [option], args
    else:
        n = 2 if takes_value and args[i] == option and i + 1 < len(args) else 1
        moved, rest = args[i:i + n], args[:i] + args[i + n:]
    return (f"{option} is a global option: it goes before the command, "
            f"e.g. gan {' '.join(moved)} {command} {' '.join(rest)}".rstrip())


class Command(typer.core.TyperCommand):
    """A Typer command whose --help shows no ``<bool>`` metavars and that tells where a
    global option (``--home``, ``--data-dir``, ``-q``, ``-v``) placed after it belongs."""

    def get_help_option(self, ctx):
        opt = super().get_help_option(ctx)
        _plain_metavars([*self.params, *([opt] if opt is not None else [])])
        return opt

    def parse_args(self, ctx, args):
        from typer._click.exceptions import ClickException

        original = list(args)
        try:
            return self._parse_args(ctx, args, original)
        except ClickException as e:  # bad option values, unknown options: --json still gets its object
            if "--json" in original:
                console.emit_json_error(e.format_message(), e.exit_code, "usage")
            raise

    def _parse_args(self, ctx, args, original):
        from typer._click.exceptions import NoSuchOption

        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as e:
            name = e.option_name.split("=", 1)[0]
            root = ctx.find_root().command  # `gan` itself: its options are the global ones
            glob = next((p for p in root.params if name in (*p.opts, *p.secondary_opts)), None)
            if glob is not None and ctx.parent is not None:
                takes_value = not (getattr(glob, "is_flag", False) or getattr(glob, "count", False))
                hint = global_option_hint(ctx.command_path.removeprefix("gan "), original, name, takes_value)
                raise NoSuchOption(name, message=hint, ctx=ctx) from None
            raise


class Group(typer.core.TyperGroup):
    """A Typer group whose --help shows no ``<bool>`` metavars."""

    def get_help_option(self, ctx):
        opt = super().get_help_option(ctx)
        _plain_metavars([*self.params, *([opt] if opt is not None else [])])
        return opt


# -- shell completion of values (typer ``autocompletion=``) --------------------------------
def _home_of(ctx: typer.Context) -> Path:
    """The run store root during completion: ``gan --home H`` typed so far, else
    ``$GANCLI_HOME``, else the default (the global callback has not run yet)."""
    import os

    home = ctx.find_root().params.get("home") or os.environ.get("GANCLI_HOME")
    return State(home=Path(home) if home else None).home_path


def complete_names(names: Callable[[], list[str]]) -> Callable[[str], list[str]]:
    """A completer of fixed names (registries, choices) that start with what is typed."""

    def complete(incomplete: str) -> list[str]:
        return [n for n in names() if n.startswith(incomplete)]

    return complete


def complete_run(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run ids of the store, newest first, and ``latest``."""
    try:
        ids = [r.id for r in RunStore(_home_of(ctx)).list()]
    except OSError:
        ids = []
    return [i for i in ["latest", *reversed(ids)] if i.startswith(incomplete)]


def complete_checkpoint(ctx: typer.Context, incomplete: str) -> list[str]:
    """``latest`` and the steps of the checkpoints of the RUN typed before it (and ``damaged/step-N``
    of the ones a resume set aside)."""
    run = ctx.params.get("run") or "latest"
    try:
        r = RunStore(_home_of(ctx)).resolve(run)
        steps = [str(step) for step, _ in r.checkpoints()] + [f"damaged/step-{s}" for s, _ in r.damaged_checkpoints()]
    except (GancliError, OSError):
        steps = []
    return [s for s in ["latest", *steps] if s.startswith(incomplete)]
