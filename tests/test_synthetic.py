"""``gan sample --dataset-out``: generated images as a labelled image-folder dataset (gancli.generate.synthetic)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from gancli.cli import app
from gancli.data.manifest import read_manifest
from gancli.fsutil import file_sha256
from gancli.generate.synthetic import class_counts, write_dataset

runner = CliRunner()
TINY = ["--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8", "--device", "cpu"]


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(result):
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_class_counts():
    assert class_counts(25, 10) == [3] * 5 + [2] * 5
    assert class_counts(7, 3, only_class=2) == [0, 0, 7]
    assert class_counts(10, 3, weights=[1, 1, 2]) == [3, 2, 5]  # 2.5, 2.5, 5: the tie goes to the first
    assert sum(class_counts(1001, 10, weights=[0.3, 0.1, 0, 0, 0, 0, 0, 0, 0, 0.6])) == 1001
    with pytest.raises(ValueError, match="needs 3 numbers"):
        class_counts(10, 3, weights=[1, 1])
    with pytest.raises(ValueError, match="positive sum"):
        class_counts(10, 2, weights=[0, 0])
    with pytest.raises(ValueError, match="valid choices: 0..2"):
        class_counts(10, 3, only_class=3)


def _images_by_folder(root):
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.iterdir()) if d.is_dir()}


def test_conditional_export_has_class_folders_manifest_and_trains(home, mnist_dir, tmp_path):
    assert gan("train", "--conditional", "--steps", "3", *TINY).exit_code == 0
    out = tmp_path / "synth"
    r = gan("sample", "latest", "--dataset-out", out, "-n", "53", "--seed", "5", "--json")
    assert r.exit_code == 0, r.output
    folders = _images_by_folder(out)
    assert list(folders) == [str(c) for c in range(10)]
    assert [len(v) for v in folders.values()] == [6, 6, 6] + [5] * 7 and sum(map(len, folders.values())) == 53
    assert folders["0"][0] == "0.png" and folders["0"][-1] == "5.png"
    m = read_manifest(out)
    ckpt = home / "runs" / "run-1" / "checkpoints" / "step-3.safetensors"
    assert m["source"]["sha256"] == file_sha256(ckpt) and m["source"]["step"] == 3 and m["source"]["run"] == "run-1"
    assert m["source"]["weights"] == "ema" and m["seed"] == 5 and m["num_images"] == 53
    assert m["per_class"] == {str(c): len(folders[str(c)]) for c in range(10)} and m["image_shape"] == [1, 28, 28]
    doc = json.loads(r.stdout)
    assert doc["dataset"] == str(out) and doc["num_images"] == 53 and doc["manifest"]["sha256"] == file_sha256(
        out / "manifest.json")
    # the same images as the generator makes for those latents and classes (8-bit rounding apart)
    from PIL import Image

    from gancli.checkpoint import load_generator
    from gancli.generate.sampling import generate
    from gancli.seeding import latents

    g = load_generator(ckpt)
    y = torch.repeat_interleave(torch.arange(10), torch.tensor([6, 6, 6] + [5] * 7))
    want = generate(g, latents(53, g.nz, 5), y)
    import numpy as np

    got = torch.from_numpy(np.asarray(Image.open(out / "1" / "0.png"), dtype=np.float32))
    assert (got / 127.5 - 1 - want[6, 0]).abs().max() <= 1 / 127.5 + 1e-6
    # gan train reads it back: labelled (conditional), 1x28x28 from the manifest
    r = gan("train", "--dataset", out, "--conditional", "--steps", "1", "--batch-size", "8", "--nz", "16", "--ngf", "8",
            "--ndf", "8", "--device", "cpu", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert (cfg["model"]["img_channels"], cfg["model"]["img_resolution"], cfg["model"]["num_classes"]) == (1, 28, 10)
    assert gan("train", "--dataset", out, "--conditional", "--steps", "2", "--batch-size", "8", "--nz", "16",
               "--ngf", "8", "--ndf", "8", "--device", "cpu").exit_code == 0


def test_class_options_and_unconditional_layout(home, mnist_dir, tmp_path):
    assert gan("train", "--conditional", "--steps", "2", *TINY).exit_code == 0
    assert gan("sample", "latest", "--dataset-out", tmp_path / "sevens", "-n", "4", "--class", "7").exit_code == 0
    assert _images_by_folder(tmp_path / "sevens") == {"7": ["0.png", "1.png", "2.png", "3.png"]}
    r = gan("sample", "latest", "--dataset-out", tmp_path / "w", "-n", "10", "--class-weights", "1,1,2,0,0,0,0,0,0,1")
    assert r.exit_code == 0, r.output
    assert {k: len(v) for k, v in _images_by_folder(tmp_path / "w").items()} == {"0": 2, "1": 2, "2": 4, "9": 2}
    r = gan("sample", "latest", "--dataset-out", tmp_path / "bad", "-n", "10", "--class-weights", "1,2")
    assert r.exit_code == 2 and "needs 10 numbers" in _one_error_line(r) and not (tmp_path / "bad").exists()
    r = gan("sample", "latest", "--dataset-out", tmp_path / "sevens", "-n", "4")
    assert r.exit_code == 2 and "already holds files" in _one_error_line(r)
    assert gan("train", "--steps", "2", "--clusters", "0", *TINY).exit_code == 0
    r = gan("sample", "latest", "--dataset-out", tmp_path / "plain", "-n", "5")
    assert r.exit_code == 0, r.output
    assert _images_by_folder(tmp_path / "plain") == {"images": [f"{i}.png" for i in range(5)]}
    assert read_manifest(tmp_path / "plain")["labelled"] is False
    r = gan("sample", "latest", "--dataset-out", tmp_path / "x", "--class-weights", "1,1")
    assert r.exit_code == 2 and "conditional run" in _one_error_line(r)


def test_killed_export_leaves_no_dataset(home, mnist_dir, tmp_path):
    """SIGKILL in the middle of writing: no DIR at all (only a temp folder, removed by the next export)."""
    assert gan("train", "--conditional", "--steps", "2", *TINY).exit_code == 0
    out = tmp_path / "big"
    env = {**os.environ, "GANCLI_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gancli", "sample", "latest", "--dataset-out", str(out), "-n",
                             "200000", "--batch-size", "64"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(tmp_path.glob(".big.tmp-*/*/*.png")):
        time.sleep(0.2)
    assert any(tmp_path.glob(".big.tmp-*/*/*.png")), "the export never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert gan("sample", "latest", "--dataset-out", out, "-n", "20").exit_code == 0
    assert sum(len(v) for v in _images_by_folder(out).values()) == 20
    assert not list(tmp_path.glob(".big.tmp-*"))  # the dead export's temp folder is gone


def test_write_dataset_api_refuses_mismatched_counts(tmp_path):
    from gancli.config import ModelConfig
    from gancli.models import build_generator

    g = build_generator(ModelConfig(arch="dcgan", nz=8, ngf=4, img_channels=1, img_resolution=28))
    with pytest.raises(ValueError, match="no classes"):
        write_dataset(g, tmp_path / "d", [1, 2], seed=0, source={})
    m = write_dataset(g, tmp_path / "d", None, seed=0, source={"note": "api"}, n=3)
    assert m["num_images"] == 3 and sorted(p.name for p in (tmp_path / "d" / "images").iterdir()) == ["0.png", "1.png", "2.png"]
