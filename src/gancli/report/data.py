"""What a report shows, read from a run directory into plain Python values.

Torch- and matplotlib-free (``gan runs compare`` uses it too). Everything the plots
draw comes from :attr:`RunData.series`: ``{name: Series(steps, values)}`` with names

* ``train.<key>``: every numeric key of the ``"kind": "train"`` records of
  ``metrics.jsonl`` (``loss_d``, ``loss_g``, ``d_real``, ``d_fake``, ``lr_g``, ``lr_d``,
  ``img_per_sec``, penalties such as ``gp`` / ``r1`` when logged), ``epoch`` excepted;
* ``eval.<metric>``: the metrics of the ``"eval"`` records (``gan evaluate`` and
  ``gan train --eval-every``): the ``value`` of each entry of ``results`` (and the
  ``kl_to_uniform`` of a ``classes_covered`` entry), overridden by the record's own
  top-level numbers, which are what ``metrics.jsonl`` shows first;
* ``monitor.<key>``: the numeric keys of the mode-collapse monitor records
  (``diversity``, ``duplicates``, ``classes_covered``, ``kl_to_uniform``).

Steps are sorted; when several records of a kind share a step, the last one written wins
(an evaluation run twice on the same checkpoint).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gancli.metrics.catalog import lower_is_better  # a metric's direction, declared with the metric
from gancli.runs import BEST_CHECKPOINT, Run

#: Keys of metrics records that are bookkeeping, not series.
_NOT_SERIES = {
    "train": {"kind", "step", "epoch", "time"},
    "eval": {"kind", "step", "epoch", "time", "seconds", "results"},
    "monitor": {"kind", "step", "epoch", "time", "seconds"},
}
#: Extra numbers of an eval ``results`` entry that are series of their own.
_RESULT_EXTRAS = ("kl_to_uniform",)
_SAMPLE_RE = re.compile(r"step-(\d+)\.png")


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (NaN and inf included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Series:
    """One curve: ``steps`` (ascending ints) and ``values`` (numbers as logged, ints kept;
    NaN = a gap)."""

    steps: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def best(self, lower: bool) -> tuple[int, float] | None:
        """``(step, value)`` of the smallest (``lower``) or largest finite value; the earliest
        step on ties; None when there is none."""
        finite = [(s, v) for s, v in zip(self.steps, self.values) if math.isfinite(v)]
        if not finite:
            return None
        return min(finite, key=lambda sv: (sv[1] if lower else -sv[1], sv[0]))


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint file, from its safetensors header only (no tensor is read)."""

    name: str  # file name, e.g. step-4000.safetensors or best.safetensors
    path: Path
    bytes: int  # file size
    step: int | None  # training step it holds; None when the header is unreadable
    ema: bool | None  # holds EMA weights of G (generator_ema); None when unreadable
    best: bool  # holds the same step as best.safetensors (or is it)
    time: str  # ISO time it was written ("" when unknown)
    error: str = ""  # why the header could not be read


@dataclass
class RunData:
    """Everything a report shows about one run (see the module docstring for ``series``)."""

    id: str  # run-N
    path: Path  # the run directory
    meta: dict[str, Any]  # config.json "meta": command, device, versions, created
    config: dict[str, Any]  # config.json "config": data / model / loss / optim / train sections
    series: dict[str, Series]
    eval_records: list[dict[str, Any]]  # "kind": "eval" records, in file order
    monitor_records: list[dict[str, Any]]  # "kind": "monitor" records, in file order
    samples: list[tuple[int, Path]]  # (step, samples/step-N.png), oldest first
    checkpoints: list[CheckpointInfo]  # step checkpoints oldest first, then best.safetensors
    stop: dict[str, Any] | None = None  # the last "kind": "stop" record (divergence, collapse)
    skipped_lines: int = 0  # damaged lines of metrics.jsonl left out
    last_time: str = ""  # ISO time of the newest record
    label: str = ""  # name in legends: the id, or "<id> (<store>)" when ids clash

    def __post_init__(self) -> None:
        self.label = self.label or self.id

    # -- derived numbers
    @property
    def step(self) -> int:
        """The newest step the run reached (checkpoints and train records); 0 when none."""
        steps = [c.step for c in self.checkpoints if c.step is not None]
        train = self.series.get("train.loss_d") or next((s for k, s in self.series.items() if k.startswith("train.")), None)
        if train is not None and len(train):
            steps.append(train.steps[-1])
        return max(steps, default=0)

    @property
    def total_steps(self) -> int | None:
        """The steps the run was configured for (``train.steps``); None when not recorded."""
        value = self.config.get("train", {}).get("steps")
        return value if is_number(value) else None

    @property
    def wall_seconds(self) -> float | None:
        """Seconds from the run's creation (config.json ``meta.created``) to its newest
        record, evaluation and pauses of a resumed run included; None when unknown."""
        start, end = _parse_time(self.meta.get("created")), _parse_time(self.last_time)
        if start is None or end is None or end < start:
            return None
        return (end - start).total_seconds()

    @property
    def images_per_step(self) -> int | None:
        """Real images D sees per step: ``batch_size * d_steps`` (as the trainer counts img/s)."""
        bs = self.config.get("train", {}).get("batch_size")
        d_steps = self.config.get("optim", {}).get("d_steps", 1)
        return int(bs * d_steps) if is_number(bs) and is_number(d_steps) and bs * d_steps > 0 else None

    @property
    def steps_per_second(self) -> float | None:
        """Training speed in steps/s over the logged intervals (evaluation time excluded):
        the steps covered by the train records divided by the seconds their ``img_per_sec``
        implies. None without train records or batch size."""
        ips = self.images_per_step
        rate = self.series.get("train.img_per_sec")
        if ips is None or rate is None or not len(rate):
            return None
        steps = seconds = 0.0
        prev = 0
        for step, img_per_sec in zip(rate.steps, rate.values):
            if math.isfinite(img_per_sec) and img_per_sec > 0 and step > prev:
                steps += step - prev
                seconds += (step - prev) * ips / img_per_sec
            prev = step
        return steps / seconds if seconds > 0 else None

    def latest_eval(self) -> tuple[int, dict[str, float]] | None:
        """``(step, {metric: value})`` of the newest evaluated step; None without evaluations."""
        evals = {k[5:]: s for k, s in self.series.items() if k.startswith("eval.") and len(s)}
        if not evals:
            return None
        step = max(s.steps[-1] for s in evals.values())
        return step, {m: s.values[-1] for m, s in evals.items() if s.steps[-1] == step}

    def best_eval(self) -> dict[str, tuple[int, float]]:
        """``{metric: (step, value)}``: the best value of each eval metric (see :func:`lower_is_better`)."""
        out = {}
        for name, s in self.series.items():
            if name.startswith("eval."):
                best = s.best(lower_is_better(name[5:]))
                if best is not None:
                    out[name[5:]] = best
        return out

    def latest_histogram(self) -> tuple[str, int, list[int]] | None:
        """``(source, step, counts per class)`` of the newest class histogram: the newest eval
        record that has one (``source`` ``"eval"``), else the newest monitor record
        (``"monitor"``, a few hundred samples); None when neither has one."""
        for rec in reversed(self.eval_records):
            for res in rec.get("results") or []:
                hist = res.get("histogram") if isinstance(res, dict) else None
                if _is_counts(hist):
                    return "eval", rec["step"], list(hist)
        for rec in reversed(self.monitor_records):
            if _is_counts(rec.get("histogram")):
                return "monitor", rec["step"], list(rec["histogram"])
        return None

    def headline(self) -> dict[str, Any]:
        """A JSON-able summary: id, path, step, steps, wall_seconds, steps_per_second,
        img_per_sec (mean of the train records), eval_step and eval (the newest eval
        metrics), best (``{metric: {"step", "value"}}``), stopped (the reason of a stop record)."""
        latest = self.latest_eval()
        rate = self.series.get("train.img_per_sec")
        finite = [v for v in (rate.values if rate else ()) if math.isfinite(v)]
        return {
            "id": self.id,
            "path": str(self.path),
            "step": self.step,
            "steps": self.total_steps,
            "wall_seconds": None if self.wall_seconds is None else round(self.wall_seconds, 1),
            "steps_per_second": None if self.steps_per_second is None else round(self.steps_per_second, 3),
            "img_per_sec": round(sum(finite) / len(finite), 1) if finite else None,
            "eval_step": latest[0] if latest else None,
            "eval": {k: _json_number(v) for k, v in latest[1].items()} if latest else {},
            "best": {k: {"step": s, "value": _json_number(v)} for k, (s, v) in self.best_eval().items()},
            "stopped": (self.stop or {}).get("reason"),
        }


#: ``gan report`` plots at most about this many training records per run (every k-th of a longer
#: metrics.jsonl, and the newest): a 1 GB file stays within a few hundred MB of memory.
MAX_TRAIN_RECORDS = 20_000


def load_run(run: Run) -> RunData:
    """Read ``run``'s config.json, metrics.jsonl, sample grids and checkpoint headers.

    Raises:
        GancliError: config.json missing, unreadable or not a gancli run (naming the file).
        OSError: the run directory cannot be read.
    """
    doc = run.read_config_doc()
    records, skipped = run.read_metrics_report(max_train_records=MAX_TRAIN_RECORDS)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_kind.setdefault(rec.get("kind", "train"), []).append(rec)
    stops = by_kind.get("stop", [])
    times = [r["time"] for r in records if isinstance(r.get("time"), str) and _parse_time(r["time"])]
    return RunData(
        id=run.id,
        path=run.path,
        meta=doc.get("meta", {}),
        config=doc["config"],
        series=collect_series(records),
        eval_records=by_kind.get("eval", []),
        monitor_records=by_kind.get("monitor", []),
        samples=sample_grids(run),
        checkpoints=checkpoint_infos(run),
        stop=stops[-1] if stops else None,
        skipped_lines=skipped,
        last_time=max(times, key=_parse_time) if times else "",
    )


def collect_series(records: list[dict[str, Any]]) -> dict[str, Series]:
    """``{"<kind>.<key>": Series}`` from metrics records (see the module docstring);
    train series first, then eval, then monitor, keys in the order first seen."""
    points: dict[str, dict[int, float]] = {}
    for rec in records:
        kind = rec.get("kind", "train")
        if kind not in _NOT_SERIES:
            continue
        values: dict[str, float] = {}
        if kind == "eval":
            for res in rec.get("results") or []:
                if not isinstance(res, dict) or not isinstance(res.get("metric"), str):
                    continue
                if is_number(res.get("value")):
                    values[res["metric"]] = res["value"]
                values.update({k: res[k] for k in _RESULT_EXTRAS if is_number(res.get(k)) and k not in values})
        values.update({k: v for k, v in rec.items() if k not in _NOT_SERIES[kind] and is_number(v)})
        for key, value in values.items():
            points.setdefault(f"{kind}.{key}", {})[rec["step"]] = value
    order = {"train": 0, "eval": 1, "monitor": 2}
    names = sorted(points, key=lambda n: order[n.split(".", 1)[0]])  # stable: first-seen order within a kind
    return {n: Series(tuple(sorted(points[n])), tuple(points[n][s] for s in sorted(points[n]))) for n in names}


def smooth(values: list[float] | tuple[float, ...], weight: float) -> list[float]:
    """Debiased exponential moving average (as TensorBoard's smoothing): ``weight`` in
    [0, 1), 0 = no smoothing. NaN values are skipped (their output is NaN)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, last, norm = [], 0.0, 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def smoothing_weight(n: int) -> float:
    """The EMA weight the plots use for a curve of ``n`` points: 0 (none) under 8 points,
    then rising with ``n`` (0.6 at 25 points, 0.8 at 50, at most 0.95)."""
    return 0.0 if n < 8 else min(0.95, max(0.0, 1 - 10 / n))


def sample_grids(run: Run) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's fixed-z grids ``samples/step-N.png``, oldest first."""
    if not run.samples_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run.samples_dir.iterdir() if (m := _SAMPLE_RE.fullmatch(p.name))]
    return sorted(found)


def checkpoint_infos(run: Run) -> list[CheckpointInfo]:
    """The run's step checkpoints (oldest first) and ``best.safetensors`` when kept, from
    their safetensors metadata only; an unreadable file gives a row with ``error``."""
    files = [p for _, p in run.checkpoints()]
    best_path = run.checkpoints_dir / BEST_CHECKPOINT
    if best_path.is_file():
        files.append(best_path)
    headers = {p: _read_state(p) for p in files}
    best_step = headers.get(best_path, {}).get("step") if best_path in headers else None
    out = []
    for p in files:
        state = headers[p]
        step = state.get("step") if is_number(state.get("step")) else None
        structure = state.get("structure")
        size = 0
        with contextlib.suppress(OSError):  # pruned by a running training meanwhile
            size = p.stat().st_size
        out.append(CheckpointInfo(
            name=p.name, path=p, bytes=size, step=step,
            ema=("generator_ema" in structure) if isinstance(structure, dict) else None,
            best=p == best_path or (best_step is not None and step == best_step),
            time=state.get("time", "") if isinstance(state.get("time"), str) else "",
            error=state.get("error", ""),
        ))
    return out


def _read_state(path: Path) -> dict[str, Any]:
    """The JSON ``state`` of a checkpoint's safetensors metadata; ``{"error": ...}`` when unreadable."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        state = json.loads(meta.get("state", "{}"))
    except Exception as e:  # safetensors raises its own error types for damaged files
        return {"error": f"unreadable ({type(e).__name__})"}
    return state if isinstance(state, dict) else {"error": "damaged state"}


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loss": {"name": "hinge"}}`` -> ``{"loss.name": "hinge"}`` (nested dicts only;
    lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_differences(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``{dotted key: [value of each config]}`` for the keys whose values differ (a key
    missing from a config counts as ``None``), in the order of the first config's keys."""
    flat = [flatten_config(c) for c in configs]
    keys: dict[str, None] = {}
    for f in flat:
        keys.update(dict.fromkeys(f))
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


def label_runs(runs: list[RunData]) -> None:
    """Give runs with the same id (from different stores) distinct legend labels."""
    ids = [r.id for r in runs]
    for r in runs:
        if ids.count(r.id) > 1:
            r.label = f"{r.id} ({r.path.parent.parent.name or r.path.parent})"


def _is_counts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(is_number(v) for v in value)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["CheckpointInfo", "RunData", "Series", "collect_series", "config_differences", "flatten_config",
           "load_run", "lower_is_better", "smooth", "smoothing_weight"]
