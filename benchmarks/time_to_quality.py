"""Wall time for a preset to reach a given FD-LeNet on MNIST.

    python benchmarks/time_to_quality.py [--preset mnist-dcgan] [--target 20] [--eval-every 250]
                                         [--eval-samples 10000] [--max-epochs 5] [--device auto]
                                         [--out FILE]

Trains the preset (real MNIST from ``--data-dir`` / ``$GANCLI_DATA_DIR`` / ``../shared/data``)
with ``--eval-every`` through gancli's own engine and reports, from the run's
``metrics.jsonl``, the training wall time (evaluation time excluded) and step at which
FD-LeNet (gancli's offline protocol, ``docs/metrics.md``; EMA generator, N generated =
``--eval-samples`` against the 60k MNIST train images) first drops to ``--target`` or
below, plus the whole FD-LeNet curve. No pass/fail: JSON on stdout and in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def _default_data_dir() -> str:
    return os.environ.get("GANCLI_DATA_DIR") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-dcgan")
    ap.add_argument("--target", type=float, default=20.0, help="FD-LeNet to reach (real-vs-real floor ~0.5)")
    ap.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--max-epochs", type=float, default=5.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", default=_default_data_dir())
    ap.add_argument("--home", default=None, help="gancli home for the run (default: a temporary folder)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    from gancli import __version__
    from gancli.engine.launch import train
    from gancli.resolve import build_config
    from gancli.runs import RunStore

    home = Path(args.home or tempfile.mkdtemp(prefix="gancli-ttq-"))
    cfg = build_config({"epochs": args.max_epochs, "eval_every": args.eval_every, "eval_samples": args.eval_samples,
                        "device": args.device, "log_every": args.eval_every}, preset=args.preset)
    t0 = time.perf_counter()
    run, result = train(cfg, RunStore(home), args.data_dir)
    total = time.perf_counter() - t0
    rows = run.read_metrics()
    train_rows = {r["step"]: r for r in rows if r.get("kind") == "train"}
    curve, reached = [], None
    eval_seconds = 0.0
    for r in (r for r in rows if r.get("kind") == "eval"):
        eval_seconds += r.get("seconds", 0.0)
        point = {"step": r["step"], "epoch": r.get("epoch"), "fd_lenet": r["fd_lenet"], "eval_seconds": r.get("seconds")}
        curve.append(point)
        if reached is None and r["fd_lenet"] <= args.target:
            reached = point
    # training seconds up to a step: img/s of each logged interval (evaluation excluded by the trainer)
    imgs_per_step = cfg.train.batch_size * cfg.optim.d_steps
    elapsed, prev = {}, 0
    acc = 0.0
    for step in sorted(train_rows):
        acc += imgs_per_step * (step - prev) / max(train_rows[step]["img_per_sec"], 1e-9)
        elapsed[step] = acc
        prev = step
    for p in curve:
        p["train_seconds"] = round(elapsed.get(p["step"], float("nan")), 1)
    doc = {
        "benchmark": "time_to_quality",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__, "gancli": __version__,
                    "device": cfg.train.device, "cuda": torch.cuda.get_device_name(0)
                    if torch.cuda.is_available() else None, "torch_threads": torch.get_num_threads()},
        "preset": args.preset,
        "config": cfg.to_dict(),
        "protocol": "FD-LeNet (gancli LeNet-MNIST, 128-d features), EMA G, "
                    f"{args.eval_samples} generated vs 60000 MNIST train",
        "target_fd_lenet": args.target,
        "reached": reached is not None,
        "train_seconds_to_target": reached["train_seconds"] if reached else None,
        "step_to_target": reached["step"] if reached else None,
        "best_fd_lenet": min((p["fd_lenet"] for p in curve), default=None),
        "curve": curve,
        "wall_seconds_total": round(total, 1),
        "eval_seconds_total": round(eval_seconds, 1),
        "run": str(run.path),
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return doc


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
