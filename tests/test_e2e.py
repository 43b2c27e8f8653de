"""End-to-end: train on real MNIST through the CLI, sample, and check the samples
look like MNIST by simple pixel statistics (an untrained generator fails all three)."""

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli.checkpoint import load_generator
from gancli.cli import app
from gancli.config import DataConfig
from gancli.data import load_split
from gancli.generate.sampling import generate
from gancli.seeding import latents


def _stats(x: torch.Tensor) -> dict:
    """x: (N, 1, 28, 28) in [-1, 1]."""
    return {
        "mean": x.mean().item(),
        "dark": (x < 0).float().mean().item(),  # MNIST: ~0.88
        "mean_image": x.mean(0).flatten(),
    }


def _check_like_mnist(run_dir, mnist_dir, tol, dark_tol):
    real = load_split(DataConfig(split="test"), mnist_dir)
    r = _stats(real.images[:2000].float() / 127.5 - 1)
    g = load_generator(run_dir)
    f = _stats(generate(g, latents(1000, g.nz, seed=1)))
    print("fake vs real:", {k: round(f[k], 4) for k in ("mean", "dark")}, {k: round(r[k], 4) for k in ("mean", "dark")})
    assert abs(f["mean"] - r["mean"]) < tol, (f["mean"], r["mean"])
    assert abs(f["dark"] - r["dark"]) < dark_tol, (f["dark"], r["dark"])
    corr = torch.corrcoef(torch.stack([f["mean_image"], r["mean_image"]]))[0, 1].item()
    assert corr > 0.9, corr  # an untrained generator: ~0.1


def _train_and_sample(home, tmp_path, *args):
    runner = CliRunner()
    r = runner.invoke(app, ["train", *args, "--device", "cpu"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = tmp_path / "grid.png"
    r = runner.invoke(app, ["sample", "latest", "-n", "64", "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (484, 484)  # 8 x 30 + 2 px, enlarged twice
    return home / "runs" / "run-1"


@pytest.mark.slow  # 85 s: CI runs it with `pytest -m slow`
def test_dcgan_few_hundred_steps_on_real_mnist(home, mnist_dir, tmp_path):
    run_dir = _train_and_sample(home, tmp_path, "--arch", "dcgan", "--limit", "4096", "--steps", "900",
                                "--log-every", "100")
    _check_like_mnist(run_dir, mnist_dir, tol=0.15, dark_tol=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("arch,epochs,tol,dark_tol", [("dcgan", "1", 0.1, 0.04), ("mlp", "10", 0.1, 0.05)])
def test_full_mnist(home, mnist_dir, tmp_path, arch, epochs, tol, dark_tol):
    """An untrained generator: mean ~0.0, dark ~0.33, mean-image correlation ~0.1."""
    run_dir = _train_and_sample(home, tmp_path, "--arch", arch, "--epochs", epochs)
    _check_like_mnist(run_dir, mnist_dir, tol=tol, dark_tol=dark_tol)


def _train_and_evaluate(home, tag, *args) -> dict:
    """Train a new run with ``args`` on real MNIST and evaluate it (10k EMA samples, FD-LeNet)."""
    runner = CliRunner()
    r = runner.invoke(app, ["train", *args, "--device", "cpu", "--sample-every", "0"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", "latest", "-n", "10000", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output.strip().splitlines()[-1])
    print(tag, {k: doc[k] for k in ("fd_lenet", "is_lenet", "classes_covered", "kl_to_uniform")})
    return doc


@pytest.mark.slow
def test_default_recipe_beats_dcgan_classic_at_equal_steps(home, mnist_dir):
    """Issue #12: the self-conditioned default against the textbook DCGAN, 1000 steps each
    (measured on this machine, 10k samples at step 1000 of the 5-epoch benchmark runs:
    FD-LeNet 78 vs 137; see benchmarks/results/)."""
    new = _train_and_evaluate(home, "default", "--steps", "1000")
    old = _train_and_evaluate(home, "dcgan-classic", "--preset", "dcgan-classic", "--steps", "1000")
    assert new["fd_lenet"] < 0.8 * old["fd_lenet"], (new["fd_lenet"], old["fd_lenet"])
    assert new["kl_to_uniform"] < old["kl_to_uniform"], (new["kl_to_uniform"], old["kl_to_uniform"])
    assert new["classes_covered"] >= old["classes_covered"]


@pytest.mark.slow  # the README job itself: ~9 min on a 2-core CPU
def test_readme_job_seed_0_keeps_every_digit(home, mnist_dir):
    """Issue #25: the README job at seed 0, the seed whose clusters once mixed 4s and 9s (4s fell
    to 7.1% of the samples, KL to uniform 0.0095). Measured with the two-stage clusters (50,000
    samples, 2-core AMD EPYC): FD-LeNet 3.44, rarest digit 8.85%, KL 0.0019; seeds 1 and 2 alike."""
    doc = _train_and_evaluate(home, "readme-seed0", "--dataset", "mnist", "--arch", "dcgan", "--epochs", "5",
                              "--seed", "0")
    hist = next(r for r in doc["results"] if r["metric"] == "classes_covered")["histogram"]
    shares = [h / sum(hist) for h in hist]
    assert min(shares) >= 0.08, shares
    assert doc["kl_to_uniform"] <= 0.005, doc["kl_to_uniform"]
    assert doc["fd_lenet"] <= 6.0, doc["fd_lenet"]
