"""Reliability: kill -9 at random moments, damaged files, disk full, fuzzed CLI
arguments. Each case checks that nothing on disk is corrupted or half-written."""

import errno
import json
import os
import random
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gancli.checkpoint import load_checkpoint, load_generator
from gancli.cli import app
from gancli.errors import GancliError
from gancli.runs import RunStore

TINY = ["--arch", "mlp", "--limit", "512", "--batch-size", "32", "--device", "cpu", "--log-every", "5",
        "--checkpoint-every", "5", "--keep", "0", "--sample-every", "0"]
INTERVAL = 5


def _env(home):
    return {**os.environ, "GANCLI_HOME": str(home), "NO_COLOR": "1"}


def _spawn(home, *args):
    return subprocess.Popen([sys.executable, "-m", "gancli", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(home))


def _kill_after_progress(proc, rng, checkpoints_dir=None):
    """SIGKILL once training has logged a line (and, with ``checkpoints_dir``, once the run's
    first checkpoint exists: a run killed before it may not be resumed, issue #26), after a
    random extra delay; returns the last logged step (a lower bound of the progress at the kill)."""
    last = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("step "):
            last = int(line.split()[1].split("/")[0])
            break
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
    while checkpoints_dir is not None and not list(checkpoints_dir.glob("step-*.safetensors")):
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"no checkpoint in {checkpoints_dir}: {proc.stderr.read()}")
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.5))
    proc.kill()
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("step "):
            last = int(line.split()[1].split("/")[0])
    return last


def _check_run(run, after_kill=False):
    for _, path in run.checkpoints():
        load_checkpoint(path)  # every checkpoint on disk loads and passes its checksums
    rows = run.read_metrics()
    for kind in {r.get("kind", "train") for r in rows}:  # a monitor record may share its step with a train record
        steps = [r["step"] for r in rows if r.get("kind", "train") == kind]
        assert steps == sorted(set(steps)), (kind, steps)  # no duplicated or reordered records of a kind
    if not after_kill:  # a kill mid-write may leave a temp file; the next resume removes it
        assert not [p for p in run.path.rglob(".*.tmp-*")]


def _kill_resume_cycle(home, kills, seed):
    rng = random.Random(seed)
    total = 100000
    proc = _spawn(home, *TINY, "--steps", str(total))
    store = RunStore(home)
    first = home / "runs" / "run-1" / "checkpoints"
    for i in range(kills):
        progress = _kill_after_progress(proc, rng, first if i == 0 else None)
        run = store.resolve("run-1")
        _check_run(run, after_kill=True)
        assert (run.path / ".lock").exists()  # left by the killed process: stale
        resume_from = run.checkpoints()[-1][0] if run.checkpoints() else 0
        assert progress - resume_from <= INTERVAL, (progress, resume_from)
        proc = _spawn(home, "--resume", "run-1")
    progress = _kill_after_progress(proc, rng)
    run = store.resolve("run-1")
    final = run.checkpoints()[-1][0] + 3
    r = subprocess.run([sys.executable, "-m", "gancli", "train", "--resume", "run-1", "--steps", str(final)],
                       capture_output=True, text=True, env=_env(home), timeout=300)
    assert r.returncode == 0, r.stderr
    _check_run(run)
    assert load_checkpoint(run.checkpoint_path()).step == final
    assert not (run.path / ".lock").exists()


def test_kill_minus_9_and_resume(home, mnist_dir):
    _kill_resume_cycle(home, kills=1, seed=1)  # 20 kills in the slow suite


@pytest.mark.slow
def test_kill_minus_9_many_times(home, mnist_dir):
    _kill_resume_cycle(home, kills=20, seed=2)


# -- damaged files ---------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    from conftest import require_mnist

    from gancli.data import load_split
    from gancli.engine.launch import train
    from gancli.resolve import build_config

    root = require_mnist()
    home = tmp_path_factory.mktemp("trained")
    cfg = build_config(dict(arch="mlp", limit=256, batch_size=32, steps=4, device="cpu", checkpoint_every=2,
                            keep=0, sample_every=0, log_every=2))
    load_split(cfg.data, root)
    train(cfg, RunStore(home), root)
    return home


def _snapshot(path):
    return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["truncate", "flip-data", "flip-header", "pickle", "empty"])
def test_damaged_checkpoint_one_line_error(trained_home, tmp_path, damage):
    ckpt = RunStore(trained_home).resolve("run-1").checkpoint_path()
    bad = tmp_path / "step-4.safetensors"
    blob = bytearray(ckpt.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) - 100]
    elif damage == "flip-data":  # one byte inside a generator weight
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        key = next(k for k in header if k.startswith("generator.") and k.endswith(".weight"))
        begin, _ = header[key]["data_offsets"]
        blob[8 + n + begin + 5] ^= 0xFF
    elif damage == "flip-header":
        blob[12] ^= 0xFF
    elif damage == "pickle":
        torch.save({"generator.net.0.weight": torch.ones(1)}, bad)
        blob = bytearray(bad.read_bytes())
    else:
        blob = bytearray()
    bad.write_bytes(bytes(blob))
    with pytest.raises(GancliError) as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(app, ["sample", str(bad), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()


def test_future_versions_are_refused(trained_home, tmp_path):
    import shutil

    home = tmp_path / "h"
    shutil.copytree(trained_home, home)
    run = RunStore(home).resolve("run-1")
    doc = json.loads(run.config_path.read_text())
    doc["format_version"] = 99
    run.config_path.write_text(json.dumps(doc))
    before = _snapshot(home)
    env = {"GANCLI_HOME": str(home)}
    r = CliRunner().invoke(app, ["train", "--resume", "run-1", "--steps", "9"], env=env)
    assert r.exit_code == 1 and "written by a newer gancli" in r.output
    doc["format_version"] = 1
    doc["config"]["version"] = 99
    run.config_path.write_text(json.dumps(doc))
    before = _snapshot(home)
    r = CliRunner().invoke(app, ["train", "--resume", "run-1", "--steps", "9"], env=env)
    assert r.exit_code == 1 and "newer than this gancli understands" in r.output
    assert _snapshot(home) == before


def test_symlink_out_of_the_store_is_refused(tmp_path, home):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (home / "runs").mkdir(parents=True)
    (home / "runs" / "run-1").symlink_to(outside, target_is_directory=True)
    r = CliRunner().invoke(app, ["runs", "rm", "run-1", "--yes"])
    assert r.exit_code == 2 and "link out of the run store" in r.output
    assert (outside / "config.json").exists()


def test_disk_full_keeps_previous_checkpoint(home, mnist_dir, monkeypatch):
    """ENOSPC while writing the second checkpoint: clear error, first checkpoint intact."""
    import gancli.checkpoint as ck

    real = ck.save_file
    calls = {"n": 0}

    def full_disk(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:
            with open(filename, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ck, "save_file", full_disk)
    r = CliRunner().invoke(app, ["train", *TINY, "--steps", "20"])
    assert r.exit_code == 1, r.output
    line = [ln for ln in r.output.splitlines() if ln.startswith("error:")][0]
    assert "disk full" in line and "step-5.safetensors" in line
    run = RunStore(home).resolve("run-1")
    assert [s for s, _ in run.checkpoints()] == [5]
    assert load_checkpoint(run.checkpoint_path()).step == 5
    assert not [p for p in run.path.rglob(".*.tmp-*")]
    assert not (run.path / ".lock").exists()


def test_nan_policy_skip_continues(home, mnist_dir, monkeypatch):
    from gancli.losses.adversarial import NonSaturatingBCE

    real = NonSaturatingBCE.g_loss
    calls = {"n": 0}

    def sometimes_nan(self, fake):
        calls["n"] += 1
        out = real(self, fake)
        return out * float("nan") if calls["n"] in (2, 3) else out

    monkeypatch.setattr(NonSaturatingBCE, "g_loss", sometimes_nan)
    r = CliRunner().invoke(app, ["train", *TINY, "--steps", "5", "--nan-policy", "skip"])
    assert r.exit_code == 0, r.output
    rec = RunStore(home).resolve("run-1").read_metrics()[-1]
    assert rec["skipped"] == 2 and rec["step"] == 5
    calls["n"] = 0
    r = CliRunner().invoke(app, ["train", *TINY, "--steps", "5"])
    assert r.exit_code == 1 and "training diverged at step 5 (" in r.output and "loss_g=nan" in r.output


# -- fuzzing the command line ----------------------------------------------------
VOCAB = ["train", "sample", "runs", "list", "show", "rm", "latest", "run-1", "run-99", "1", "../x", "./nodir",
         "--dataset", "mnist", "cifar10", "--arch", "dcgan", "resnet", "unet", "--loss", "wgan-gp", "bce", "--steps",
         "-5", "0", "3", "abc", "--epochs", "1e9", "nan", "--batch-size", "--device", "cuda", "cpu", "tpu", "-n",
         "--nrow", "--class", "--class-grid", "--checkpoint", "--seed", "--json", "--yes", "--preset",
         "mnist-dcgan", "--augment", "diffaug:color", "--lr", "inf", "-1", "--help", "--version", "-o", "x.gif",
         "--conditional", "--image-size", "7", "--channels", "--resume", "--limit", "--ema-decay", "", "é", "--no-ema",
         "export", "--format", "torchscript", "safetensors", "onnx", "pt2", "--uint8", "--force", "x.pt"]


@settings(max_examples=int(os.environ.get("GANCLI_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=6))
def test_fuzzed_arguments_never_traceback(trained_home, tmp_path_factory, argv):
    if argv and argv[0] == "train" and "--help" not in argv and "--version" not in argv:
        argv = [*argv, "--dry-run"]  # never start a real training from the fuzzer
    if "rm" in argv:
        argv = [a for a in argv if a != "--yes"]  # never delete the shared fixture run
    if "onnx" in argv:
        argv = [a for a in argv if a != "onnx"]  # keep the fuzzer fast: no dynamo ONNX exports
    if "export" in argv and "--format" not in argv and "-o" not in argv:
        argv = [*argv, "--format", "safetensors"]  # (onnx would be the default)
    cwd = tmp_path_factory.mktemp("cwd")
    before = _snapshot(trained_home)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(app, argv, env={"GANCLI_HOME": str(trained_home), "NO_COLOR": "1"})
    finally:
        os.chdir(old)
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)
    assert r.exit_code in (0, 1, 2), (argv, r.exit_code, r.output)
    assert "Traceback" not in r.output, argv
    assert _snapshot(trained_home) == before, argv  # sampling/exports/dry runs never change the store


def test_generator_loads_after_all_that(trained_home):
    g = load_generator(RunStore(trained_home).resolve("run-1").path)
    assert g(torch.randn(2, g.nz)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_exploding_losses_stop_the_run(home, mnist_dir, policy):
    """--lr 1e6 makes losses of ~1e31 that stay finite: the run stops with exit 1 naming the
    last good checkpoint, and no checkpoint holds non-finite optimizer moments."""
    from gancli.checkpoint import load_checkpoint
    from gancli.runs import RunStore

    r = CliRunner().invoke(app, ["-q", "train", "--arch", "mlp", "-b", "16", "--limit", "2048", "--steps", "40", "--lr", "1e6",
                                 "--log-every", "5", "--checkpoint-every", "5", "--sample-every", "0",
                                 "--device", "cpu", "--nan-policy", policy])
    assert r.exit_code == 1, r.output
    assert "training diverged at step" in r.output and "last good checkpoint:" in r.output
    assert "Traceback" not in r.output
    (run,) = RunStore(home).list()
    for _, path in run.checkpoints():
        ckpt = load_checkpoint(path)
        assert all(torch.isfinite(v).all() for k, v in ckpt.tensors.items() if v.is_floating_point()), path


def test_diverged_optimizer_state_is_never_checkpointed(tmp_path, tiny_data):
    from gancli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from gancli.engine.launch import build_trainer
    from gancli.errors import GancliError
    from gancli.runs import RunStore

    cfg = RunConfig(data=DataConfig(limit=128), model=ModelConfig(arch="mlp", nz=8),
                    train=TrainConfig(batch_size=16, steps=2, device="cpu", sample_every_steps=0))
    t = build_trainer(cfg, RunStore(tmp_path).create(), torch.device("cpu"), tiny_data)
    t.train_step(0)
    t.step = 1
    next(iter(t.opt_g.state.values()))["exp_avg_sq"].fill_(float("inf"))
    with pytest.raises(GancliError, match="optimizer's exp_avg_sq is not finite"):
        t.save()
    assert not list(t.run.checkpoints_dir.glob("*.safetensors"))


@pytest.mark.parametrize("flag,value", [("--lr", "inf"), ("--gp-lambda", "nan"), ("--r1-gamma", "inf"),
                                        ("--ema-decay", "nan")])
def test_non_finite_float_options_are_refused(flag, value):
    r = CliRunner().invoke(app, ["train", flag, value, "--dry-run"])
    assert r.exit_code == 2 and "must be a finite number" in r.output


@pytest.mark.parametrize("argv,message", [
    (["train", "--seed", str(2**64), "--dry-run"], "--seed must be in [0, 2^63 - 1]"),
    (["train", "--seed", "-1", "--dry-run"], "--seed must be in [0, 2^63 - 1]"),
    (["train", "--epochs", "inf", "--dry-run"], "--epochs must be a finite number"),
    (["train", "--batch-size", "100000", "--dry-run"], "--batch-size 100000 is larger than the dataset"),
    # issue #26: bounds known before training, all refused by --dry-run already
    (["train", "--arch", "mlp", "--steps", "2", "--clusters", "0", "-b", "100000", "--dry-run"],
     "--batch-size 100000 is larger than the dataset (60,000 images); use --batch-size 60000 or less"),
    (["train", "--limit", "1000", "-b", "600", "--epochs", "0.5", "--dry-run"],
     "--epochs 0.5 is less than one step (1 batches per epoch, 1 per step); use --epochs 1 or more, or --steps N"),
    (["train", "--epochs", "1e30", "--dry-run"], "--epochs 1e+30 is 9.37e+32 steps, more than gancli trains"),
    (["train", "--epochs", "1e-30", "--dry-run"], "--epochs 1e-30 is less than one step (937 batches per epoch"),
    (["train", "--steps", "2000000000", "--dry-run"], "--steps must be"),
    (["train", "--eval-samples", "-1", "--dry-run"], "--eval-samples -1 is too few for a Fréchet distance"),
    (["train", "--monitor-every", "0", "--stop-on-collapse", "--dry-run"],
     "--stop-on-collapse needs the collapse monitor, which --monitor-every 0 turns off"),
    (["train", "--arch", "mlp", "--image-size", "1000000", "--dry-run"], "--image-size 1000000 is not valid"),
    (["sample", "latest", "--seed", str(2**64)], "--seed must be in [0, 2^63 - 1]"),
])
def test_out_of_range_values_are_one_line_errors(home, mnist_dir, argv, message):
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (home / "runs").exists() or not list((home / "runs").glob("run-*"))


@pytest.mark.parametrize("command", [["train", "--dry-run"], ["sample", "latest"], ["evaluate", "latest"]])
def test_one_seed_maximum_for_every_command(home, mnist_dir, command):
    """train, sample and evaluate take the same seeds: 2^63 - 1 is the last one, for each."""
    from gancli.config import MAX_SEED

    assert MAX_SEED == 2**63 - 1
    r = CliRunner().invoke(app, [*command, "--seed", str(MAX_SEED + 1)])
    assert r.exit_code == 2, r.output
    assert f"--seed must be in [0, 2^63 - 1], got {MAX_SEED + 1}" in r.output
    if command[0] == "train":
        assert CliRunner().invoke(app, ["train", "--dry-run", "--arch", "mlp", "--seed", str(MAX_SEED)]).exit_code == 0


def test_sample_refuses_more_images_than_fit_in_memory(home, mnist_dir):
    assert CliRunner().invoke(app, ["-q", "train", *TINY, "--steps", "1"]).exit_code == 0
    r = CliRunner().invoke(app, ["sample", "latest", "-n", "1000000000"])
    assert r.exit_code == 2 and "-n 1000000000 would hold" in r.output and "valid choices: -n 1.." in r.output


def test_a_new_run_that_fails_to_start_leaves_no_run_directory(home, mnist_dir, monkeypatch):
    from gancli.engine import launch

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(launch, "build_trainer", broken)
    with pytest.raises(RuntimeError):
        CliRunner().invoke(app, ["-q", "train", *TINY, "--steps", "1"], catch_exceptions=False)
    assert not list((home / "runs").glob("run-*"))


# -- damaged checkpoints: never lost, always explained ----------------------------------------
def _rewrite_header(path, edit):
    """Rewrite a safetensors file's JSON header through ``edit(header_dict)``; data unchanged."""
    import struct

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def _flip_tensor_byte(path, tensor):
    import struct

    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    start, _ = json.loads(raw[8:8 + n])[tensor]["data_offsets"]
    raw[8 + n + start] ^= 0xFF
    path.write_bytes(bytes(raw))


def _three_checkpoints(home):
    from gancli.runs import RunStore

    r = CliRunner().invoke(app, ["-q", "train", *TINY, "--steps", "15", "--monitor-every", "0"])
    assert r.exit_code == 0, r.output
    (run,) = RunStore(home).list()
    assert [s for s, _ in run.checkpoints()] == [5, 10, 15]
    return run


def test_damaged_training_state_is_moved_aside_never_deleted(home, mnist_dir):
    """A flipped byte in the RNG part of every checkpoint: gan sample still works (G is fine);
    a resume refuses, moving the three files to checkpoints/damaged/ instead of restarting
    from step 0 and pruning them."""
    run = _three_checkpoints(home)
    for _, path in run.checkpoints():
        _flip_tensor_byte(path, "rng.torch")
    assert CliRunner().invoke(app, ["sample", run.id, "-n", "4", "-o", str(home / "g.png")]).exit_code == 0
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "25"])
    assert r.exit_code == 1 and "no checkpoint of run-1 holds a usable training state" in r.output
    assert "Traceback" not in r.output
    moved = sorted(p.name for p in (run.checkpoints_dir / "damaged").iterdir())
    assert moved == ["step-10.safetensors", "step-15.safetensors", "step-5.safetensors"]
    assert CliRunner().invoke(app, ["sample", str(run.checkpoints_dir / "damaged" / "step-15.safetensors"),
                                    "-n", "4", "-o", str(home / "h.png")]).exit_code == 0
    # issue #26: the second resume finds no checkpoint at all; it must not start over from step 0
    records = run.metrics_path.read_bytes()
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "25"])
    assert r.exit_code == 1, r.output
    assert "no checkpoint of run-1 holds a usable training state (3 set aside in" in r.output
    assert "gan sample run-1 --checkpoint damaged/step-15" in r.output
    assert run.metrics_path.read_bytes() == records and not run.checkpoints()
    # gan sample RUN names the set-aside checkpoints and takes --checkpoint damaged/step-N
    s = CliRunner().invoke(app, ["sample", run.id, "-n", "4", "-o", str(home / "i.png")])
    assert s.exit_code == 1 and "step-5.safetensors, step-10.safetensors, step-15.safetensors set aside" in s.output
    assert "--checkpoint damaged/step-15" in s.output
    s = CliRunner().invoke(app, ["sample", run.id, "--checkpoint", "damaged/step-10", "-n", "4", "-o",
                                 str(home / "j.png")])
    assert s.exit_code == 0, s.output
    s = CliRunner().invoke(app, ["sample", run.id, "--checkpoint", "damaged/step-7", "-n", "4", "-o",
                                 str(home / "k.png")])
    assert s.exit_code == 2 and "valid choices: damaged/step-5, damaged/step-10, damaged/step-15" in s.output


def _first_tensor(path, prefix):
    import struct

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return sorted(k for k in json.loads(raw[8:8 + n]) if k.startswith(prefix))[0]


def test_resume_from_a_set_aside_checkpoint(home, mnist_dir):
    """Issue #26: with every checkpoint set aside (RNG data damaged), ``--resume RUN --from
    damaged/step-N`` continues from step N with re-seeded random streams; the records past N
    are kept in metrics.past-step-N.jsonl, config.json records the resume; a checkpoint whose
    generator is damaged is refused; --from needs --resume and a set-aside checkpoint, and is
    refused while a usable checkpoint exists."""
    run = _three_checkpoints(home)
    for _, path in run.checkpoints():
        _flip_tensor_byte(path, "rng.torch")
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "25"])
    assert r.exit_code == 1 and "gan train --resume run-1 --from damaged/step-15" in r.output
    past = [x for x in run.read_metrics() if x["step"] > 10]
    assert past

    r = CliRunner().invoke(app, ["-q", "train", "--from", "damaged/step-10"])
    assert r.exit_code == 2 and "--from damaged/step-10 continues a run: give it with --resume RUN" in r.output
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--from", "step-10"])
    assert r.exit_code == 2 and "valid choices: damaged/step-5, damaged/step-10, damaged/step-15" in r.output
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--from", "damaged/step-7"])
    assert r.exit_code == 2 and "no set-aside checkpoint 'damaged/step-7'" in r.output
    broken = run.checkpoints_dir / "damaged" / "step-5.safetensors"
    _flip_tensor_byte(broken, _first_tensor(broken, "generator."))
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--from", "damaged/step-5", "--steps", "25"])
    assert r.exit_code == 1 and "cannot continue training: its 'generator' part is damaged" in r.output
    assert "Traceback" not in r.output and not run.checkpoints()

    r = CliRunner().invoke(app, ["train", "--resume", run.id, "--from", "damaged/step-10", "--steps", "20"])
    assert r.exit_code == 0, r.output
    assert "continuing run-1 from damaged/step-10 (step 10); damaged parts left out: rng" in r.output
    assert [s for s, _ in run.checkpoints()] == [15, 20]
    assert [x["step"] for x in run.read_metrics() if x["kind"] == "train"] == [5, 10, 15, 20]
    kept = [json.loads(line) for line in (run.path / "metrics.past-step-10.jsonl").read_text().splitlines()]
    assert kept == past
    resume = run.read_config_doc()["meta"]["resumes"][-1]
    assert (resume["from_step"], resume["from_checkpoint"], resume["lost"]) == (10, "damaged/step-10", ["rng"])
    # the run goes on as any other from here; --from is refused while a usable checkpoint exists
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--from", "damaged/step-15", "--steps", "30"])
    assert r.exit_code == 2 and "still has a usable checkpoint (step-20.safetensors)" in r.output
    assert CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "25"]).exit_code == 0
    assert [s for s, _ in run.checkpoints()][-1] == 25


def test_resume_of_a_run_that_trained_but_kept_no_checkpoint_refuses(home, mnist_dir):
    """Issue #26: records up to step 15 and no checkpoint (deleted by hand, or a kill before the
    first one): a resume exits 1 and leaves metrics.jsonl as it was, instead of truncating it
    and training a fresh model from step 0 inside the run."""
    run = _three_checkpoints(home)
    for _, path in run.checkpoints():
        path.unlink()
    records = run.metrics_path.read_bytes()
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "25"])
    assert r.exit_code == 1 and "run-1 trained to step 15 but kept no checkpoint to resume from" in r.output
    assert run.metrics_path.read_bytes() == records and not run.checkpoints()


DAMAGED_HEADERS = {
    "format_version q": lambda h: h["__metadata__"].__setitem__("format_version", "q"),
    "sha256 not JSON": lambda h: h["__metadata__"].__setitem__("sha256", "{not json"),
    "step abc": lambda h: h["__metadata__"].__setitem__(
        "state", json.dumps({**json.loads(h["__metadata__"]["state"]), "step": "abc"})),
    "missing tensor": lambda h: h.pop(next(k for k in h if k.startswith("generator_ema."))),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_HEADERS))
def test_damaged_newest_checkpoint_falls_back_to_the_older_one(home, mnist_dir, damage):
    run = _three_checkpoints(home)
    newest = run.checkpoint_path("latest")
    _rewrite_header(newest, DAMAGED_HEADERS[damage])
    s = CliRunner().invoke(app, ["sample", str(newest), "-n", "4", "-o", str(home / "g.png")])
    assert s.exit_code == 1 and "damaged" in s.output and "Traceback" not in s.output
    s = CliRunner().invoke(app, ["sample", run.id, "-n", "4", "-o", str(home / "g.png")])
    assert s.exit_code == 0 and "using the newest checkpoint that loads: step-10.safetensors" in s.output
    r = CliRunner().invoke(app, ["-q", "train", "--resume", run.id, "--steps", "20"])
    assert r.exit_code == 0, r.output
    assert [s for s, _ in run.checkpoints()][-1] == 20
    assert (run.checkpoints_dir / "damaged" / "step-15.safetensors").exists()
    train_steps = [x["step"] for x in run.read_metrics() if x["kind"] == "train"]
    assert train_steps == [5, 10, 15, 20]


def test_truncated_or_wrong_rank_mnist_file_is_named(home, tmp_path, mnist_dir):
    import shutil

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(mnist_dir / "MNIST" / "raw" / name, raw / name)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes((mnist_dir / "MNIST" / "raw" / images.name).read_bytes()[:100_000])
    r = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "-q", "train", "--arch", "mlp", "--steps", "1"])
    assert r.exit_code == 1 and f"MNIST file {images} is damaged or truncated (100,000 bytes" in r.output
    images.write_bytes(b"\x00\x00\x08\x02" + b"\x00\x00\x00\x01" * 2)
    r = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "-q", "train", "--arch", "mlp", "--steps", "1"])
    assert r.exit_code == 1 and "is damaged (not an idx file of 3 dimension(s)" in r.output
    assert "Traceback" not in r.output and not (home / "runs").exists() or not list((home / "runs").glob("run-*"))


def test_messages_name_what_the_user_gave(home, mnist_dir, tmp_path, monkeypatch):
    assert CliRunner().invoke(app, ["-q", "train", *TINY, "--steps", "1"]).exit_code == 0
    r = CliRunner().invoke(app, ["sample", "latest", "-o", "/proc/x.png"])
    assert r.exit_code == 1 and "(/proc/x.png)" in r.output and ".tmp-" not in r.output
    r = CliRunner().invoke(app, ["runs", "show", "x" * 5000])
    assert r.exit_code == 2 and "(5,000 characters); valid choices: latest" in r.output

    out = tmp_path / "each"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = CliRunner().invoke(app, ["sample", "latest", "-n", "3", "-o", str(out), "--individual"])
    assert r.exit_code == 2 and "already holds files" in r.output and (out / "keep.txt").read_text() == "mine"

    import gancli.generate.sampling as sampling

    real = sampling.save_individual

    def interrupted(images, directory, *a, **k):
        real(images[:2], directory)
        raise KeyboardInterrupt

    monkeypatch.setattr(sampling, "save_individual", interrupted)
    r = CliRunner().invoke(app, ["sample", "latest", "-n", "30", "-o", str(tmp_path / "new"), "--individual"])
    assert r.exit_code == 130 and "interrupted: nothing was written" in r.output
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.tmp-*"))


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=int(os.environ.get("GANCLI_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(["meta", "config", "format_version", "config.model", "config.train.steps",
                              "config.data", "metrics", "lock"]),
       value=_JSON, raw=st.binary(max_size=40))
def test_fuzzed_run_files_never_break_runs_list_or_show(tmp_path_factory, where, value, raw):
    """Any JSON value (or any bytes) in config.json, metrics.jsonl or .lock: runs list/show
    exit 0/1/2 with no traceback, and nothing is written to the run."""
    from gancli.config import RunConfig

    home = tmp_path_factory.mktemp("fuzz")
    run = RunStore(home).create()
    doc = {"format": "gancli-run", "format_version": 1, "meta": {"created": "x"}, "config": RunConfig().to_dict()}
    if where == "metrics":
        run.metrics_path.write_bytes(json.dumps(value, default=str).encode() + b"\n" + raw)
    elif where == "lock":
        (run.path / ".lock").write_bytes(raw)
    elif "." in where:
        section, _, key = where.partition(".")
        target = doc[section]
        *path, last = key.split(".")
        for p in path:
            target = target[p]
        target[last] = value
    else:
        doc[where] = value
    run.config_path.write_text(json.dumps(doc, default=str))
    before = _snapshot(home)
    for argv in (["runs", "list"], ["runs", "list", "--json"], ["runs", "show", run.id], ["runs", "show", run.id,
                                                                                           "--json"]):
        r = CliRunner().invoke(app, argv, env={"GANCLI_HOME": str(home), "NO_COLOR": "1"})
        assert r.exception is None or isinstance(r.exception, SystemExit), (argv, where, value, r.exception)
        assert r.exit_code in (0, 1, 2) and "Traceback" not in r.output, (argv, where, value, r.output)
    assert _snapshot(home) == before


def test_sampling_latest_survives_a_concurrent_prune(home, mnist_dir):
    """A training still running writes step-15 and prunes step-10 (--keep) between gan sample
    choosing the newest checkpoint and reading it: the then newest one is read instead."""
    import shutil

    from gancli.cli.common import GeneratorSource

    run = _three_checkpoints(home)
    source = GeneratorSource(run.checkpoint_path("latest"), run.id, run.id, run)
    newest = run.checkpoint_path("latest")
    shutil.copy(newest, run.checkpoints_dir / "step-20.safetensors")
    newest.unlink()
    g = source.load()
    assert source.path.name == "step-20.safetensors" and g.nz == 100


@pytest.mark.parametrize("section,key,value,words", [("model", "nz", -1, "--nz must be > 0, got -1"),
                                                     ("loss", "name", "lsgann", "unknown loss 'lsgann'")])
def test_hand_edited_config_out_of_range_names_the_file(home, mnist_dir, section, key, value, words):
    """A value no flag may change on resume, edited by hand out of its range: exit 1 naming
    config.json and the value (it was exit 2 as if the user had given --nz -1)."""
    r = CliRunner().invoke(app, ["-q", "train", *TINY, "--clusters", "0", "--steps", "5"])
    assert r.exit_code == 0, r.output
    run = RunStore(home).resolve("run-1")
    doc = json.loads(run.config_path.read_text())
    doc["config"][section][key] = value
    run.config_path.write_text(json.dumps(doc))
    before = _snapshot(run.path)
    r = CliRunner().invoke(app, ["-q", "train", "--resume", "run-1", "--steps", "10"])
    assert r.exit_code == 1 and f"{run.config_path} has a bad value: {words}" in r.output, r.output
    assert "Traceback" not in r.output and _snapshot(run.path) == before


@pytest.mark.parametrize("section,key,value,flag", [("model", "nz", 9, "--nz"), ("optim", "lr_g", 0.5, "--lr-g")])
def test_hand_edited_config_is_refused_on_resume_naming_the_field(home, mnist_dir, section, key, value, flag):
    """Issue #26: config.json edited by hand after training (nz: the weights no longer fit; lr_g:
    a value --lr may not change on resume): the resume exits 1 naming the field and both values,
    before any weights load or any file changes."""
    r = CliRunner().invoke(app, ["-q", "train", *TINY, "--clusters", "0", "--steps", "5"])
    assert r.exit_code == 0, r.output
    run = RunStore(home).resolve("run-1")
    doc = json.loads(run.config_path.read_text())
    old = doc["config"][section][key]
    doc["config"][section][key] = value
    run.config_path.write_text(json.dumps(doc))
    before = _snapshot(run.path)
    r = CliRunner().invoke(app, ["-q", "train", "--resume", "run-1", "--steps", "10"])
    assert r.exit_code == 1, r.output
    assert (f"run-1's config.json has {section}.{key} = {value!r} but its checkpoint step-5.safetensors was trained "
            f"with {old!r} ({flag} may not change on resume)") in r.output
    assert "Traceback" not in r.output and _snapshot(run.path) == before
