"""The report page: one self-contained HTML file, rendered from ``templates/report.html.j2``.

This module prepares the data the page shows (numbers formatted, images read, rows
picked) and renders the Jinja2 template with it; the layout, the texts, the CSS and the
inline script are in the template, so the page can be changed without reading Python.
Autoescape is on: the values handed to the template are plain text.

No external resource of any kind: CSS inline, figures as ``data:image/svg+xml`` and
sample grids as ``data:image/png`` URIs, system fonts only, and a Content-Security-Policy
that forbids the browser to fetch anything else. The data the figures drew is embedded
as JSON in ``<script type="application/json" id="report-data">``; a small inline script
sets ``data-images-ok`` on ``<body>`` once every image has decoded (checked by the
browser test).
"""

from __future__ import annotations

import base64
import io
import json
import math
import shlex
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from gancli._version import __version__
from gancli.units import fmt_duration
from gancli.report.data import RunData, config_differences, is_number, lower_is_better
from gancli.report.plots import PALETTE, TITLES, Plot

#: Format of the embedded ``report-data`` JSON.
DATA_FORMAT = "gancli-report"
DATA_FORMAT_VERSION = 1
#: At most this many grids in a run's sample strip (evenly spaced, the newest always kept).
MAX_STRIP_GRIDS = 60
#: The page's template, in the package's ``templates/`` folder.
TEMPLATE = "report.html.j2"


def render_page(runs: list[RunData], plots: list[Plot]) -> str:
    """The whole HTML document (``str``) for ``runs`` and their drawn ``plots``."""
    return _environment().get_template(TEMPLATE).render(page_context(runs, plots))


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("gancli.report", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.filters["json"] = json.dumps
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def page_context(runs: list[RunData], plots: list[Plot]) -> dict[str, Any]:
    """What the template shows, as plain values (see the template's header for the keys)."""
    section_plots = {key: [_plot(p) for p in plots if p.spec.section == key] for key in ("training", "evaluation", "monitor")}
    has_evals = any(r.eval_records for r in runs)
    translates = any(translation_task(r.config) for r in runs)
    content = {
        "summary": True,
        "samples": any(r.samples for r in runs),
        "training": bool(section_plots["training"]),
        "evaluation": has_evals or bool(section_plots["evaluation"]) or translates,  # a translator: how to measure it
        "monitor": bool(section_plots["monitor"]),
        "config": True,
        "checkpoints": True,
    }
    return {
        "title": " vs ".join(r.label for r in runs),
        "subtitle": _subtitle(runs),
        "shown": {key: None for key, on in content.items() if on},
        "multi": len(runs) > 1,
        "summary": _summary(runs),
        "samples": _samples(runs) if content["samples"] else None,
        "training_plots": section_plots["training"],
        "evaluation": {"newest": _latest_eval_table(runs) if has_evals else None, "plots": section_plots["evaluation"],
                       "protocols": _protocol_table(runs) if has_evals else None,
                       "repair": _repair_table(runs) if has_evals else None,
                       "translates": translates},
        "monitor": {"checks": _monitor_checks(runs), "plots": section_plots["monitor"]},
        "config": _config(runs),
        "checkpoints": _checkpoints(runs),
        "version": __version__,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "paths": [str(r.path) for r in runs],
        "data_json": _script_json(report_data(runs, plots)),
    }


def report_data(runs: list[RunData], plots: list[Plot]) -> dict[str, Any]:
    """The JSON embedded in the page: ``runs`` (id, label, path, headline, ``series``
    ``{name: {"steps", "values"}}``) and ``plots`` (id, title, section, kind, series and
    ``lines``, the data read back from each figure); non-finite numbers as None."""
    return {
        "format": DATA_FORMAT,
        "format_version": DATA_FORMAT_VERSION,
        "gancli_version": __version__,
        "runs": [{
            "id": r.id, "label": r.label, "path": str(r.path), "headline": r.headline(),
            "series": {name: {"steps": list(s.steps), "values": [_finite(v) for v in s.values]}
                       for name, s in r.series.items()},
        } for r in runs],
        "plots": [{"id": p.spec.id, "title": p.spec.title, "section": p.spec.section, "kind": p.spec.kind,
                   "series": list(p.spec.series), "lines": p.lines} for p in plots],
    }


# -- sections ---------------------------------------------------------------------------
def _subtitle(runs: list[RunData]) -> list[str]:
    if len(runs) > 1:
        return [f"{len(runs)} runs compared: curves overlaid, one colour per run"]
    r = runs[0]
    c = r.config
    parts = [c.get("data", {}).get("dataset"), c.get("model", {}).get("arch"), f"loss {c.get('loss', {}).get('name')}"]
    task = translation_task(c)
    if task:
        parts.insert(0, f"--task {task}")
    if c.get("model", {}).get("num_classes"):
        parts.append(f"conditional ({c['model']['num_classes']} classes)")
    created = r.meta.get("created")
    if isinstance(created, str):
        parts.append(f"created {created.replace('T', ' ')[:16]} UTC")
    return [str(p) for p in parts if p]


def _summary(runs: list[RunData]) -> dict[str, Any]:
    """One run: ``cards`` (key, value, note, status); several: a table, one row per run."""
    if len(runs) == 1:
        return {"cards": _cards(runs[0])}
    metrics: dict[str, None] = {}
    for r in runs:
        latest = r.latest_eval()
        metrics.update(dict.fromkeys(latest[1] if latest else ()))
    head = ["run", "model", "steps", "wall time", "steps/s", *metrics]
    rows = []
    for i, r in enumerate(runs):
        h = r.headline()
        c = r.config
        rows.append({"run": r.label, "color": PALETTE[i % len(PALETTE)],
                     "model": f"{c.get('model', {}).get('arch')} · {c.get('loss', {}).get('name')}",
                     "steps": _steps(r), "wall": _duration(h["wall_seconds"]), "speed": _num(h["steps_per_second"], 3),
                     "metrics": [_num(h["eval"].get(m)) for m in metrics]})
    return {"head": head, "numeric": tuple(range(2, len(head))), "rows": rows}


def _cards(r: RunData) -> list[dict[str, Any]]:
    h = r.headline()
    total = r.total_steps
    card = lambda key, value, note, status=None: {"key": key, "value": value, "note": note, "status": status}  # noqa: E731
    cards = [card("Steps", f"{r.step:,}", f"of {total:,} · " if total is not None else "", _status(r)),
             card("Wall time", _duration(h["wall_seconds"]), "from config.json's creation to the newest record"),
             card("Speed", f"{_num(h['steps_per_second'], 3)} steps/s", f"{_num(h['img_per_sec'])} img/s while training"),
             card("Device", str(r.meta.get("device", "?")),
                  f"torch {r.meta.get('torch_version', '?')} · gancli {r.meta.get('gancli_version', '?')}")]
    task = translation_task(r.config)
    if task:
        options = _task_options(r.config)
        cards.insert(0, card("Task", task, ", ".join(f"{k} {v}" for k, v in options.items()) or "image-to-image"))
    latest = r.latest_eval()
    best = r.best_eval()
    if latest:
        step, values = latest
        for metric in list(values)[:2]:
            b = best.get(metric)
            note = f"step {step:,}" + (f" · best {_num(b[1])} @ {b[0]:,}" if b else "")
            cards.append(card(_metric_name(metric), _num(values[metric]), note))
    return cards


def _status(r: RunData) -> dict[str, str]:
    """``{"cls": "good" | "bad" | "", "text"}``: stopped, finished, or the share done."""
    if r.stop:
        return {"cls": "bad", "text": f"stopped: {r.stop.get('reason', '?')}"}
    total = r.total_steps
    if total is not None and r.step >= total:
        return {"cls": "good", "text": "finished"}
    return {"cls": "", "text": f"{_percent(r.step, total)} done" if total else ""}


def _samples(runs: list[RunData]) -> dict[str, Any]:
    """Several runs: ``compare`` (the newest grid of each); one: the newest grid large, the strip, the facts."""
    if len(runs) > 1:
        return {"compare": [_image(path, f"{r.label}: step {step:,}", "grid-compare", scale=2, max_px=560)
                            for r in runs if r.samples for step, path in r.samples[-1:]]}
    r = runs[0]
    step, path = r.samples[-1]
    task = translation_task(r.config)
    train = r.config.get("train", {})
    decay = train.get("ema_decay")
    every = train.get("sample_every_steps")
    return {
        "latest": _image(path, f"newest grid: step {step:,}" + (" (rows: input, output, target)" if task else ""),
                         "grid-large", scale=2, max_px=600),
        "strip": [_image(p, f"step {s:,}", "thumb", scale=1, max_px=180) for s, p in _spread(r.samples, MAX_STRIP_GRIDS)],
        "count": len(r.samples),
        "every": every if is_number(every) and every > 0 else None,
        "drawn_by": f"the EMA generator (decay {decay})" if is_number(decay) and decay > 0 else "the generator",
        "classes": r.config.get("model", {}).get("num_classes"),
        "run_id": r.id,
        "task": task,  # None = a noise-to-image run (fixed-z grids)
    }


def _latest_eval_table(runs: list[RunData]) -> dict[str, Any]:
    rows = []
    for r in runs:
        latest = r.latest_eval()
        if not latest:
            continue
        step, values = latest
        best = r.best_eval()
        extra = _result_extras(r, step)
        for metric, value in values.items():
            b = best.get(metric)
            rows.append({"run": r.label, "metric": metric, "value": _num(value), "detail": extra.get(metric, ""),
                         "step": f"{step:,}", "best": f"{_num(b[1])} @ {b[0]:,}" if b else "",
                         "better": "lower" if lower_is_better(metric) else "higher"})
    shift = len(runs) > 1
    head = (["run"] if shift else []) + ["metric", "newest", "detail", "at step", "best", "better"]
    return {"head": head, "numeric": (1 + shift, 3 + shift, 4 + shift), "rows": rows}


def _result_extras(r: RunData, step: int) -> dict[str, str]:
    """Per metric, the extra numbers of its newest result at ``step`` (std, splits, k...)."""
    out: dict[str, str] = {}
    for rec in r.eval_records:
        if rec["step"] != step:
            continue
        for res in rec.get("results") or []:
            if isinstance(res, dict) and isinstance(res.get("metric"), str):
                out[res["metric"]] = ", ".join(f"{k} {_num(v)}" for k, v in res.items()
                                               if k not in ("metric", "value", "protocol", "kl_to_uniform") and is_number(v))
    return out


def _repair_table(runs: list[RunData]) -> dict[str, Any] | None:
    """The newest evaluation of each image-to-image run, every row it compared (``gan evaluate``
    on a translation run writes ``rows``: ``run``, ``identity`` = the corrupted inputs themselves,
    ``baseline`` = ``--baseline RUN``...), one column per metric; None when no run has one."""
    rows: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    for r in runs:
        rec = next((x for x in reversed(r.eval_records) if isinstance(x.get("rows"), dict)), None)
        if rec is None:
            continue
        for name, values in rec["rows"].items():
            if isinstance(values, dict):
                metrics.update(dict.fromkeys(k for k, v in values.items() if is_number(v) or v is None))
                rows.append({"run": r.label, "row": str(name), "step": f"{rec['step']:,}", "values": values})
    if not rows:
        return None
    names = list(metrics)
    head = (["run"] if len(runs) > 1 else []) + ["images", "at step"] + [
        f"{m} ({'lower' if lower_is_better(m) else 'higher'} is better)" for m in names]
    for row in rows:
        row["cells"] = [_num(row["values"].get(m)) if row["values"].get(m) is not None else "—" for m in names]
        del row["values"]
    first = 2 + (len(runs) > 1)
    return {"head": head, "numeric": tuple(range(first - 1, first + len(names))), "rows": rows}


def _protocol_table(runs: list[RunData]) -> dict[str, Any]:
    rows = []
    for r in runs:
        for rec in r.eval_records:
            for res in rec.get("results") or []:
                if not isinstance(res, dict):
                    continue
                p = res.get("protocol") if isinstance(res.get("protocol"), dict) else {}
                if "task" in p and "protocol" not in p:  # an image-to-image record: another layout
                    rows.append({"run": r.label, "step": f"{rec['step']:,}", **_translation_protocol(res, p)})
                    continue
                ref = p.get("reference") if isinstance(p.get("reference"), dict) else {}
                gen = p.get("generated") if isinstance(p.get("generated"), dict) else {}
                rows.append({
                    "run": r.label, "step": f"{rec['step']:,}", "metric": str(res.get("metric", "?")),
                    "value": _num(res.get("value")), "protocol": str(p.get("protocol", "?")),
                    "protocol_json": json.dumps(p, indent=1), "extractor": str(p.get("feature_extractor", "")),
                    "counts": f"{_num(p.get('num_generated'))} / {_num(p.get('num_reference'))}",
                    "reference": ":".join(str(ref[k]) for k in ("dataset", "split") if k in ref) or str(ref.get("path", "")),
                    "weights": str(gen.get("weights", "")), "seed": str(p.get("seed", ""))})
    head = (["run"] if len(runs) > 1 else []) + ["step", "metric", "value", "protocol", "feature extractor",
                                                 "generated / reference", "reference", "weights", "seed"]
    return {"head": head, "numeric": (len(head) - 9, len(head) - 7), "rows": rows}


def _translation_protocol(res: dict[str, Any], p: dict[str, Any]) -> dict[str, str]:
    """The protocol-table cells of one figure of an image-to-image evaluation record
    (:mod:`gancli.metrics.translation_eval`): the Fréchet distance's features for FD / FID, ``pixels``
    for PSNR, SSIM, L1; ``lenet`` classifier for label preservation; images scored against as many
    clean targets; the held-out images (dataset:split, folder or test pairs)."""
    metric = str(res.get("metric", "?"))
    fd = p.get("fd") if isinstance(p.get("fd"), dict) else {}
    images = p.get("images") if isinstance(p.get("images"), dict) else {}
    if metric == fd.get("metric"):
        protocol, extractor = str(fd.get("protocol", "?")), str(fd.get("feature_extractor", ""))
    elif metric == "label_preservation":
        protocol, extractor = "lenet", "LeNet classifier"
    else:
        protocol, extractor = "pixels", ""
    reference = ":".join(str(images[k]) for k in ("dataset", "split") if k in images) or \
        str(images.get("folder") or images.get("pairs") or "")
    num = _num(p.get("num"))
    return {"metric": metric, "value": _num(res.get("value")), "protocol": protocol,
            "protocol_json": json.dumps(p, indent=1), "extractor": extractor, "counts": f"{num} / {num}",
            "reference": reference, "weights": str(p.get("weights") or ""), "seed": str(p.get("seed", ""))}


def _monitor_checks(runs: list[RunData]) -> list[dict[str, Any]]:
    """The newest monitor check of each run that has one: run, step, symptoms (empty = none)."""
    checks = []
    for r in runs:
        if r.monitor_records:
            rec = r.monitor_records[-1]
            symptoms = rec.get("symptoms") if isinstance(rec.get("symptoms"), list) else []
            checks.append({"run": r.label, "step": rec["step"], "symptoms": [str(s) for s in symptoms]})
    return checks


def _config(runs: list[RunData]) -> dict[str, Any]:
    """Several runs: the differing keys and each command; one: its command, environment and config sections."""
    if len(runs) > 1:
        return {"head": ["key", *(r.label for r in runs)],
                "differences": list(config_differences([r.config for r in runs]).items()),
                "commands": [(r.label, _command(r)) for r in runs]}
    r = runs[0]
    env = [("device", r.meta.get("device")), ("world size", r.meta.get("world_size")),
           ("gancli", r.meta.get("gancli_version")), ("torch", r.meta.get("torch_version")),
           ("torchvision", r.meta.get("torchvision_version")), ("python", r.meta.get("python_version")),
           ("created", r.meta.get("created")), ("data dir", r.meta.get("data_dir")), ("run dir", str(r.path)),
           *((f"config {k}", v) for k, v in r.config.items() if not isinstance(v, dict))]
    return {"command": _command(r), "environment": [(k, v) for k, v in env if v is not None],
            "sections": [(name, list(values.items())) for name, values in r.config.items() if isinstance(values, dict)]}


def _checkpoints(runs: list[RunData]) -> list[dict[str, Any]]:
    return [{"run": r.label, "name": c.name, "step": "—" if c.step is None else f"{c.step:,}", "size": _bytes(c.bytes),
             "ema": "—" if c.ema is None else ("yes" if c.ema else "no"), "best": c.best,
             "time": c.time.replace("T", " ")[:19], "error": c.error}
            for r in runs for c in r.checkpoints]


# -- building blocks ----------------------------------------------------------------------
def translation_task(config: dict[str, Any]) -> str | None:
    """The ``--task`` of a run's config dict when G translates images, None for ``generate``
    (and configs written before issue #24, which have no ``task`` section)."""
    task = config.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    return name if isinstance(name, str) and name != "generate" else None


def _task_options(config: dict[str, Any]) -> dict[str, Any]:
    """The options of the run's task (its corruption's), as trained; {} for an unknown task."""
    from gancli.errors import GancliError
    from gancli.tasks import TRAINING_TASKS

    task = config.get("task") or {}
    try:
        return {k: task.get(k) for k in TRAINING_TASKS.get(task.get("name")).options}
    except GancliError:
        return {}


def _plot(p: Plot) -> dict[str, str]:
    return {"id": p.spec.id, "title": p.spec.title, "caption": p.caption, "series": " ".join(p.spec.series),
            "uri": "data:image/svg+xml;base64," + base64.b64encode(p.svg).decode("ascii")}


def _image(path: Path, caption: str, cls: str, scale: int, max_px: int) -> dict[str, Any]:
    """A PNG file as a figure: its data: URI, shown ``scale`` x its size (at most ``max_px``
    wide); for a file that is not a readable PNG, ``error`` says why."""
    try:
        data = path.read_bytes()
        width, height = png_size(data)
    except (OSError, ValueError) as e:
        return {"cls": cls, "caption": caption, "error": str(e)}
    shown = min(width * scale, max_px)
    return {"cls": cls, "caption": caption, "error": None, "width": shown, "height": round(height * shown / width),
            "uri": "data:image/png;base64," + base64.b64encode(data).decode("ascii")}


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of the PNG image ``data``, read by Pillow.

    Raises:
        ValueError: ``data`` is not a PNG image, or an empty one.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            is_png, (width, height) = im.format == "PNG", im.size
    except (OSError, SyntaxError):  # not an image Pillow knows, or a header cut short
        is_png = False
    if not is_png:
        raise ValueError("not a PNG file")
    if not width or not height:
        raise ValueError("empty PNG")
    return width, height


def _command(r: RunData) -> str:
    cmd = r.meta.get("command")
    if not isinstance(cmd, list) or not cmd:
        return "(not recorded)"
    argv = [str(a) for a in cmd]
    if Path(argv[0]).name in ("gan", "gan.exe"):
        argv[0] = "gan"
    return shlex.join(argv)


def _spread(items: list, n: int) -> list:
    """At most ``n`` of ``items``, evenly spaced, the first and last kept."""
    if len(items) <= n:
        return items
    idx = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in idx]


def _metric_name(metric: str) -> str:
    """``fd_lenet`` -> ``FD-LeNet``: the y label of the metric's plot, else the key."""
    return TITLES.get(f"eval.{metric}", (None, metric))[1]


def _steps(r: RunData) -> str:
    total = r.total_steps
    return f"{r.step:,}" + (f" / {total:,}" if total is not None else "")


def _percent(a: int, b: int | None) -> str:
    return f"{100 * a / b:.0f}%" if b else ""


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_duration(seconds)


def _num(value: Any, digits: int = 4) -> str:
    if not is_number(value):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 10 ** digits else f"{value:.{digits}g}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _script_json(doc: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can end or confuse the block."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")
