"""Wall time for MNIST recipes to reach given FD-LeNet values, measured in one run.

    python benchmarks/time_to_quality.py [--recipes default,dcgan-classic] [--targets 20,10]
                                         [--eval-every 250] [--eval-samples 10000] [--max-epochs 5]
                                         [--baseline-ref 915a28b] [--device auto] [--out FILE]

Runs each recipe in turn as its own ``gan train`` process (real MNIST from ``--data-dir`` /
``$GANCLI_DATA_DIR`` / ``../shared/data``) with ``--eval-every`` and reports, from each run's
``metrics.jsonl``, the training wall time (evaluation excluded) and step at which FD-LeNet
(gancli's offline protocol, ``docs/metrics.md``; EMA generator, N generated =
``--eval-samples`` against the 60k MNIST train images) first drops to each target, the whole
FD-LeNet curve, the mode-collapse monitor's share of the training time, and the job's wall
time: the whole ``gan train`` process (start-up, data loading, clustering, training,
checkpoints) less the time its evaluations took, i.e. what the same command without
``--eval-every`` costs a user. With ``default`` and ``dcgan-classic`` both run, the ratio of
those job times is reported too (``job_wall_ratio``). A recipe is a preset name or
``default``: the README's job, ``gan train --dataset mnist --arch dcgan`` with default
options.

``--baseline-ref REF`` also runs every recipe with the code of git commit REF (a temporary
``git worktree``, imported through ``PYTHONPATH``; same interpreter and libraries), the
baseline first, then today's code, and reports for each target the whole-process time to reach
it (``to_target_job_seconds``: the job's time less the training after the evaluation that
reached it) and the ratio today / baseline. Where the time goes, per run: start-up and exit
(the process's wall time less evaluations and training), the training steps, and the collapse
monitor's share. No pass/fail: JSON on stdout and in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _default_data_dir() -> str:
    return os.environ.get("GANCLI_DATA_DIR") or str(REPO.parent / "shared" / "data")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def warm_reference_stats(args: argparse.Namespace, home: Path) -> float:
    """Compute the MNIST train statistics of FD-LeNet into ``home``'s cache before any timed run,
    so that no recipe's job time holds them; returns the seconds taken."""
    import torch

    from gancli.config import DataConfig
    from gancli.metrics.evaluate import TrainingEvaluator

    t0 = time.perf_counter()
    TrainingEvaluator(DataConfig(dataset="mnist", download=False), args.data_dir, args.eval_samples,
                      torch.device("cpu"), home=home)
    return time.perf_counter() - t0


def measure(recipe: str, args: argparse.Namespace, targets: list[float], home: Path, src: Path | None = None,
            label: str = "today") -> dict:
    """Run ``gan train`` for one recipe, with evaluations, in a fresh process and read its curve back
    (``src``: the ``src`` folder of another checkout whose gancli runs instead)."""
    from gancli.runs import RunStore

    command = [sys.executable, "-m", "gancli", "train", "--dataset", "mnist", "--arch", "dcgan",
               "--epochs", f"{args.max_epochs:g}", "--eval-every", str(args.eval_every),
               "--eval-samples", str(args.eval_samples), "--log-every", str(args.eval_every), "--device", args.device]
    if recipe != "default":
        command += ["--preset", recipe]
    env = dict(os.environ, GANCLI_HOME=str(home), GANCLI_DATA_DIR=args.data_dir)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    t0 = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - t0
    run = RunStore(home).resolve("latest")
    cfg = run.read_config()
    rows = run.read_metrics()
    train_rows = {r["step"]: r for r in rows if r.get("kind") == "train"}
    # training seconds up to a step: img/s of each logged interval (evaluation excluded by the trainer)
    imgs_per_step = cfg.train.batch_size * cfg.optim.d_steps
    elapsed, prev, acc = {}, 0, 0.0
    for step in sorted(train_rows):
        acc += imgs_per_step * (step - prev) / max(train_rows[step]["img_per_sec"], 1e-9)
        elapsed[step] = acc
        prev = step
    curve, eval_seconds = [], 0.0
    for r in (r for r in rows if r.get("kind") == "eval"):
        eval_seconds += r.get("seconds", 0.0)
        curve.append({"step": r["step"], "epoch": r.get("epoch"), "fd_lenet": r["fd_lenet"],
                      "train_seconds": round(elapsed.get(r["step"], float("nan")), 1), "eval_seconds": r.get("seconds")})
    monitor_seconds = sum(r.get("seconds", 0.0) for r in rows if r.get("kind") == "monitor")
    train_seconds = elapsed[max(elapsed)] if elapsed else float("nan")
    job_seconds = total - eval_seconds
    reached = {}
    for target in targets:
        hit = next((p for p in curve if p["fd_lenet"] <= target), None)
        reached[f"{target:g}"] = {"train_seconds": hit["train_seconds"], "step": hit["step"],
                                  "to_target_job_seconds": round(job_seconds - (train_seconds - hit["train_seconds"]), 1)
                                  } if hit else None
    return {
        "recipe": recipe,
        "code": label,
        "config": cfg.to_dict(),
        "reached": reached,
        "best_fd_lenet": min((p["fd_lenet"] for p in curve), default=None),
        "curve": curve,
        "train_seconds_total": round(train_seconds, 1),
        "monitor_seconds_total": round(monitor_seconds, 2),
        "monitor_share_of_train_time": round(monitor_seconds / train_seconds, 4) if elapsed else None,
        "command": command[2:],
        "process_wall_seconds": round(total, 1),
        "eval_seconds_total": round(eval_seconds, 1),
        "job_seconds": round(job_seconds, 1),
        "where_the_time_goes": {"startup_and_exit_seconds": round(job_seconds - train_seconds, 1),
                                "steps_seconds": round(train_seconds - monitor_seconds, 1),
                                "monitor_seconds": round(monitor_seconds, 1)},
        "run": str(run.path),
    }


def baseline_src(ref: str, where: Path) -> Path:
    """A ``git worktree`` of commit ``ref`` of this repository in ``where``; its ``src`` folder."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), ref], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return where / "src"


def _target_ratios(results: list[dict], targets: list[float]) -> dict:
    """Per recipe and target: today's ``to_target_job_seconds`` over the baseline's."""
    out = {}
    for r in results:
        if r["code"] != "today":
            continue
        base = next((b for b in results if b["recipe"] == r["recipe"] and b["code"] != "today"), None)
        if base is None:
            continue
        for t in (f"{x:g}" for x in targets):
            a, b = r["reached"].get(t), base["reached"].get(t)
            out[f"{r['recipe']}@{t}"] = (round(a["to_target_job_seconds"] / b["to_target_job_seconds"], 3)
                                         if a and b else None)
    return out


def _ratio(results: list[dict], new: str, old: str) -> float | None:
    """``job_seconds`` of recipe ``new`` over that of ``old``, when both ran."""
    by = {r["recipe"]: r["job_seconds"] for r in results}
    return round(by[new] / by[old], 3) if new in by and old in by else None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="default,dcgan-classic", help="comma-separated: default and/or preset names")
    ap.add_argument("--targets", default="20,10", help="FD-LeNet values to reach (real-vs-real floor ~0.5)")
    ap.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--max-epochs", type=float, default=5.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", default=_default_data_dir())
    ap.add_argument("--home", default=None, help="gancli home for the runs (default: a temporary folder)")
    ap.add_argument("--baseline-ref", default=None, help="also run each recipe with this git commit's code, first")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    from gancli import __version__

    targets = [float(x) for x in args.targets.split(",")]
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    home = Path(args.home or tempfile.mkdtemp(prefix="gancli-ttq-"))
    warm_seconds = warm_reference_stats(args, home)
    results = []
    base = None
    if args.baseline_ref:
        base = baseline_src(args.baseline_ref, Path(tempfile.mkdtemp(prefix="gancli-baseline-")) / "tree")
    try:
        for r in args.recipes.split(","):
            if base is not None:
                results.append(measure(r.strip(), args, targets, home, base, f"baseline {args.baseline_ref}"))
            results.append(measure(r.strip(), args, targets, home))
    finally:
        if base is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base.parent)], check=False)
    doc = {
        "benchmark": "time_to_quality",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": _cpu_name(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__, "gancli": __version__,
                    "device": args.device, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "torch_threads": torch.get_num_threads(), "load_avg_start": load_start},
        "protocol": "FD-LeNet (gancli LeNet-MNIST, 128-d features), EMA G, "
                    f"{args.eval_samples} generated vs 60000 MNIST train; evaluation time excluded",
        "targets_fd_lenet": targets,
        "reference_stats_seconds": round(warm_seconds, 1),
        "results": results,
        "job_wall_ratio": _ratio([r for r in results if r["code"] == "today"], "default", "dcgan-classic"),
        "baseline_ref": args.baseline_ref,
        "to_target_ratio_today_over_baseline": _target_ratios(results, targets),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    doc["machine"]["load_avg_end"] = os.getloadavg()
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return doc


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
