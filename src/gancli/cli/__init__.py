"""The ``gan`` command-line app (Typer).

Commands are thin: parse and validate options, build a config, call the
engine. Nothing here imports torch at import time, so ``gan --help`` is fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gancli import console
from gancli._version import __version__
from gancli.cli import evaluate as evaluate_cmd
from gancli.cli import export as export_cmd
from gancli.cli import report as report_cmd
from gancli.cli import runs as runs_cmd
from gancli.cli import sample as sample_cmd
from gancli.cli import train as train_cmd
from gancli.cli import translate as translate_cmd
from gancli.cli.common import Command, Group, State
from gancli.console import settings

app = typer.Typer(
    name="gan",
    cls=Group,
    help="Train, sample, evaluate and export Generative Adversarial Networks, with PyTorch.\n\n"
    "Example: gan train --dataset mnist --arch dcgan && gan sample latest -n 64 -o grid.png "
    "&& gan export latest --format onnx -o mnist.onnx",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _one_line_usage_error(e) -> None:
    """Typer's renderer of option-parsing errors (unknown option or command, a bad value), as
    every other gancli error: one ``error:`` line on stderr naming the value, then where help
    is, instead of a usage line and a boxed panel. Exit code 2 as before (Click's)."""
    if e.__class__.__name__ == "NoArgsIsHelpError":  # `gan` alone prints its help
        return
    ctx = getattr(e, "ctx", None)
    where = f" (help: {ctx.command_path} {ctx.help_option_names[0]})" if ctx is not None else ""
    console.error(e.format_message() + where)


def _install_error_renderer() -> None:
    from typer import rich_utils

    rich_utils.rich_format_error = _one_line_usage_error


_install_error_renderer()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gancli {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    home: Path = typer.Option(
        None, "--home", envvar="GANCLI_HOME", show_default=False,
        help="Run store root (runs/, data/). \\[default: the platform cache dir, e.g. ~/.cache/gancli]",
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar="GANCLI_DATA_DIR", show_default=False,
        help="Where datasets are read from and downloaded to. \\[default: <home>/data]",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notes: plain log lines, warnings and errors only."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False, help="More output: checkpoint and sample writes."),
    threads: int = typer.Option(None, "--threads", show_default=False, metavar="N", min=1,
                                help="CPU threads for torch, BLAS and numba (clustering). \\[default: "
                                "$OMP_NUM_THREADS, else torch's default: the machine's cores]"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    console.json_mode(False)  # a command's --json turns it on
    settings.quiet = quiet
    settings.verbose = verbose
    if threads is not None:
        from gancli.engine.device import pin_threads

        pin_threads(threads)
    ctx.obj = State(home=home, data_dir=data_dir)


app.command("train", no_args_is_help=False, cls=train_cmd.TrainCommand)(train_cmd.train)
app.command("sample", cls=Command)(sample_cmd.sample)
app.command("translate", cls=Command)(translate_cmd.translate)
app.command("evaluate", cls=Command)(evaluate_cmd.evaluate)
app.command("export", cls=Command)(export_cmd.export)
app.command("report", cls=Command)(report_cmd.report)
app.add_typer(runs_cmd.app, name="runs")


def main() -> None:
    """Console-script entry point (``gan``).

    A rank under torchrun (``WORLD_SIZE`` > 1) leaves through ``os._exit`` once
    the command has returned, its output flushed and its files closed: the C++
    teardown of the process group's threads at interpreter exit can abort
    ("terminate called without an active exception", seen once in CI at the end of
    a finished 2-process CPU run), which would turn a finished run into a failed one.
    """
    if os.environ.get("WORLD_SIZE", "1").strip() in ("", "0", "1"):
        app(prog_name="gan")
        return
    code = 0
    try:
        app(prog_name="gan")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
