"""``gan evaluate`` on paired (pix2pix) and unpaired (CycleGAN) runs (issue #24 item 4): scored on
test pairs matched by file name (the dataset folder's testA/ + testB/ or test/A + test/B, or
``--pairs DIR``), in both directions of an unpaired run, with label preservation when a
labels.json names the digits; missing pairs and misplaced options are one line, exit 2. CPU, tiny
nets, two training steps (the figures are not meant to be good)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import write_unpaired_mnist
from gancli.cli import app
from gancli.errors import UsageError
from gancli.metrics.translation_eval import ROWS
from gancli.metrics.translation_pairs import find_test_pairs
from gancli.runs import Run
from gancli.translate import quality
from gancli.translate.load import load_translator

runner = CliRunner()
N_TEST = 16
FIGURES = {"psnr", "ssim", "l1"}


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_error_line(r, message: str) -> None:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert "Traceback" not in r.output


def evaluate_json(*args) -> dict:
    r = gan("evaluate", *args, "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def read(folder: Path, names: list[str]) -> torch.Tensor:
    """The PNGs ``folder/name`` as ``(N, 1, H, W)`` float in [-1, 1]."""
    arrays = [np.asarray(Image.open(folder / n).convert("L")) for n in names]
    return torch.from_numpy(np.stack(arrays)[:, None]).float().div(127.5).sub(1.0)


def _paired_folder(root: Path) -> Path:
    """``root/A`` + ``root/B`` (12 training pairs) and ``root/test/A`` + ``root/test/B`` (6 test pairs):
    16x16 RGB, B = 255 - A."""
    rng = np.random.default_rng(0)
    for split, n in (("", 12), ("test", 6)):
        for d in ("A", "B"):
            (root / split / d).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / split / "A" / f"{i:02d}.png")
            Image.fromarray(255 - a).save(root / split / "B" / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny unpaired run on the unpaired MNIST benchmark (16 images per folder, 28 px) and a tiny
    paired run on a 16-px folder with a test split, two steps each."""
    root = tmp_path_factory.mktemp("pairs-eval")
    write_unpaired_mnist(root / "um", N_TEST)
    paired = _paired_folder(root / "pp")
    common = ["--batch-size", 4, "--ngf", 4, "--ndf", 4, "--steps", 2, "--seed", 5, "--device", "cpu",
              "--sample-every", 0, "--checkpoint-every", 2, "--keep", 0]
    out = {"um": root / "um", "pp": paired}
    for name, args in (("unpaired", ["--task", "unpaired", "--dataset", root / "um"]),
                       ("paired", ["--task", "paired", "--dataset", paired, "--image-size", 16])):
        home = root / name
        r = gan("--home", home, "train", *args, *common)
        assert r.exit_code == 0, r.output
        out[name] = home / "runs" / "run-1"
    return out


@pytest.mark.parametrize("direction, inputs, targets", [("a2b", "testA", "testB"), ("b2a", "testB", "testA")])
def test_unpaired_run_is_scored_on_its_test_pairs_in_each_direction(runs, direction, inputs, targets):
    before = len(Run(runs["unpaired"]).read_metrics())
    doc = evaluate_json(runs["unpaired"], "--direction", direction, "-n", 12)
    root = runs["um"]
    assert (doc["kind"], doc["task"], doc["direction"]) == ("translation", "unpaired", direction)
    p = doc["protocol"]
    assert (p["direction"], p["pairs"], p["num"], p["corruption_seed"]) == (direction, str(root), 12, None)
    assert p["images"] == {"pairs": str(root), "inputs": str(root / inputs), "targets": str(root / targets),
                           "held_out": True, "labels": str(root / targets / "labels.json")}
    assert tuple(doc["rows"]) == ("run", "identity", "real")
    names = sorted(json.loads((root / inputs / "labels.json").read_text()))[:12]  # the first 12 by name
    x, y = read(root / inputs, names), read(root / targets, names)
    rows = doc["rows"]
    assert rows["identity"]["psnr"] == pytest.approx(quality.psnr(x, y), abs=1e-4)
    assert rows["identity"]["l1"] == pytest.approx((x - y).abs().mean().item(), abs=1e-5)
    g = load_translator(runs["unpaired"], direction=direction)
    assert rows["run"]["psnr"] == pytest.approx(quality.psnr(g.repair(x).clamp(-1, 1), y), abs=1e-4)
    assert rows["run"] != rows["identity"]
    for row in ("run", "identity"):
        assert set(rows[row]) == FIGURES | {"label_preservation"}, row
        assert all(isinstance(v, float) and math.isfinite(v) for v in rows[row].values()), row
    assert set(rows["real"]) == {"label_preservation"}
    labels = torch.tensor([json.loads((root / targets / "labels.json").read_text())[n] for n in names])
    assert rows["real"]["label_preservation"] == pytest.approx(quality.label_preservation(y, labels, "cpu"))
    rec = Run(runs["unpaired"]).read_metrics()
    assert len(rec) == before + 1 and rec[-1]["rows"] == rows and rec[-1]["kind"] == "eval"


def test_labels_of_the_input_folder_serve_and_none_leave_label_preservation_out(runs, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(runs["um"] / "testA", root / "A")
    shutil.copytree(runs["um"] / "testB", root / "B")
    (root / "B" / "labels.json").unlink()
    doc = evaluate_json(runs["unpaired"], "--pairs", root)
    assert doc["protocol"]["images"]["labels"] == str(root / "A" / "labels.json")
    assert doc["protocol"]["images"]["held_out"] is None and doc["protocol"]["num"] == N_TEST
    assert "label_preservation" in doc["rows"]["run"]
    (root / "A" / "labels.json").unlink()
    doc = evaluate_json(runs["unpaired"], "--pairs", root)
    assert tuple(doc["rows"]) == ("run", "identity") and set(doc["rows"]["run"]) == FIGURES


def test_paired_run_is_scored_on_its_test_split_beside_a_baseline(runs):
    doc = evaluate_json(runs["paired"], "--baseline", runs["paired"])
    root = runs["pp"]
    p = doc["protocol"]
    assert (doc["task"], doc["direction"], p["num"]) == ("paired", None, 6)
    assert (p["images"]["inputs"], p["images"]["targets"]) == (str(root / "test" / "A"), str(root / "test" / "B"))
    assert tuple(doc["rows"]) == ("run", "identity", "baseline")  # no labels.json: no real row
    assert doc["rows"]["baseline"] == doc["rows"]["run"]  # the same run as its own baseline
    names = [f"{i:02d}.png" for i in range(6)]

    def rgb(folder):
        arrays = np.stack([np.asarray(Image.open(folder / n)) for n in names]).transpose(0, 3, 1, 2)
        return torch.from_numpy(arrays).float().div(127.5).sub(1.0)

    x, y = rgb(root / "test" / "A"), rgb(root / "test" / "B")
    assert doc["rows"]["identity"]["psnr"] == pytest.approx(quality.psnr(x, y), abs=1e-4)


def test_missing_test_pairs_are_one_line_saying_where_to_put_them(runs, tmp_path):
    shutil.copytree(runs["pp"], tmp_path / "pp")
    shutil.rmtree(tmp_path / "pp" / "test")
    r = gan("evaluate", runs["paired"], "--pairs", tmp_path / "pp" / "nothing-here", "--device", "cpu")
    one_error_line(r, "is not a folder")
    (tmp_path / "empty").mkdir()
    r = gan("evaluate", runs["paired"], "--pairs", tmp_path / "empty", "--device", "cpu")
    one_error_line(r, f"put the inputs in {tmp_path / 'empty' / 'A'}/")
    moved = tmp_path / "um"
    shutil.copytree(runs["um"], moved)
    shutil.rmtree(moved / "testB")
    r = gan("evaluate", runs["unpaired"], "--pairs", moved, "--device", "cpu")  # testA/ without testB/
    one_error_line(r, f"{moved / 'testB'} not found")
    (moved / "testB").mkdir()
    Image.new("L", (28, 28)).save(moved / "testB" / "other.png")
    r = gan("evaluate", runs["unpaired"], "--pairs", moved, "--device", "cpu")
    one_error_line(r, "unmatched images")


def test_a_run_whose_dataset_has_no_test_split_says_to_pass_pairs(runs, tmp_path):
    g = load_translator(runs["paired"])
    g.config = replace(g.config, data=replace(g.config.data, dataset=str(tmp_path)))  # no test/, testA/, testB/
    with pytest.raises(UsageError) as e:
        find_test_pairs(g)
    assert f"put them in {tmp_path / 'test' / 'A'}/" in str(e.value) and "--pairs DIR" in str(e.value)


def test_direction_pairs_and_real_go_where_they_apply(runs, tmp_path):
    r = gan("evaluate", runs["paired"], "--direction", "b2a", "--device", "cpu")
    one_error_line(r, "--direction applies to unpaired (CycleGAN) runs")
    r = gan("evaluate", runs["unpaired"], "--direction", "sideways", "--device", "cpu")
    one_error_line(r, "--direction sideways is not one of a2b, b2a")
    r = gan("evaluate", runs["unpaired"], "--real", "mnist", "--device", "cpu")
    one_error_line(r, "--real applies to repair tasks")


def test_rows_are_a_subset_of_the_corruption_runs(runs):
    doc = evaluate_json(runs["unpaired"], "-n", 4)
    assert set(doc["rows"]) <= set(ROWS)
    r = gan("evaluate", runs["unpaired"], "-n", 4, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "identity (the input)" in r.output and "4 test pairs of" in r.output and "a2b" in r.output


def test_side_by_side_test_pairs_of_an_ab_run(runs, tmp_path):
    """A --paired-layout ab run: the A|B images of ROOT/test, or of --pairs DIR (its test/ or itself)."""
    g = load_translator(runs["paired"])
    root = tmp_path / "facades"
    for folder in (root / "test", tmp_path / "flat"):
        folder.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 16), (i, 0, 0)).save(folder / f"{i}.png")
    g.config = replace(g.config, data=replace(g.config.data, dataset=str(root)),
                       task=replace(g.config.task, paired_layout="ab"))
    found = find_test_pairs(g)
    assert (found.inputs, found.held_out, [p[0] for p in found.pairs]) == (root / "test", True, ["0", "1", "2"])
    assert all(b is None for _, _, b in found.pairs)
    assert find_test_pairs(g, pairs=root).inputs == root / "test"
    found = find_test_pairs(g, pairs=tmp_path / "flat")
    assert (found.inputs, found.held_out, len(found.pairs)) == (tmp_path / "flat", None, 3)
