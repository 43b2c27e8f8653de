"""``gan report``: a self-contained HTML page about one run, or several compared."""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_run, handles_errors, state
from gancli.errors import UsageError

#: Suffixes ``-o`` accepts.
HTML_SUFFIXES = (".html", ".htm")


@handles_errors
def report(
    ctx: typer.Context,
    runs: list[str] = typer.Argument(None, metavar="[RUN]...", autocompletion=complete_run, show_default=False,
                                     help="run-N, N, latest or a run directory; several to compare them. "
                                     "\\[default: latest]"),
    output: Path = typer.Option(None, "-o", "--output", show_default=False,
                                help="HTML file to write (.html or .htm). \\[default: <run>-report.html in the "
                                "current directory]"),
    open_: bool = typer.Option(False, "--open", help="Open the page in the default web browser."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (the file written, with "
                                 "its sha256) and nothing else there."),
) -> None:
    """Write one HTML file with a run's curves, sample grids, evaluations and config.

    The page is self-contained (figures and images embedded, no network access):
    mail it or attach it to an issue. With several runs, their curves are overlaid
    and their config differences tabulated.

    Examples:

      gan report                          (the latest run -> run-N-report.html)

      gan report run-3 -o run3.html --open

      gan report run-3 run-4 run-5 -o compare.html
    """
    console.json_mode(as_json)
    refs = runs or ["latest"]
    if output is not None:
        if output.is_dir():
            raise UsageError(f"-o {output} is a directory; give a file name ending in .html")
        if output.suffix.lower() not in HTML_SUFFIXES:
            raise UsageError(f"-o {output}: unknown report type {output.suffix or '(none)'!r}; "
                             f"valid choices: {', '.join(HTML_SUFFIXES)}")
        if not output.parent.is_dir():
            raise UsageError(f"directory {output.parent} does not exist (for -o {output})")

    store = state(ctx).store()
    resolved = [store.resolve(ref) for ref in refs]
    seen: dict = {}
    for ref, run in zip(refs, resolved):
        key = run.path.resolve()
        if key in seen:
            raise UsageError(f"{ref!r} names {run.id} again (given as {seen[key]!r}); give each run once")
        seen[key] = ref

    from gancli.fsutil import atomic_write_text
    from gancli.report import build_report, load_run
    from gancli.report.data import label_runs

    data = [load_run(r) for r in resolved]
    label_runs(data)
    out = output or Path("-vs-".join(r.id for r in resolved) + "-report.html")
    page = build_report(data)
    atomic_write_text(out, page)
    for d in data:
        if d.skipped_lines:
            console.warn(f"skipped {d.skipped_lines} damaged line(s) of {d.path / 'metrics.jsonl'}")
    console.info(f"wrote {out} ({len(page.encode('utf-8')) / 1024:.0f} KiB, {', '.join(d.label for d in data)})")
    if open_:
        import webbrowser

        if not webbrowser.open(out.resolve().as_uri()):
            console.warn(f"no web browser could be started; open {out.resolve()} yourself")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "runs": [{"id": d.id, "path": str(d.path)} for d in data]})
