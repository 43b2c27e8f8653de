"""The modes of ``gan sample`` called from Python (gancli.generate): each writes its files
and returns what it made; tiny generators in memory, CPU, no runs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancli.data.manifest import MANIFEST_FORMAT, read_manifest
from gancli.errors import UsageError
from gancli.generate import sampling
from gancli.generate.sampling import grid_labels, sample_class_grid, sample_grid, sample_individual
from gancli.generate.synthetic import class_counts, describe_source, write_dataset
from gancli.generate.timeline import write_timeline
from gancli.generate.walks import class_walk, latent_walk, supports_soft_labels, write_walk
from gancli.seeding import derive_seed, latents, random_labels


def _mlp(num_classes: int = 0):
    from gancli.models.mlp import MLPGenerator

    torch.manual_seed(0)
    return MLPGenerator(nz=8, num_classes=num_classes, hidden=(16,))


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")).astype(int)


# -- seeding --------------------------------------------------------------------------------
def test_seeding_draws_the_same_inputs_for_the_same_seed():
    assert derive_seed(3, "z") == derive_seed(3, "z") != derive_seed(3, "fixed-z")
    assert 0 <= derive_seed(2**63 - 2, "z") < 2**63
    torch.testing.assert_close(latents(4, 8, 5), latents(4, 8, 5), atol=0, rtol=0)
    assert not torch.equal(latents(4, 8, 5), latents(4, 8, 6))
    y = random_labels(100, 10, 5)
    assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < 10
    assert torch.equal(y, random_labels(100, 10, 5))


# -- grids and files --------------------------------------------------------------------------
def test_sample_grid_writes_the_images_of_generator_sample(tmp_path):
    g = _mlp()
    images, zoom = sample_grid(g, tmp_path / "g.png", 6, seed=4, nrow=3)
    assert images.shape == (6, 1, 28, 28) and zoom == 1
    torch.testing.assert_close(images, g.sample(6, seed=4), atol=0, rtol=0)
    assert Image.open(tmp_path / "g.png").size == (3 * 30 + 2, 2 * 30 + 2)  # 3 per row, 2-pixel padding


def test_sample_class_grid_has_one_row_per_class(tmp_path):
    g = _mlp(num_classes=3)
    images = sample_class_grid(g, tmp_path / "cg.png", per_class=2, seed=1).images
    assert images.shape == (6, 1, 28, 28)
    torch.testing.assert_close(images, g.sample(6, seed=1, labels=grid_labels(3, 2)), atol=0, rtol=0)
    row_1 = sampling.generate(g, latents(6, 8, 1)[2:4], torch.tensor([1, 1]))  # z 2 and 3 of the seed, class 1
    torch.testing.assert_close(images[2:4], row_1, atol=1e-6, rtol=0)  # another batch size: float rounding
    assert Image.open(tmp_path / "cg.png").size == (2 * 30 + 2, 3 * 30 + 2)
    with pytest.raises(ValueError, match="conditional"):
        sample_class_grid(_mlp(), tmp_path / "x.png")


def test_sample_individual_writes_all_files_or_refuses(tmp_path):
    g = _mlp()
    paths = sample_individual(g, tmp_path / "each", 3, seed=2)
    assert [p.name for p in paths] == ["sample-0.png", "sample-1.png", "sample-2.png"]
    expected = g.sample(3, seed=2)
    assert _png(paths[1]).shape == (28, 28)
    assert abs(_png(paths[1]) - ((expected[1, 0].numpy() + 1) * 127.5)).max() <= 1
    with pytest.raises(FileExistsError):
        sample_individual(g, tmp_path / "each", 3, seed=2)


def test_a_sample_too_big_for_memory_is_refused_before_generating(tmp_path, monkeypatch):
    g = _mlp()
    monkeypatch.setattr(sampling, "MAX_SAMPLE_BYTES", 10 * 28 * 28 * 4)
    monkeypatch.setattr(g, "sample", lambda *a, **k: pytest.fail("generated anyway"))
    with pytest.raises(UsageError, match=r"-n 11 would hold .*valid choices: -n 1\.\.10"):
        sample_grid(g, tmp_path / "g.png", 11)
    with pytest.raises(UsageError, match="-n 11"):
        sample_individual(g, tmp_path / "each", 11)
    assert not list(tmp_path.iterdir())


# -- walks ----------------------------------------------------------------------------------
def test_write_walk_grid_and_gif(tmp_path):
    g = _mlp()
    w = write_walk(g, tmp_path / "w.png", 3, 4, seed=7, method="lerp")
    assert w.path == tmp_path / "w.png" and w.method == "lerp" and w.frames is None
    assert w.images.shape == (3, 4, 1, 28, 28)
    torch.testing.assert_close(w.images, latent_walk(g, 3, 4, seed=7, method="lerp"), atol=0, rtol=0)
    assert Image.open(w.path).size == (4 * 30 + 2, 3 * 30 + 2)  # rows = paths, columns = steps
    gif = write_walk(g, tmp_path / "w.gif", 3, 4, seed=7, pingpong=True, duration_ms=40)
    assert gif.method == "slerp" and gif.frames == 2 * 4 - 2
    with Image.open(gif.path) as im:
        assert im.format == "GIF" and im.info["duration"] == 40


def test_write_walk_across_classes(tmp_path):
    g = _mlp(num_classes=3)
    assert supports_soft_labels(g)
    blended = write_walk(g, tmp_path / "b.png", 2, 3, classes=True, seed=1)
    assert blended.method == "blended classes" and blended.images.shape[1] == (3 - 1) * (3 - 1) + 1
    torch.testing.assert_close(blended.images, class_walk(g, 2, 3, seed=1), atol=0, rtol=0)
    plain = write_walk(g, tmp_path / "p.png", 2, classes=True, seed=1)
    assert plain.method == "one column per class" and plain.images.shape[1] == 3

    g.takes_soft_labels = False  # a generator whose labels do not go through embedding tables only
    assert not supports_soft_labels(g)
    hard = write_walk(g, tmp_path / "h.png", 2, 3, classes=True, seed=1)
    assert hard.method == "one column per class" and hard.images.shape[1] == 3
    torch.testing.assert_close(hard.images, plain.images, atol=0, rtol=0)


def test_models_say_whether_they_take_blended_classes():
    from gancli.models.dcgan import DCGANGenerator
    from gancli.models.layers import Generator
    from gancli.models.resnet import ResNetGenerator
    from gancli.models.selfcond import SelfConditionedGenerator

    assert not Generator.takes_soft_labels and not SelfConditionedGenerator.takes_soft_labels
    assert DCGANGenerator.takes_soft_labels and ResNetGenerator.takes_soft_labels
    assert not supports_soft_labels(_mlp())  # unconditional: no classes to blend
    assert not supports_soft_labels(SelfConditionedGenerator(_mlp(num_classes=2), 2))


def test_a_walk_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    import gancli.generate.walks as walks

    monkeypatch.setattr(walks, "MAX_SAMPLE_BYTES", 3 * 28 * 28 * 4)
    with pytest.raises(UsageError, match="-n 2 paths of 2 steps"):
        write_walk(_mlp(), tmp_path / "w.png", 2, 2)
    assert not (tmp_path / "w.png").exists()


# -- timeline -------------------------------------------------------------------------------
def test_write_timeline_returns_the_steps_in_order(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step in (1000, 500, 1500):
        Image.new("L", (30, 30), step // 10).save(samples / f"step-{step}.png")
    assert write_timeline(samples, tmp_path / "t.gif", 60) == [500, 1000, 1500]
    with Image.open(tmp_path / "t.gif") as im:
        assert im.n_frames == 3
    with pytest.raises(UsageError, match="must end in .gif"):
        write_timeline(samples, tmp_path / "t.png")
    with pytest.raises(UsageError, match="--duration-ms"):
        write_timeline(samples, tmp_path / "t2.gif", 1)


# -- datasets -------------------------------------------------------------------------------
def test_dataset_of_a_checkpoint_is_described_and_read_back(tmp_path):
    g = _mlp(num_classes=2)
    g.step, g.uses_ema = 12, True
    ckpt = tmp_path / "step-12.safetensors"
    ckpt.write_bytes(b"weights")
    source = describe_source(ckpt, "run-4", g)
    assert source == {"run": "run-4", "checkpoint": str(ckpt), "step": 12, "sha256": hashlib.sha256(b"weights").hexdigest(),
                      "weights": "ema", "kind": "checkpoint"}
    manifest = write_dataset(g, tmp_path / "ds", class_counts(5, 2), seed=3, source=source)
    assert manifest["per_class"] == {"0": 3, "1": 2} and manifest["source"] == source
    assert read_manifest(tmp_path / "ds") == json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT and manifest["image_shape"] == [1, 28, 28]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "a.json").write_text("{}")
    described = describe_source(bundle, None, g)
    assert described["kind"] == "bundle" and set(described["sha256"]) == {"a.json"}


@pytest.mark.parametrize("shape,nrow", [((64, 1, 28, 28), 8), ((10, 3, 8, 8), 4), ((1, 1, 5, 5), 8), ((3, 1, 6, 6), 1)])
def test_own_grid_writes_the_bytes_torchvision_writes(tmp_path, shape, nrow):
    """gancli.generate.grid replaces torchvision.utils (whose import costs ~3 s of gan sample,
    issue #27): the same PNG pixels, a single image (no padding) and gray-to-RGB included."""
    from PIL import Image
    from torchvision.utils import save_image as tv_save

    from gancli.generate.grid import save_image

    images = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2  # beyond [-1, 1]: clamped
    tv_save(images, str(tmp_path / "tv.png"), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    save_image(images, tmp_path / "own.png", nrow=nrow, padding=2, value_range=(-1, 1))
    a, b = Image.open(tmp_path / "tv.png"), Image.open(tmp_path / "own.png")
    assert a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()
    tv_save(images[0], str(tmp_path / "tv1.png"), normalize=True, value_range=(-1, 1))
    save_image(images[0], tmp_path / "own1.png", value_range=(-1, 1))
    assert Image.open(tmp_path / "tv1.png").tobytes() == Image.open(tmp_path / "own1.png").tobytes()


def test_sampling_imports_no_heavy_modules(tmp_path):
    """`gan sample` needs torch, PIL and the generator: not torchvision (its import pulls
    torch._dynamo), umap / numba / scikit-learn (clustering), matplotlib (report plots)."""
    import subprocess
    import sys

    code = ("import sys, torch\nfrom gancli.generate.sampling import save_grid\n"
            "from gancli.cli import sample\n"
            f"save_grid(torch.zeros(4, 1, 8, 8), {str(tmp_path / 'g.png')!r})\n"
            "print(sorted(m for m in ('torchvision', 'umap', 'numba', 'sklearn', 'matplotlib', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_class_options_are_checked_before_the_weights_load(home, mnist_dir, monkeypatch):
    """Issue #27: `--class-walk` / `--class` on an unconditional run are answered from the
    checkpoint's header; the weights are never read (they took ~10 s to say no)."""
    from typer.testing import CliRunner

    import gancli.checkpoint
    from gancli.cli import app

    r = CliRunner().invoke(app, ["-q", "train", "--arch", "mlp", "--limit", "256", "--clusters", "0", "--steps", "2",
                                 "--device", "cpu", "--monitor-every", "0", "--sample-every", "0"])
    assert r.exit_code == 0, r.output

    def no_weights(*a, **k):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(gancli.checkpoint, "load_generator", no_weights)
    for argv in (["--class-walk", "--interpolate", "4", "-o", "w.gif"], ["--class", "3", "-o", "g.png"],
                 ["--class-grid", "-o", "g.png"]):
        r = CliRunner().invoke(app, ["sample", "latest", *argv])
        assert r.exit_code == 2 and "is unconditional" in r.output, (argv, r.output)
