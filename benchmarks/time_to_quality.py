"""Wall time for the MNIST dcgan preset to reach a target FD-LeNet.

    python benchmarks/time_to_quality.py --target 10 [--eval-every 200] [--max-epochs 5]
        [--device auto] [--precision fp32] [--data-dir DIR] [--out FILE]

Trains ``--preset mnist-dcgan`` (constant learning rate, so training in chunks is
the same as training straight) in chunks of ``--eval-every`` steps, each chunk a
resume of the same run in this process, and after each chunk evaluates the newest
checkpoint with ``gan evaluate`` (:data:`EVAL_COMMAND`). It stops at the first
FD-LeNet <= ``--target`` or after ``--max-epochs``. Reported: the training wall
time to the target (the training loops only: no data loading, evaluation or
process start-up), steps, epochs, and the whole trajectory, as JSON.

FD-LeNet (the Frechet distance in the feature space of a LeNet trained on MNIST)
comes from the evaluation issue's ``gan evaluate``; until that command exists the
script says so and exits with 2. :data:`EVAL_COMMAND` is the command it runs, and
:func:`parse_fd` reads the value from its JSON output: adjust both to the final
options of ``gan evaluate`` if they differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

#: ``{run}`` is replaced by the run directory.
EVAL_COMMAND = [sys.executable, "-m", "gancli", "evaluate", "{run}", "--metric", "fd-lenet", "--json"]
SRC = Path(__file__).resolve().parents[1] / "src"


def parse_fd(output: str) -> float:
    """The FD-LeNet in ``gan evaluate --json``'s output: the first number under a key
    containing ``fd`` (searched depth-first)."""

    def find(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if "fd" in str(k).lower() and isinstance(v, (int, float)) and not isinstance(v, bool):
                    return float(v)
            for v in obj.values():
                found = find(v)
                if found is not None:
                    return found
        if isinstance(obj, list):
            for v in obj:
                found = find(v)
                if found is not None:
                    return found
        return None

    value = find(json.loads(output))
    if value is None:
        raise ValueError(f"no FD value in gan evaluate's output: {output[:200]}")
    return value


def evaluate(run_dir: Path, env: dict) -> float:
    cmd = [part.replace("{run}", str(run_dir)) for part in EVAL_COMMAND]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return parse_fd(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", type=float, required=True, help="FD-LeNet to reach")
    ap.add_argument("--eval-every", type=int, default=200, help="training steps between evaluations")
    ap.add_argument("--max-epochs", type=float, default=5.0, help="give up after this many epochs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--data-dir", default=os.environ.get("GANCLI_DATA_DIR")
                    or str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(SRC))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    check = subprocess.run([sys.executable, "-m", "gancli", "evaluate", "--help"], capture_output=True, env=env)
    if check.returncode:
        print("error: `gan evaluate` is not available in this gancli (the evaluation issue has not landed); "
              "nothing measured", file=sys.stderr)
        return 2

    from gancli.config import build_config
    from gancli.engine.launch import train
    from gancli.runs import RunStore

    base = build_config({"device": args.device, "precision": args.precision, "sample_every": 0,
                         "checkpoint_every": 0, "log_every": args.eval_every}, preset="mnist-dcgan")
    per_epoch = 60000 // base.train.batch_size
    max_steps = int(args.max_epochs * per_epoch)
    trajectory, seconds, run, reached = [], 0.0, None, None
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        done = 0
        while done < max_steps:
            steps = min(max_steps, done + args.eval_every)
            cfg = base.replace(train=dataclasses.replace(base.train, steps=steps, epochs=None))
            run, result = train(cfg, store, args.data_dir, resume=run)
            seconds += result.seconds
            done = result.step
            fd = evaluate(run.path, {**env, "GANCLI_HOME": home, "GANCLI_DATA_DIR": args.data_dir})
            trajectory.append({"step": done, "epoch": round(done / per_epoch, 3), "train_seconds": round(seconds, 1),
                               "fd_lenet": fd})
            print(f"step {done}: FD-LeNet {fd:.3f} after {seconds:.0f} s of training", file=sys.stderr, flush=True)
            if fd <= args.target:
                reached = trajectory[-1]
                break
    import torch

    out = {
        "benchmark": "wall time of the mnist-dcgan preset to a target FD-LeNet",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "device": args.device, "precision": args.precision,
        "target_fd_lenet": args.target, "reached": reached is not None,
        "train_seconds_to_target": reached["train_seconds"] if reached else None,
        "trajectory": trajectory,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
