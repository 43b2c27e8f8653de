"""The one place that prints: Rich consoles, one-line errors, progress reporters.

Errors go to stderr as one line (``error: ...``) with no traceback. When stdout
is a terminal, training shows a Rich progress bar; otherwise (CI, pipes,
``--quiet``) it prints one plain line per log interval.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from gancli.units import fmt_duration

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Settings:
    """Global options shared by all commands (``gan --quiet ...``)."""

    def __init__(self, quiet: bool = False, verbose: int = 0, errors_only: bool = False):
        self.quiet = quiet
        self.verbose = verbose
        self.errors_only = errors_only  # ranks > 0 of a multi-process run: errors, nothing else


settings = Settings()


def error(message: str) -> None:
    """Print ``error: <message>`` to stderr as a single line."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    if settings.errors_only:
        return
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


_STDOUT = out


def json_mode(on: bool) -> None:
    """``--json``: lines for humans (progress, notes, tables) go to stderr, so stdout holds
    only the JSON object that :func:`emit_json` writes. ``gan``'s callback resets it."""
    global out
    out = err if on else _STDOUT


def json_active() -> bool:
    """Whether a command's ``--json`` is on (:func:`json_mode`)."""
    return out is not _STDOUT


def emit_json_error(message: str, exit_code: int, kind: str) -> None:
    """``--json`` and the command failed: one object ``{"error": {"message", "exit_code",
    "kind"}}`` on stdout (the human ``error:`` line still goes to stderr)."""
    emit_json({"error": {"message": message, "exit_code": exit_code, "kind": kind}})


def emit_json(doc: Any, indent: int | None = None) -> None:
    """Write ``doc`` (JSON-able) as JSON and a newline on the real stdout: one line, or
    ``indent`` spaces per nesting level (``gan runs list / show --json``). The one way
    ``--json`` output is written."""
    import json
    import sys

    sys.stdout.write(json.dumps(doc, indent=indent) + "\n")
    sys.stdout.flush()


def file_record(path: Path) -> dict[str, Any]:
    """``{"path", "bytes", "sha256"}`` of a written file, for ``--json`` outputs."""
    from gancli.fsutil import file_sha256

    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def progress_bar(transient: bool = True, every: float | None = None):
    """Progress of work other than training (one bar per phase: ``add_task(description,
    total)``, ``update(task, completed=n)``), as Rich's ``Progress``: a live bar on stderr when
    it is a terminal; otherwise (pipes, CI, logs) a plain ``<description>: 1,200/50,000 (2%),
    10s, ETA 6m50s`` line per unfinished phase every ``every`` seconds (default
    :data:`PHASE_TICK_S`) through :func:`info`. Nothing with ``--quiet``. Use as a context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    silent = settings.quiet or settings.errors_only
    if not silent and not err.is_terminal:
        return PlainProgress(info, PHASE_TICK_S if every is None else every)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=transient, disable=silent)


class PlainProgress:
    """The part of Rich's ``Progress`` gancli uses (``add_task``, ``update``, a context manager)
    for output that is not a terminal: a helper thread writes, every ``every`` seconds, one
    line per phase not finished yet through ``note``, so a log shows the work is alive and how
    far it is. Phases shorter than ``every`` print nothing."""

    def __init__(self, note, every: float):
        import threading

        self.note, self.every = note, every
        self._tasks: list[list] = []  # [description, total, completed, started]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_fields) -> int:
        with self._lock:
            self._tasks.append([description, total, completed, time.perf_counter()])
            return len(self._tasks) - 1

    def update(self, task: int, *, completed: float | None = None, advance: float | None = None,
               total: float | None = None, **_fields) -> None:
        with self._lock:
            t = self._tasks[task]
            if total is not None:
                t[1] = total
            if completed is not None:
                t[2] = completed
            if advance:
                t[2] += advance

    def lines(self, now: float | None = None) -> list[str]:
        """One line per unfinished phase: ``<description>: done/total (pct), elapsed, ETA``, or
        ``<description>: still working (elapsed)`` for a task with no total and nothing done."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            tasks = [list(t) for t in self._tasks]
        out_lines = []
        for description, total, done, started in tasks:
            if total is not None and done >= total:
                continue
            took = now - started
            if total is None and not done:  # a phase without its own progress (see :func:`phase`)
                out_lines.append(f"{description}: still working ({fmt_duration(took)})")
                continue
            text = f"{description}: {done:,.0f}" + (f"/{total:,.0f} ({100 * done / total:.0f}%)" if total else "")
            text += f", {fmt_duration(took)}"
            if total and done > 0:
                text += f", ETA {fmt_duration(took / done * (total - done))}"
            out_lines.append(text)
        return out_lines

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            for line in self.lines():
                self.note(line)

    def __enter__(self) -> PlainProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


#: A phase without its own progress (clustering...) says it is still working this often, in
#: seconds, when stdout is not a terminal.
PHASE_TICK_S = 10.0


@contextlib.contextmanager
def phase(label: str, note=None, every: float = PHASE_TICK_S):
    """Show that a long step without its own progress is alive: on a terminal a spinner with
    the elapsed time on stderr, else a plain ``<label>: still working (20s)`` line through
    ``note`` (default :func:`info`) every ``every`` seconds (a :class:`PlainProgress` task with
    no total). Silent with ``--quiet``. Use as ``with phase("clustering"): ...``."""
    import threading

    if settings.quiet or settings.errors_only:
        yield
        return
    if not err.is_terminal:
        with PlainProgress(note or info, every) as plain:
            plain.add_task(label)
            yield
        return
    start = time.perf_counter()
    stop = threading.Event()
    spinner = err.status(f"{label}...")

    def tick() -> None:
        while not stop.wait(1.0):
            spinner.update(f"{label}... {fmt_duration(time.perf_counter() - start)}")

    thread = threading.Thread(target=tick, daemon=True)
    spinner.start()
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        spinner.stop()


def info(message: str) -> None:
    """A line for humans on stdout; silent with --quiet."""
    if not settings.quiet and not settings.errors_only:
        out.print(message, soft_wrap=True)


def debug(message: str) -> None:
    if settings.verbose and not settings.errors_only:
        err.print(f"[dim]{escape(message)}[/]", soft_wrap=True)


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    """The logged losses and D outputs; NaN for one that a --nan-policy skip window (or a
    damaged record) lacks."""
    out = {}
    for k in ("loss_d", "loss_g", "d_real", "d_fake"):
        v = record.get(k)
        out[k] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")
    return out


def format_record(record: dict[str, Any], total: int) -> str:
    """``step 500/937 epoch 0.53 | loss_D 1.23 loss_G 0.98 D(x) 0.51 D(G(z)) 0.43 | 412 img/s``"""
    r = _scalars(record)
    num = {k: v if isinstance(v, (int, float)) else float("nan")
           for k, v in ((k, record.get(k)) for k in ("epoch", "img_per_sec", "skipped"))}
    skipped = f" | skipped {num['skipped']:.0f}" if record.get("skipped") else ""
    return (
        f"step {record['step']}/{total} epoch {num['epoch']:.2f} | "
        f"loss_D {r['loss_d']:.4f} loss_G {r['loss_g']:.4f} "
        f"D(x) {r['d_real']:.3f} D(G(z)) {r['d_fake']:.3f} | {num['img_per_sec']:.0f} img/s{skipped}"
    )


#: The plain ETA's speed: steps per second over the log lines of about this many seconds (as
#: Rich's bar estimates its own), so the slower first steps of a run stop weighing on it.
ETA_WINDOW_S = 30.0


def eta_seconds(marks: list[tuple[int, float]], step: int, total: int, now: float,
                window: float = ETA_WINDOW_S) -> float:
    """Seconds left for ``total - step`` steps at the speed since the newest mark of ``marks``
    (``(step, time)`` pairs, oldest first) that is at least ``window`` seconds old (else the
    oldest); drops the marks older than that one from ``marks``."""
    while len(marks) > 1 and now - marks[1][1] >= window:
        marks.pop(0)
    s0, t0 = marks[0]
    return (total - step) * max(now - t0, 0.0) / max(step - s0, 1)


class PlainReporter:
    """One line per log interval, with an ETA (:func:`eta_seconds`); for pipes, CI and --quiet."""

    def __init__(self) -> None:
        self.total = 0
        self.marks: list[tuple[int, float]] = []

    def start(self, total_steps: int, start_step: int) -> None:
        self.total, self.marks = total_steps, [(start_step, time.perf_counter())]

    def advance(self, step: int) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        now = time.perf_counter()
        eta = eta_seconds(self.marks, record["step"], self.total, now)
        self.marks.append((record["step"], now))
        out.print(f"{format_record(record, self.total)} | ETA {fmt_duration(eta)}", soft_wrap=True)

    def note(self, text: str) -> None:
        info(text)

    def phase(self, label: str):
        return phase(label, self.note)

    def detail(self, text: str) -> None:
        debug(text)

    def monitor(self, text: str) -> None:
        info(f"monitor: {text}")

    def warn(self, text: str) -> None:
        warn(text)

    def stop(self) -> None:
        pass


#: The training line's fields, in display order, with their priority (0 = always shown; higher
#: numbers are dropped first when the terminal is narrow): step / total, elapsed time and ETA
#: always, then the rate, the losses, the monitor's reading. The bar takes what is left.
LINE_FIELDS = (("label", 0), ("bar", 4), ("steps", 0), ("rate", 1), ("losses", 2), ("monitor", 3),
               ("elapsed", 0), ("eta", 0))
BAR_MIN_WIDTH = 10


def fit_fields(width: int, texts: dict[str, str]) -> tuple[list[str], int]:
    """Which fields of the training line fit in ``width`` columns: ``(names in display order,
    bar width)``. Fields of :data:`LINE_FIELDS` are dropped from the highest priority number
    down (the monitor first) until the rest, one space apart, fits; the bar (at least
    :data:`BAR_MIN_WIDTH`) then takes the columns left over, if there are enough. Empty texts
    are left out. The fields that always stay are kept even when they alone are too wide."""
    names = [n for n, _ in LINE_FIELDS if n == "bar" or texts.get(n)]
    priority = dict(LINE_FIELDS)

    def used(kept: list[str]) -> int:  # columns of the kept texts, one space apart, the bar at its least
        return sum(BAR_MIN_WIDTH if n == "bar" else len(texts[n]) for n in kept) + max(len(kept) - 1, 0)

    kept = [n for n in names if n != "bar"]
    for level in sorted({priority[n] for n in kept if priority[n] > 0}, reverse=True):
        if used(kept) <= width:
            break
        kept = [n for n in kept if priority[n] != level]
    with_bar = [n for n in names if n in kept or n == "bar"]
    if used(with_bar) <= width:  # the bar last: in the columns the text leaves
        return with_bar, width - used(with_bar) + BAR_MIN_WIDTH
    return kept, 0


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class RichReporter:
    """A live training line on a terminal: step / total, rate, latest losses, the monitor's
    reading, elapsed time, ETA and a bar, fitted to the terminal's width by priority
    (:func:`fit_fields`): at 80 columns the losses and the monitor give way, never the step,
    the elapsed time or the ETA."""

    def __init__(self) -> None:
        from rich.progress import Progress, ProgressColumn

        reporter = self

        class TrainLine(ProgressColumn):
            def render(self, task):
                return reporter.render_line(task)

        self.progress = Progress(TrainLine(), console=out, transient=False, expand=False)
        self.task = None
        self.total = 0

    def line_texts(self, task) -> dict[str, str]:
        f = task.fields
        return {"label": "train", "steps": f"{int(task.completed)}/{int(task.total or 0)}",
                "rate": f.get("rate", ""), "losses": f.get("losses", ""), "monitor": f.get("monitor", ""),
                "elapsed": _clock(task.elapsed), "eta": "ETA " + _clock(task.time_remaining)}

    def render_line(self, task, width: int | None = None):
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        texts = self.line_texts(task)
        kept, bar = fit_fields((width or self.progress.console.width) - 1, texts)
        grid = Table.grid(padding=(0, 1))
        cells = []
        for name in kept:
            if name == "bar":
                grid.add_column(width=bar, no_wrap=True)
                cells.append(ProgressBar(total=task.total, completed=task.completed, width=bar))
            else:
                grid.add_column(no_wrap=True)
                cells.append(Text(texts[name], style="bold" if name == "label" else ""))
        grid.add_row(*cells)
        return grid

    def start(self, total_steps: int, start_step: int) -> None:
        self.total = total_steps
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, rate="", losses="", monitor="")

    def advance(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def log(self, record: dict[str, Any]) -> None:
        r = _scalars(record)
        losses = (f"loss_D {r['loss_d']:.3f} loss_G {r['loss_g']:.3f} "
                  f"D(x) {r['d_real']:.2f} D(G(z)) {r['d_fake']:.2f}")
        self.progress.update(self.task, rate=f"{record['img_per_sec']:.0f} img/s", losses=losses)
        if settings.verbose:
            self.progress.console.print(format_record(record, self.total), soft_wrap=True)

    def note(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)

    def phase(self, label: str):
        return phase(label, self.note)

    def detail(self, text: str) -> None:
        if settings.verbose:
            self.progress.console.print(f"[dim]{escape(text)}[/]", soft_wrap=True)

    def monitor(self, text: str) -> None:
        self.progress.update(self.task, monitor=text)

    def warn(self, text: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)

    def stop(self) -> None:
        self.progress.stop()


def make_reporter():
    """Rich bar on a terminal, plain lines otherwise or with --quiet."""
    if out.is_terminal and not settings.quiet:
        return RichReporter()
    return PlainReporter()
