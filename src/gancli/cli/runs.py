"""``gan runs``: list, show and delete runs in the run store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from gancli import console
from gancli.cli.common import Command, Group, complete_run, handles_errors, state
from gancli.conditioning import Conditioning
from gancli.errors import GancliError, UsageError
from gancli.runs import Run
from gancli.units import fmt_duration

app = typer.Typer(help="List, show, delete and unlock runs.", no_args_is_help=True, cls=Group)


def _status(run: Run, step: int, steps: int) -> str:
    """``running`` (a live process holds the lock), ``finished`` (checkpoint at the last step),
    ``failed`` (no checkpoint: it failed or was stopped before the first one), ``diverged`` /
    ``collapsed`` (the run's own stop record is its newest record), else ``stopped``."""
    if run.lock_owner() is not None:
        return "running"
    if step >= steps:
        return "finished"
    if not step:
        return "failed"
    last = run.last_metrics_record()  # from the end of the file: metrics.jsonl may be huge
    if last is not None and last.get("kind") == "stop":
        return {"diverged": "diverged", "collapse": "collapsed"}.get(last.get("reason"), "stopped")
    return "stopped"


def _summary(run: Run) -> dict:
    """One row of ``gan runs list``; a damaged run gives a row with ``error`` (never an exception)."""
    try:
        doc = run.read_config_doc()
        cfg = run.read_config(doc)
        ckpts = run.checkpoints()
    except (GancliError, OSError) as e:
        return {"id": run.id, "path": str(run.path), "error": f"damaged: {e}"}
    created = doc.get("meta", {}).get("created", "")
    step = ckpts[-1][0] if ckpts else 0
    return {
        "id": run.id,
        "status": _status(run, step, cfg.train.steps),
        "dataset": cfg.data.dataset,
        "task": cfg.task.name,
        "arch": cfg.model.arch,
        "loss": cfg.loss.name,
        **Conditioning.of(cfg.model).listing(),
        "step": step,
        "steps": cfg.train.steps,
        "created": created if isinstance(created, str) else "",
        "last_checkpoint": ckpts[-1][1].name if ckpts else None,
        "quality": _headline(run),
        "path": str(run.path),
    }


#: The metric ``gan runs list`` shows of a run's newest evaluation, first found first, with the
#: name it is shown by: the offline MNIST protocol's, then Inception's, then image-to-image ones.
HEADLINE_METRICS = (("fd_lenet", "FD-LeNet"), ("fid", "FID"), ("kid", "KID"), ("psnr", "PSNR"), ("is_lenet", "IS"))
#: How far back from the end of metrics.jsonl ``runs list`` looks for an evaluation.
HEADLINE_SCAN_BYTES = 1 << 20


def _headline(run: Run) -> dict | None:
    """``{"metric", "name", "value", "step"}`` of the newest ``eval`` record in the last MB of
    metrics.jsonl (``gan evaluate`` or ``--eval-every``), else None."""
    rec = run.last_metrics_record(where=lambda r: r.get("kind") == "eval", max_bytes=HEADLINE_SCAN_BYTES)
    if rec is None:
        return None
    for key, name in HEADLINE_METRICS:
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"metric": key, "name": name, "value": value, "step": rec["step"]}
    return None


@app.command("list", cls=Command)
@handles_errors
def list_runs(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of a table."),
) -> None:
    """Table of runs: id, status, dataset, model (the task of an image-to-image run, arch, loss, cond =
    conditional), steps checkpointed / total, quality (the newest evaluation's headline metric), created. --json has more (task, clusters, last checkpoint, path)."""
    store = state(ctx).store()
    rows = [_summary(r) for r in store.list()]
    if as_json:
        console.emit_json(rows, indent=2)
        return
    if not rows:
        console.info(f"no runs in {store.runs_dir} yet; start one with: gan train --dataset mnist --arch dcgan")
        return
    colors = {"running": "cyan", "finished": "green", "stopped": "yellow", "diverged": "red", "collapsed": "red",
              "failed": "red", "damaged": "red"}
    cells = []
    for r in rows:
        if "error" in r:
            cells.append((r["id"], "damaged", f"gan runs show {r['id']}", "", "", "", ""))
            continue
        model = f"{r['arch']} {r['loss']}" + (" cond" if r["conditional"] else "")
        if r["task"] != "generate":  # an image-to-image run: its task first ("inpaint: unet bce")
            model = f"{r['task']}: {model}"
        dataset = r["dataset"] if "/" not in r["dataset"] else Path(r["dataset"]).name + "/"
        q = r.get("quality")
        quality = f"{q['name']} {q['value']:.3g}" if q else ""
        cells.append((r["id"], r["status"], _ellipsis(dataset, 22), model, f"{r['step']}/{r['steps']}", quality,
                      r["created"][:10]))
    console.out.print(_aligned(f"runs in {store.runs_dir}",
                               ("id", "status", "dataset", "model", "steps", "quality", "created"),
                               cells, right={4}, styles={1: colors}), no_wrap=True, crop=True, soft_wrap=False)


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _aligned(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int],
             styles: dict[int, dict[str, str]]) -> Any:
    """A plain table as one Rich ``Text``: columns padded to their widest cell, two spaces
    apart, bold header, ``styles[col][value]`` colouring a cell. ~50x faster than a Rich
    ``Table`` for a thousand rows (``gan runs list`` on a big store, issue #26)."""
    from rich.text import Text

    widths = [max(len(row[c]) for row in (header, *rows)) for c in range(len(header))]
    text = Text(title + "\n")
    for n, row in enumerate((header, *rows)):
        for c, cell in enumerate(row):
            pad = widths[c] - len(cell)
            if c:
                text.append("  ")
            if c in right:
                text.append(" " * pad)
            style = "bold" if n == 0 else styles.get(c, {}).get(cell)
            text.append(cell, style=style)
            if c not in right and c < len(row) - 1:
                text.append(" " * pad)
        text.append("\n")
    text.rstrip()
    return text


@app.command("show", cls=Command)
@handles_errors
def show(
    ctx: typer.Context,
    run: str = typer.Argument(..., metavar="RUN", autocompletion=complete_run, help="run-N, N, latest or a run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print config.json, checkpoints and last metrics as JSON."),
) -> None:
    """Config, checkpoints, samples and latest metrics of one run."""
    r = state(ctx).store().resolve(run)
    doc = r.read_config_doc()
    r.read_config(doc)  # a damaged config is explained, not shown filled with defaults
    # from the end of metrics.jsonl, which may be huge (a full read of 1 GB took 49 s and 7.7 GB)
    last_train, bad_lines = r.newest_metrics_record(where=lambda m: m.get("kind", "train") == "train")
    info = {
        **doc,
        "path": str(r.path),
        "checkpoints": [p.name for _, p in r.checkpoints()],
        "samples": sorted((p.name for p in r.samples_dir.glob("*.png")),
                          key=lambda n: int("".join(c for c in n if c.isdigit()) or 0)),
        "last_metrics": last_train,
        "metrics_lines_skipped": bad_lines,
        "task": _task_info(doc["config"].get("task")),
    }
    if as_json:
        console.emit_json(info, indent=2)
        return
    from rich.table import Table

    cfg = doc["config"]
    table = Table(title=f"{r.id}  ({r.path})", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    task = info["task"]
    if task["translates"]:
        options = ", ".join(f"{k}={v}" for k, v in task["options"].items())
        table.add_row("task", f"{task['name']}: G translates images" + (f" ({options})" if options else "")
                      + "; samples/ rows: input, output, target")
    else:
        table.add_row("task", f"{task['name']}: G draws images from noise")
    for section, values in cfg.items():
        if isinstance(values, dict) and section != "task":
            table.add_row(section, ", ".join(f"{k}={v}" for k, v in values.items()))
    meta = doc.get("meta", {})
    table.add_row("created", str(meta.get("created", "")))
    table.add_row("versions", f"gancli {meta.get('gancli_version')}, torch {meta.get('torch_version')}")
    table.add_row("device", str(meta.get("device", "")))
    table.add_row("checkpoints", ", ".join(info["checkpoints"]) or "-")
    table.add_row("samples", f"{len(info['samples'])} grids in {r.samples_dir}")
    if info["last_metrics"]:
        m = info["last_metrics"]
        table.add_row("last metrics", console.format_record(m, cfg["train"]["steps"]))
    console.out.print(table)
    if bad_lines:
        console.warn(f"skipped {bad_lines} damaged line(s) at the end of {r.metrics_path}")


def _task_info(section: Any) -> dict[str, Any]:
    """``{"name", "translates", "options"}`` of a config's ``task`` section (absent in configs
    written before issue #24: ``generate``); ``options``: the task's own (its corruption's), as
    trained, or the whole section but its name for a task this gancli does not know."""
    from gancli.tasks import TRAINING_TASKS

    values = section if isinstance(section, dict) else {}
    name = values.get("name", "generate")
    try:
        task = TRAINING_TASKS.get(name)
    except GancliError:
        return {"name": name, "translates": True, "options": {k: v for k, v in values.items() if k != "name"}}
    return {"name": name, "translates": task.translates, "options": {k: values.get(k) for k in task.options}}


@app.command("rm", cls=Command)
@handles_errors
def rm(
    ctx: typer.Context,
    run: str = typer.Argument(..., metavar="RUN", help="run-N or N (not 'latest', to avoid accidents).",
                              autocompletion=complete_run),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout: the run removed."),
) -> None:
    """Delete a run directory and everything in it."""
    console.json_mode(as_json)
    if run == "latest":
        raise UsageError("refusing to delete 'latest'; name the run (e.g. run-3)")
    store = state(ctx).store()
    r = store.resolve(run)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {r.id} without --yes (stdin is not a terminal)")
        typer.confirm(f"delete {r.id} ({r.path})?", abort=True)
    files = sum(1 for p in r.path.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in r.path.rglob("*") if p.is_file())
    store.remove(r)
    console.info(f"deleted {r.id}")
    if as_json:
        console.emit_json({"removed": r.id, "path": str(r.path), "files": files, "bytes": size})


@app.command("unlock", cls=Command)
@handles_errors
def unlock(
    ctx: typer.Context,
    run: str = typer.Argument(..., metavar="RUN", autocompletion=complete_run, help="run-N, N, latest or a run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout: whether a lock file was removed."),
) -> None:
    """Remove a run's leftover lock file; refused while a live process trains the run.

    A lock is released by the kernel when its process dies, so gan train takes a stale
    lock over by itself; this only tidies the file away.
    """
    console.json_mode(as_json)
    r = state(ctx).store().resolve(run)
    removed = r.unlock()
    if removed:
        console.info(f"removed the lock file of {r.id}; no process was holding it")
    else:
        console.info(f"{r.id} has no lock file")
    if as_json:
        console.emit_json({"run": r.id, "path": str(r.path), "lock_removed": bool(removed)})


@app.command("compare", cls=Command)
@handles_errors
def compare(
    ctx: typer.Context,
    runs: list[str] = typer.Argument(..., metavar="RUN RUN...", autocompletion=complete_run,
                                     help="Two or more runs: run-N, N, latest or a run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Config differences and headline metrics of several runs, side by side.

    Only the config keys that differ are shown (dotted names, e.g. loss.name); then
    steps, wall time, speed and the newest evaluation of each run. For curves and
    sample grids: gan report RUN RUN... -o compare.html
    """
    console.json_mode(as_json)
    if len(runs) < 2:
        raise UsageError(f"gan runs compare needs at least two runs, got {len(runs)}; e.g. gan runs compare run-1 run-2")
    store = state(ctx).store()
    resolved = [store.resolve(ref) for ref in runs]
    if len({r.path.resolve() for r in resolved}) < len(resolved):
        raise UsageError(f"a run is named twice ({', '.join(runs)}); give each run once")

    from gancli.report.data import config_differences, label_runs, load_run

    data = [load_run(r) for r in resolved]
    label_runs(data)
    diff = config_differences([d.config for d in data])
    heads = [d.headline() for d in data]
    metrics: dict[str, None] = {}
    for h in heads:
        metrics.update(dict.fromkeys(h["eval"]))
    if as_json:
        console.emit_json({
            "runs": [{"label": d.label, **h} for d, h in zip(data, heads)],
            "config_differences": [{"key": k, "values": v} for k, v in diff.items()],
        })
        return
    from rich import box
    from rich.table import Table

    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)  # title printed above: never wrapped
    table.add_column("key", style="bold", no_wrap=True)
    for d in data:
        table.add_column(d.label, justify="right")
    for key, values in diff.items():
        table.add_row(key, *(_cell(v) for v in values))
    if not diff:
        table.add_row("[dim]config[/]", *(["[dim]identical[/]"] * len(data)))
    table.add_section()
    table.add_row("step", *(f"{h['step']:,}/{h['steps']:,}" if h["steps"] is not None else f"{h['step']:,}" for h in heads))
    table.add_row("wall time", *(fmt_duration(h["wall_seconds"]) if h["wall_seconds"] is not None else "-"
                                 for h in heads))
    table.add_row("steps/s", *(f"{h['steps_per_second']:.2f}" if h["steps_per_second"] is not None else "-" for h in heads))
    table.add_row("eval step", *(f"{h['eval_step']:,}" if h["eval_step"] is not None else "-" for h in heads))
    for m in metrics:
        table.add_row(m, *(_cell(h["eval"].get(m, "-")) for h in heads))
    stopped = [h["stopped"] for h in heads]
    if any(stopped):
        table.add_row("stopped", *(str(s or "-") for s in stopped))
    console.out.print("[italic]runs compared: config differences, then results[/]", soft_wrap=True)
    console.out.print(table)


def _cell(value) -> str:
    """A config or metric value for a table cell (escaped for Rich markup)."""
    from rich.markup import escape

    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return escape(value) if value else '""'
    return escape(json.dumps(value))
