"""How `gan runs list` and `gan runs show` scale with the run store: many runs, and a run with a huge metrics.jsonl.

    python benchmarks/run_store.py [--runs 1000] [--metrics-mb 1024] [--repeats 3] [--home DIR] [--out FILE]

Builds a synthetic run store in ``--home`` (default: a temporary folder, removed afterwards):

* ``--runs`` runs, each with a real ``config.json`` (the default config) and checkpoint file
  names (empty files: ``runs list`` reads only their names); half of them finished, half
  stopped half-way with a short ``metrics.jsonl`` ending in a ``stop`` record every tenth run;
* one more run, unfinished, whose ``metrics.jsonl`` is ``--metrics-mb`` MB of training records.

Then times, as a user runs it, the whole ``gan runs list`` and ``gan runs list --json``
processes (``python -m gancli``: interpreter start-up and imports included), best and median of
``--repeats``, with the peak resident memory of the child processes; and `gan runs list` with
the big run alone in a home, and `gan runs show` (table and ``--json``) of the big run. Issue
#26's target: <= 2 s for each. No pass/fail:
`gan report` of the big run is timed once, with its peak memory (target: within 2 GB).
JSON on stdout and in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 2.0
REPORT_MEMORY_MB = 2048


def build_store(home: Path, runs: int, metrics_mb: int) -> dict:
    """The synthetic store; returns what it holds."""
    sys.path.insert(0, str(REPO / "src"))
    from gancli.config import RunConfig
    from gancli.runs import RunStore

    store = RunStore(home)
    cfg = RunConfig().to_dict()
    total = cfg["train"]["steps"]
    t0 = time.perf_counter()
    for i in range(runs):
        run = store.create()
        run.write_config(cfg, {"created": "2026-12-03T00:00:00+00:00"})
        run.checkpoints_dir.mkdir(exist_ok=True)
        finished = i % 2 == 0
        last = total if finished else total // 2
        for step in (last // 2, last):
            (run.checkpoints_dir / f"step-{step}.safetensors").touch()
        lines = [json.dumps({"kind": "train", "step": s, "epoch": s / 937, "loss_d": 0.5, "loss_g": 1.5})
                 for s in range(100, last + 1, 100)]
        if not finished and i % 10 == 1:
            lines.append(json.dumps({"kind": "stop", "step": last, "reason": "diverged", "message": "x"}))
        run.metrics_path.write_text("\n".join(lines) + "\n")
    big = store.create()
    big.write_config(cfg, {"created": "2026-12-03T00:00:00+00:00"})
    big.checkpoints_dir.mkdir(exist_ok=True)
    (big.checkpoints_dir / "step-1000.safetensors").touch()
    line = json.dumps({"kind": "train", "step": 1000, "epoch": 1.0673, "loss_d": 0.512345, "loss_g": 1.523456,
                       "d_real": 0.71234, "d_fake": 0.29876, "lr_g": 0.0002, "lr_d": 0.0002,
                       "img_per_sec": 512.3, "time": "2026-12-03T00:00:00+00:00"}) + "\n"
    block = (line * max(1, (1 << 20) // len(line))).encode()
    with open(big.metrics_path, "wb") as f:
        while f.tell() < metrics_mb << 20:
            f.write(block)
    return {"runs": runs + 1, "big_run": big.id, "big_metrics_bytes": big.metrics_path.stat().st_size,
            "build_seconds": round(time.perf_counter() - t0, 1)}


#: Runs ``gan`` as ``python -m gancli`` does, then prints the process's own peak RSS (KB) last on stderr.
_WRAPPER = ("import resource, runpy, sys\n"
            "try:\n    runpy.run_module('gancli', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
            "print('peak-rss-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)\n")


def time_command(home: Path, args: list[str], repeats: int, target: float | None = TARGET_SECONDS) -> dict:
    """Best and median wall seconds of ``gan --home HOME <args>`` (``python -m gancli``), and
    the largest peak resident memory of one of those processes."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "PYTHONPATH": str(REPO / "src")}
    times, peaks = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", _WRAPPER, "--home", str(home), *args], capture_output=True,
                           text=True, env=env)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"gan {' '.join(args)} failed: {r.stderr}")
        peaks.append(int(r.stderr.strip().splitlines()[-1].split()[-1]) / 1024)
    out = {"command": ["gan", *args], "best_seconds": round(min(times), 3),
           "median_seconds": round(statistics.median(times), 3), "repeats": repeats,
           "peak_rss_mb": round(max(peaks), 1)}
    if target is not None:
        out["within_target"] = min(times) <= target
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--metrics-mb", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--home", default=None, help="where to build the store (default: a temporary folder)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="gancli-run-store-"))
    try:
        built = build_store(home, args.runs, args.metrics_mb)
        results = [time_command(home, ["runs", "list"], args.repeats),
                   time_command(home, ["runs", "list", "--json"], args.repeats)]
        alone = home / "alone"
        (alone / "runs").mkdir(parents=True)
        os.symlink(home / "runs" / built["big_run"], alone / "runs" / built["big_run"])
        results.append({**time_command(alone, ["runs", "list"], args.repeats), "store": "the big run alone"})
        page = home / "report.html"  # issue #26: within 2 GB of memory, no time target
        big = str(home / "runs" / built["big_run"])
        results.append({**time_command(home, ["runs", "show", big], args.repeats), "store": "the big run"})
        results.append({**time_command(home, ["runs", "show", big, "--json"], args.repeats), "store": "the big run"})
        results.append({**time_command(home, ["report", big, "-o", str(page)], 1, target=None),
                        "memory_target_mb": REPORT_MEMORY_MB})
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    doc = {"benchmark": "gan runs list on a large run store", "date": datetime.now(timezone.utc).isoformat(),
           "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "python": platform.python_version(), "load_avg_start_end": None},
           "target_seconds": TARGET_SECONDS, "store": built, "results": results}
    try:
        doc["machine"]["cpu"] = next(line.split(":", 1)[1].strip() for line in
                                     Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
