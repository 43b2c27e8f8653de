"""Ctrl-C / SIGTERM during `gan train`: checkpoint, resume hint, exit 130 / 143."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gancli.checkpoint import load_checkpoint
from gancli.runs import RunStore


def _start(home, *extra):
    env = {**os.environ, "GANCLI_HOME": str(home), "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "gancli", "train", "--arch", "mlp", "--limit", "512", "--batch-size", "32",
           "--steps", "100000", "--log-every", "5", "--device", "cpu", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_training(proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("step "):
            return
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"training did not start: {proc.stderr.read()}")


# SIGTERM in the default suite, SIGINT (the same handler, another exit code) in the slow one
@pytest.mark.parametrize("sig,code", [pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow), (signal.SIGTERM, 143)])
def test_signal_checkpoints_and_exits_with_resume_hint(home, mnist_dir, sig, code):
    proc = _start(home)
    _wait_for_training(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Resume with: gan train --resume run-1" in err
    assert "Traceback" not in err
    run = RunStore(home).resolve("run-1")
    ckpt = load_checkpoint(run.checkpoint_path())
    assert ckpt.step >= 5
    assert not (run.path / ".lock").exists()
    assert not [p for p in run.path.rglob(".*tmp-*")]
    # the run resumes from there
    env = {**os.environ, "GANCLI_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "gancli", "train", "--resume", "run-1", "--steps", str(ckpt.step + 3)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming run-1 at step {ckpt.step}" in r.stdout
    steps = [json.loads(line)["step"] for line in run.metrics_path.read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == ckpt.step + 3


@pytest.mark.slow  # ~12 s; the first interrupt's checkpoint and exit code stay in the default suite
def test_second_interrupt_aborts_without_partial_files(home, mnist_dir):
    proc = _start(home, "--checkpoint-every", "1")
    _wait_for_training(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    run = RunStore(home).resolve("run-1")
    assert not [p for p in run.path.rglob(".*tmp-*") if p.name != ".last-run-id"]
    assert not (run.path / ".lock").exists()
    for _, path in run.checkpoints():
        load_checkpoint(path)  # every checkpoint on disk is complete
