"""CLI tests through Typer's CliRunner with an isolated home and NO_COLOR=1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gancli.cli import app

runner = CliRunner()


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(result):
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


TINY = ["--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8", "--device", "cpu"]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sample", "--help"], ["runs", "--help"],
                                  ["export", "--help"], ["translate", "--help"]])
def test_help_does_not_import_torch(argv):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gancli.cli import app\n"
        f"r = CliRunner().invoke(app, {argv!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
        "print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("NO-TORCH"), out[:200]
    assert "Usage" in out


def test_help_lists_registered_names():
    out = gan("train", "--help").output
    for name in ("mnist", "mlp", "dcgan", "bce", "minimax"):
        assert name in out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "gancli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("gancli ")


def test_dry_run_prints_config_and_creates_nothing(home):
    r = gan("train", "--arch", "mlp", "--steps", "7", "--dry-run")
    assert r.exit_code == 0
    cfg = json.loads(r.output)
    assert cfg["model"]["arch"] == "mlp" and cfg["train"]["steps"] == 7
    assert not (home / "runs").exists()


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["train", "--dataset", "imagenet9"], "unknown dataset 'imagenet9'; valid choices: mnist"),
        (["train", "--arch", "stylegan9"], "unknown arch 'stylegan9'; valid choices: mlp, dcgan"),
        (["train", "--loss", "l1"], "unknown loss 'l1'; valid choices: bce, minimax"),
        (["train", "--device", "tpu", "--steps", "1"], "unknown device 'tpu'; valid choices: auto, cpu, cuda, cuda:N, mps"),
        (["train", "--batch-size", "-3"], "--batch-size must be > 0, got -3"),
        (["sample", "run-99"], "unknown run 'run-99'; valid choices: latest"),
        (["sample", "latest"], "unknown run 'latest': no runs in"),
        (["runs", "show", "../etc"], "unknown run '../etc'"),
        (["train", "--resume", "run-4"], "unknown run 'run-4'"),
    ],
)
def test_bad_input_one_line_exit_2(args, fragment):
    r = gan(*args)
    assert r.exit_code == 2
    assert fragment in _one_error_line(r)


def test_unavailable_cuda_is_a_clear_error(home, mnist_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = gan("train", "--device", "cuda", "--steps", "1", *TINY[:-2])
    assert r.exit_code == 2
    assert "device 'cuda' is not available" in _one_error_line(r)
    assert not (home / "runs").exists()


def test_missing_data_offline_names_directory_and_files(tmp_path, home):
    empty = tmp_path / "nodata"
    r = gan("--data-dir", empty, "train", "--no-download", "--steps", "1")
    assert r.exit_code == 1
    line = _one_error_line(r)
    assert str(empty / "MNIST" / "raw") in line
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):
        assert f in line
    assert not (home / "runs").exists()  # nothing half-made


def test_train_sample_runs_end_to_end(home, mnist_dir, tmp_path):
    r = gan("train", "--arch", "dcgan", "--steps", "6", "--log-every", "3", "--sample-every", "3", *TINY)
    assert r.exit_code == 0, r.output
    assert "run-1" in r.output and "step 6/6" in r.output and "device cpu" in r.output
    run_dir = home / "runs" / "run-1"
    doc = json.loads((run_dir / "config.json").read_text())
    assert doc["config"]["train"]["steps"] == 6 and doc["meta"]["torch_version"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step-3.png", "step-6.png"]
    assert Image.open(run_dir / "samples" / "step-6.png").size == (8 * 30 + 2, 8 * 30 + 2)

    out = tmp_path / "grid.png"
    r = gan("sample", "latest", "-n", "64", "-o", out)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (484, 484) and "484 x 484 px (2x)" in r.output  # 242 px enlarged twice
    r = gan("sample", "latest", "-n", "64", "-o", tmp_path / "native.png", "--zoom", "1")
    assert r.exit_code == 0 and "242 x 242 px (1x)" in r.output
    native = np.asarray(Image.open(tmp_path / "native.png"))
    assert native.shape == (242, 242, 3)
    assert np.array_equal(np.asarray(Image.open(out)), native.repeat(2, axis=0).repeat(2, axis=1))  # exact blocks
    r = gan("sample", "run-1", "-n", "10", "--nrow", "5", "-o", tmp_path / "g.jpg", "--seed", "3")
    assert r.exit_code == 0 and Image.open(tmp_path / "g.jpg").size == (4 * (5 * 30 + 2), 4 * (2 * 30 + 2))
    r = gan("sample", "1", "-n", "3", "-o", tmp_path / "each", "--individual")
    assert r.exit_code == 0
    files = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert files == ["sample-0.png", "sample-1.png", "sample-2.png"]
    assert Image.open(tmp_path / "each" / "sample-0.png").size == (28, 28)
    # a checkpoint file alone is enough
    ckpt = run_dir / "checkpoints" / "step-6.safetensors"
    r = gan("sample", ckpt, "-n", "4", "-o", tmp_path / "from_file.png")
    assert r.exit_code == 0
    # same seed, same images
    gan("sample", "latest", "-n", "64", "-o", tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == out.read_bytes()

    r = gan("sample", "latest", "--checkpoint", "5", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "no checkpoint at step 5; valid choices: latest, 6" in _one_error_line(r)
    r = gan("sample", "latest", "-o", tmp_path / "missing" / "x.png")
    assert r.exit_code == 2 and "does not exist" in _one_error_line(r)
    r = gan("sample", "latest", "-o", tmp_path / "x.gif")
    assert r.exit_code == 2 and "unknown image type '.gif'" in _one_error_line(r)

    r = gan("runs", "list")
    assert r.exit_code == 0 and "run-1" in r.output and "dcgan" in r.output and "6/6" in r.output
    listed = json.loads(gan("runs", "list", "--json").output)
    assert listed[0]["id"] == "run-1" and listed[0]["last_checkpoint"] == "step-6.safetensors"
    shown = json.loads(gan("runs", "show", "latest", "--json").output)
    assert shown["checkpoints"] == ["step-6.safetensors"] and shown["last_metrics"]["step"] == 6
    assert gan("runs", "show", "run-1").exit_code == 0

    # resume: extend by 3 steps; changing the model is refused
    r = gan("train", "--resume", "run-1", "--lr-g", "0.1")
    assert r.exit_code == 2 and "--lr-g cannot change when resuming" in _one_error_line(r)
    r = gan("train", "--resume", "run-1", "--steps", "9")
    assert r.exit_code == 0, r.output
    assert "resuming run-1 at step 6" in r.output
    assert json.loads((run_dir / "config.json").read_text())["config"]["train"]["steps"] == 9
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [3, 6, 9]

    r = gan("runs", "rm", "run-1")
    assert r.exit_code == 2 and "without --yes" in _one_error_line(r)
    assert gan("runs", "rm", "run-1", "--yes").exit_code == 0
    assert not run_dir.exists()


def test_run_ids_increment_and_latest(home, mnist_dir):
    for _ in range(2):
        assert gan("train", "--arch", "mlp", "--steps", "2", *TINY).exit_code == 0
    listed = json.loads(gan("runs", "list", "--json").output)
    assert [r["id"] for r in listed] == ["run-1", "run-2"]
    assert json.loads(gan("runs", "show", "latest", "--json").output)["path"].endswith("run-2")


def test_home_flag_overrides_env(tmp_path, home, mnist_dir):
    other = tmp_path / "elsewhere"
    assert gan("--home", other, "train", "--arch", "mlp", "--steps", "2", *TINY).exit_code == 0
    assert (other / "runs" / "run-1" / "config.json").exists()
    assert not (home / "runs").exists()


def test_dry_run_checks_device():
    r = gan("train", "--dry-run", "--device", "tpu")
    assert r.exit_code == 2 and "unknown device 'tpu'" in _one_error_line(r)


def test_resume_of_a_finished_run_needs_more_steps(home, mnist_dir):
    assert gan("train", "--arch", "mlp", "--steps", "3", *TINY).exit_code == 0
    before = (home / "runs" / "run-1" / "config.json").read_text()
    for extra in ([], ["--steps", "2"], ["--steps", "3"]):
        r = gan("train", "--resume", "latest", *extra)
        assert r.exit_code == 2
        assert "run-1 is already at step 3 of" in _one_error_line(r)
    assert (home / "runs" / "run-1" / "config.json").read_text() == before


def test_resume_on_another_device_type_reseeds_z(tmp_path, tiny_data):
    """A checkpoint from another device type cannot restore the device RNG; the
    run continues with a re-seeded z stream and says so."""
    import torch

    from gancli.checkpoint import load_checkpoint
    from gancli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from gancli.engine.launch import build_trainer

    notes = []

    class Rec:
        def __getattr__(self, name):
            return lambda *a: notes.append(a) if name == "note" else None

    cfg = RunConfig(data=DataConfig(limit=128), model=ModelConfig(arch="mlp", nz=8),
                    train=TrainConfig(batch_size=16, steps=2, device="cpu", sample_every_steps=0))
    from gancli.runs import RunStore

    run = RunStore(tmp_path).create()
    build_trainer(cfg, run, torch.device("cpu"), tiny_data).fit()
    ckpt = load_checkpoint(run.checkpoint_path())
    ckpt.state["device_type"] = "cuda"
    t = build_trainer(cfg.replace(train=TrainConfig(batch_size=16, steps=4, device="cpu", sample_every_steps=0)),
                run, torch.device("cpu"), tiny_data, reporter=Rec())
    t.restore(ckpt)
    assert t.step == 2 and any("not bitwise reproducible" in n[0] for n in notes)
    assert t.fit().step == 4


def test_presets_listed_and_flags_win():
    r = gan("train", "--list-presets")
    assert r.exit_code == 0
    for name in ("mnist-dcgan", "mnist-mlp", "mnist-wgan-gp", "mnist-hinge-sn", "mnist-cdcgan", "cifar10-sngan"):
        assert name in r.output
    doc = json.loads(gan("train", "--list-presets", "--json").stdout)
    assert doc["mnist-wgan-gp"]["options"]["loss"] == "wgan-gp" and "--loss wgan-gp" in doc["mnist-wgan-gp"]["flags"]
    assert set(doc) >= {"mnist-dcgan", "dcgan-classic", "cifar10-sngan"} and doc["mnist-dcgan"]["cost"]
    cfg = json.loads(gan("train", "--preset", "mnist-wgan-gp", "--dry-run").output)
    assert cfg["loss"]["name"] == "wgan-gp" and cfg["loss"]["gp_lambda"] == 10.0
    # the preset's own options over the wgan-gp recipe defaults (5 critic steps, lr 1e-4, no normalisation)
    assert cfg["optim"]["d_steps"] == 1 and cfg["optim"]["lr_d"] == 2e-4 and cfg["model"]["d_norm"] == "layer"
    assert cfg["optim"]["beta1"] == 0.0 and cfg["optim"]["beta2"] == 0.9 and cfg["train"]["steps"] == 3000
    cfg = json.loads(gan("train", "--preset", "mnist-wgan-gp", "--d-steps", "2", "--epochs", "1", "--dry-run").output)
    assert cfg["optim"]["d_steps"] == 2 and cfg["train"]["epochs"] == 1.0 and cfg["train"]["steps"] == 469
    cfg = json.loads(gan("train", "--loss", "wgan-gp", "--dry-run").output)  # the recipe defaults alone
    assert cfg["optim"]["d_steps"] == 5 and cfg["optim"]["lr_d"] == 1e-4 and cfg["model"]["d_norm"] == "none"
    r = gan("train", "--preset", "nope", "--dry-run")
    assert r.exit_code == 2 and "unknown preset 'nope'; valid choices: mnist-dcgan" in _one_error_line(r)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'; valid choices: adam, sgd, rmsprop"),
        (["--lr-schedule", "step"], "unknown lr schedule 'step'; valid choices: constant, linear, cosine"),
        (["--augment", "mixup"], "unknown augmentation 'mixup'"),
        (["--ema-decay", "1.5"], "--ema-decay must be in [0, 1)"),
        (["--d-steps", "0"], "--d-steps must be > 0"),
        (["--channels", "2"], "--channels 2 is not valid"),
    ],
)
def test_family_flags_are_validated(args, fragment):
    r = gan("train", *args, "--dry-run")
    assert r.exit_code == 2
    assert fragment in _one_error_line(r)


def test_conditional_train_and_class_sampling(home, mnist_dir, tmp_path):
    r = gan("train", "--conditional", "--steps", "2", "--augment", "diffaug", *TINY)
    assert r.exit_code == 0, r.output
    assert "conditional (10 classes)" in r.output
    grid = Image.open(home / "runs" / "run-1" / "samples" / "step-2.png")
    assert grid.size == (8 * 30 + 2, 10 * 30 + 2)  # one row per class
    r = gan("sample", "latest", "--class-grid", "--nrow", "4", "-o", tmp_path / "cg.png")
    assert r.exit_code == 0 and "EMA G" in r.output
    assert Image.open(tmp_path / "cg.png").size == (2 * (4 * 30 + 2), 2 * (10 * 30 + 2))
    assert gan("sample", "latest", "--class", "3", "-n", "5", "-o", tmp_path / "c3.png", "--no-ema").exit_code == 0
    r = gan("sample", "latest", "--class", "10", "-o", tmp_path / "bad.png")
    assert r.exit_code == 2 and "--class 10 is out of range; valid choices: 0..9" in _one_error_line(r)
    r = gan("train", "--resume", "latest", "--unconditional", "--steps", "4")
    assert r.exit_code == 2, r.output
    assert "--conditional cannot change when resuming (the run has True)" in _one_error_line(r)


def test_class_flags_need_a_conditional_run(home, mnist_dir, tmp_path):
    assert gan("train", "--arch", "mlp", "--steps", "2", *TINY).exit_code == 0
    r = gan("sample", "latest", "--class", "1", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "need a conditional run" in _one_error_line(r)


def test_conditional_needs_labels(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(folder / f"{i}.png")
    r = gan("train", "--dataset", folder, "--conditional", "--dry-run", "--batch-size", "2")
    assert r.exit_code == 2 and "--conditional needs a labelled dataset" in _one_error_line(r)
    cfg = json.loads(gan("train", "--dataset", folder, "--dry-run", "--batch-size", "2").output)
    assert cfg["data"]["dataset"] == str(folder.resolve()) and cfg["model"]["img_resolution"] == 64


@pytest.mark.parametrize("argv,hint", [
    (["train", "--home", "/tmp/h", "--arch", "mlp"], "gan --home /tmp/h train --arch mlp"),
    (["sample", "latest", "--data-dir=/x"], "gan --data-dir=/x sample latest"),
    (["runs", "list", "-q"], "gan -q runs list"),
])
def test_global_option_after_the_command_says_where_it_goes(argv, hint):
    r = CliRunner().invoke(app, argv, env={"COLUMNS": "300"})
    assert r.exit_code == 2
    assert "is a global option: it goes before the command" in r.output and hint in r.output


def test_listed_preset_flags_reproduce_the_preset(tmp_path):
    """What --list-presets prints for a preset, typed as flags, resolves to the preset's config.
    A preset of ``--task paired`` / ``unpaired`` names no dataset (the user's folder of pairs or of two
    domains): both are given one (``A/`` and ``B/`` serve as either)."""
    import shlex

    from gancli.cli.train import preset_flags
    from gancli.presets import PRESETS

    pairs = tmp_path / "pairs"
    for side in ("A", "B"):
        (pairs / side).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(pairs / side / "x.png")
    listing = gan("train", "--list-presets").output
    for entry in PRESETS:
        flags = preset_flags(entry.obj.options)
        assert " ".join(listing.split()).count(flags) == 1, flags  # printed whole, wrapped at spaces only
        extra = ["--dataset", str(pairs)] if entry.obj.options.get("task") in ("paired", "unpaired") else []
        by_preset = json.loads(gan("train", "--preset", entry.name, *extra, "--dry-run").output)
        by_flags = json.loads(gan("train", *shlex.split(flags), *extra, "--dry-run").output)
        assert by_flags == by_preset, entry.name


def _json_only(r):
    """The command's stdout is exactly one JSON object (humans' lines went to stderr)."""
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    return json.loads(lines[0])


def test_json_on_every_command(home, mnist_dir, tmp_path):
    import hashlib

    doc = _json_only(gan("train", "--limit", "256", "--steps", "4", "--batch-size", "32", "--ngf", "8", "--ndf", "8",
                         "--log-every", "2", "--sample-every", "0", "--device", "cpu", "--json"))
    assert doc["run"] == "run-1" and doc["steps"] == 4 and doc["total_steps"] == 4 and not doc["interrupted"]
    assert doc["seconds"] > 0 and doc["img_per_sec"] > 0 and doc["last_losses"]["step"] == 4
    assert set(doc["last_losses"]) == {"step", "loss_d", "loss_g", "d_real", "d_fake"}
    assert doc["checkpoint"].endswith("step-4.safetensors")
    assert _json_only(gan("train", "--steps", "3", "--dry-run", "--json"))["train"]["steps"] == 3

    out = tmp_path / "g.png"
    doc = _json_only(gan("sample", "latest", "-n", "4", "-o", out, "--json"))
    (f,) = doc["files"]
    assert f["path"] == str(out) and f["bytes"] == out.stat().st_size
    assert f["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert doc["num_images"] == 4 and doc["step"] == 4 and doc["ema"] is True
    doc = _json_only(gan("sample", "latest", "-n", "3", "-o", tmp_path / "ind", "--individual", "--json"))
    assert len(doc["files"]) == 3 and all(Path(f["path"]).parent == tmp_path / "ind" for f in doc["files"])

    doc = _json_only(gan("export", "latest", "--format", "safetensors", "-o", tmp_path / "bundle", "--json"))
    assert doc["format"] == "safetensors" and doc["metadata"]["nz"] == 100 and doc["max_abs_diff"] is not None
    assert {Path(f["path"]).name for f in doc["files"]} >= {"config.json"}
    assert all(f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() for f in doc["files"])

    assert [r["id"] for r in json.loads(gan("runs", "list", "--json").stdout)] == ["run-1"]
    assert json.loads(gan("runs", "show", "run-1", "--json").stdout)["path"].endswith("run-1")
    assert _json_only(gan("runs", "unlock", "run-1", "--json"))["run"] == "run-1"
    doc = _json_only(gan("runs", "rm", "run-1", "--yes", "--json"))
    assert doc["removed"] == "run-1" and doc["files"] >= 3 and doc["bytes"] > 0
    assert not (home / "runs" / "run-1").exists()


def _complete(home, words: str) -> list[str]:
    """What bash completion offers for the last word of ``words`` (the real ``gan`` script)."""
    gan_script = Path(sys.executable).with_name("gan")
    env = {**os.environ, "GANCLI_HOME": str(home), "_GAN_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    r = subprocess.run([str(gan_script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_completion_of_values_run_ids_and_steps(home, tmp_path):
    assert _complete(home, "gan train --arch ") == ["mlp", "dcgan", "resnet", "unet", "cyclegan"]
    assert _complete(home, "gan train --loss h") == ["hinge"]
    assert _complete(home, "gan train --preset mnist-c") == ["mnist-cdcgan"]
    assert _complete(home, "gan train --dataset c") == ["cifar10", "celeba"]
    assert _complete(home, "gan train --d-norm ") == ["batch", "layer", "none"]
    assert _complete(home, "gan export latest --format t") == ["torchscript"]
    assert _complete(home, "gan sample ") == ["latest"]  # no runs yet
    for i in (1, 2):  # two runs with checkpoints at steps 10 and 20 (files only: completion reads names)
        ckpts = home / "runs" / f"run-{i}" / "checkpoints"
        ckpts.mkdir(parents=True)
        (home / "runs" / f"run-{i}" / "config.json").write_text("{}")
        for step in (10, 20):
            (ckpts / f"step-{step}.safetensors").write_bytes(b"x")
    assert _complete(home, "gan sample ") == ["latest", "run-2", "run-1"]
    assert _complete(home, "gan runs rm run-") == ["run-2", "run-1"]
    assert _complete(home, "gan train --resume r") == ["run-2", "run-1"]
    assert _complete(home, "gan evaluate run-1 --checkpoint ") == ["latest", "10", "20"]
    assert _complete(home, "gan sample run-1 -c 2") == ["20"]
    assert _complete(tmp_path / "elsewhere", "gan --home " + str(home) + " sample r") == ["run-2", "run-1"]
