"""Export and report of an image-to-image run (issue #24 item 5): ``gan export`` writes the
translator with a dynamic batch, height and width, verified against the eager generator at the
training size and an odd larger one; the safetensors bundle keeps the task and
``load_translator`` reads it back; ``gan report`` shows the input | output | target strips, the
L1 curve and the repair metrics; ``gan runs show`` shows the task. CPU, a tiny inpaint run on a
24-image folder (as tests/test_translate_train.py), 28 px: no multiple of the U-Net's 32."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import write_shapes
from gancli.cli import app
from gancli.errors import GancliError
from gancli.export.graph import TranslatorGraph, reflect_index
from gancli.translate.load import load_translator
from gancli.translate.tiling import pad_to_multiple

SIZE = 28  # training side: padded to 32 inside G
ODD = (SIZE + 13, SIZE + 29)  # the verification's second size: 41 x 57


def _gan(home: Path, *args):
    return CliRunner().invoke(app, ["--home", str(home), *[str(a) for a in args]], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_home(tmp_path_factory) -> Path:
    """A home with run-1: ``--task inpaint`` for 4 steps on 24 grayscale images, 2 sample grids."""
    root = write_shapes(tmp_path_factory.mktemp("shapes"))
    home = tmp_path_factory.mktemp("home")
    r = _gan(home, "train", "--task", "inpaint", "--dataset", root, "--image-size", SIZE, "--channels", 1,
             "--batch-size", 8, "--ngf", 4, "--ndf", 4, "--steps", 4, "--seed", 3, "--device", "cpu",
             "--log-every", 1, "--sample-every", 2, "--checkpoint-every", 2, "--keep", 0)
    assert r.exit_code == 0, r.output
    return home


@pytest.fixture(scope="module")
def translator(run_home):
    return load_translator(run_home / "runs" / "run-1")


def _inputs(t, n: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Inpainting inputs: the damaged image in [-1, 1] and a {0, 1} hole mask as the last channel."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, t.in_channels, *size, generator=g) * 2 - 1
    x[:, -1:] = (torch.rand(n, 1, *size, generator=g) < 0.3).float()
    return x


def _eager(t, x: torch.Tensor) -> torch.Tensor:
    """What the export must compute: the run's G in PyTorch, known pixels kept (Translator.repair)."""
    c = t.img_channels
    return t.repair(x, {"mask": x[:, -1:], "damaged": x[:, :c]}).clamp(-1, 1)


# -- the graph: reflection padding as a gather, at any size ---------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 28, 32, 33])
@pytest.mark.parametrize("multiple", [4, 32])
def test_reflect_index_is_pad_to_multiple(n, multiple):
    """The gather indices give exactly pad_to_multiple's reflection, mirrored again where the
    padding is wider than the side, the edge repeated for a 1-px side."""
    x = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1).expand(1, 1, n, 3)
    padded, (top, bottom, _, _) = pad_to_multiple(x, multiple)
    length = n + top + bottom
    assert length % multiple == 0
    got = reflect_index(n, length, top)
    assert got.tolist() == padded[0, 0, :, 0].long().tolist()


def test_translator_graph_is_the_eager_generator_at_odd_sizes(translator):
    graph = TranslatorGraph(translator.G, translator.img_channels, SIZE, keep_known=True).eval()
    for i, size in enumerate([(SIZE, SIZE), ODD, (7, 3), (1, 1), (33, 64)]):
        x = _inputs(translator, 2, size, seed=i)
        with torch.no_grad():
            out = graph(x)
        assert out.shape == (2, translator.img_channels, *size)
        assert torch.equal(out, _eager(translator, x)), size
        assert torch.equal(out, graph.reference(x)), size
    mask = x[:, -1:] > 0.5  # known pixels kept exactly
    assert torch.equal(out.masked_select(~mask), x[:, :1].masked_select(~mask))


# -- gan export: the graph formats at two sizes, then a third one with the format's own runtime ---
def _load_onnx(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["source"]
    shape = session.get_inputs()[0].shape
    assert all(isinstance(d, str) for d in (shape[0], shape[2], shape[3])), shape  # symbolic N, H, W
    return lambda x: torch.from_numpy(session.run(["images"], {"source": x.numpy()})[0])


def _load_torchscript(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def _load_exported(path: Path):
    return torch.export.load(str(path)).module()


GRAPH_FORMATS = {
    "onnx": (".onnx", _load_onnx, ("onnx", "onnxscript", "onnxruntime")),
    "torchscript": (".pt", _load_torchscript, ()),
    "exported-program": (".pt2", _load_exported, ()),
}


@pytest.mark.parametrize("fmt", list(GRAPH_FORMATS))
def test_export_is_dynamic_in_height_and_width(run_home, translator, tmp_path, fmt):
    suffix, load, needs = GRAPH_FORMATS[fmt]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"--format {fmt} needs {', '.join(missing)} (the export extra), not installed here")
    out = tmp_path / f"t{suffix}"
    r = _gan(run_home, "export", "run-1", "--format", fmt, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["sizes"] == [[SIZE, SIZE], list(ODD)] and doc["batch_sizes"] == [1, 3]
    assert doc["max_abs_diff"] <= 1e-4 and doc["tolerance"] == 1e-4
    m = doc["metadata"]
    assert (m["kind"], m["task"], m["task_options"], m["in_channels"], m["img_channels"], m["multiple"],
            m["dynamic_size"], m["keeps_known"], m["source_run"], m["step"]) == \
        ("translator", "inpaint", {"mask": "box", "mask_size": 0}, 2, 1, 32, True, True, "run-1", 4)

    run = load(out)  # its own runtime, at sizes the verification did not try
    for i, size in enumerate([(20, 37), (65, 34)]):
        x = _inputs(translator, 2, size, seed=10 + i)
        with torch.no_grad():
            got = run(x)
        assert got.shape == (2, 1, *size)
        diff = (got - _eager(translator, x)).abs().max().item()
        assert diff <= 1e-4, (fmt, size, diff)


def test_cli_text_names_the_sizes(run_home, tmp_path):
    r = _gan(run_home, "export", "run-1", "--format", "torchscript", "-o", tmp_path / "t.pt")
    assert r.exit_code == 0, r.output
    assert "--task inpaint source (N, 2, H, W) float32 in [-1, 1], any H and W" in r.output
    assert f"at batch sizes 1 and 3 ({SIZE} x {SIZE} and {ODD[0]} x {ODD[1]} px)" in r.output


def test_uint8_export_and_export_from_a_bundle(run_home, translator, tmp_path):
    """--uint8 rounds in the graph as gan sample's PNGs do; a translator bundle exports too."""
    from gancli.export.graph import to_uint8

    out = tmp_path / "u8.pt"
    r = _gan(run_home, "export", "run-1", "--format", "torchscript", "--uint8", "-o", out)
    assert r.exit_code == 0, r.output
    x = _inputs(translator, 1, ODD, seed=3)
    with torch.no_grad():
        got = _load_torchscript(out)(x)
    assert got.dtype == torch.uint8 and torch.equal(got, to_uint8(_eager(translator, x)))
    bundle = tmp_path / "b"
    assert _gan(run_home, "export", "run-1", "--format", "safetensors", "-o", bundle).exit_code == 0
    r = _gan(run_home, "export", bundle, "--format", "torchscript", "-o", tmp_path / "from-bundle.pt", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["metadata"]["task"] == "inpaint" and doc["metadata"]["source_run"] == "run-1"
    assert doc["max_abs_diff"] <= 1e-4


def test_a_wrong_padding_fails_the_verification(translator, tmp_path, monkeypatch):
    """The parity check can fail: a graph that repeats the edge pixels where G mirrors them
    differs at the training size already (28 px is padded to 32); nothing is written."""
    from gancli.export import core, graph

    def replicate(n, padded, before):
        return (torch.arange(padded) - before).clamp(0, n - 1)

    monkeypatch.setattr(graph, "reflect_index", replicate)
    out = tmp_path / "bad.pt"
    with pytest.raises(GancliError, match=r"max abs difference .* at batch size 1 at 28 x 28"):
        core.export_translator(translator, "torchscript", out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


# -- the bundle ---------------------------------------------------------------------------------
def test_bundle_round_trip(run_home, translator, tmp_path):
    out = tmp_path / "inpaint-g"
    r = _gan(run_home, "export", "run-1", "--format", "safetensors", "-o", out)
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["run_config"]["task"]["name"] == "inpaint" and doc["meta"]["kind"] == "translator"

    back = load_translator(out)
    assert (back.task, back.corruption, back.options, back.step, back.uses_ema) == \
        (translator.task, translator.corruption, translator.options, translator.step, translator.uses_ema)
    assert back.config == translator.config and back.path == out
    x = _inputs(translator, 2, ODD, seed=5)
    assert torch.equal(_eager(back, x), _eager(translator, x))
    clean = torch.rand(2, 1, SIZE, SIZE) * 2 - 1  # the training corruption, from the bundle alone
    a, b = back.corrupt(clean, seed=7), translator.corrupt(clean, seed=7)
    assert torch.equal(a.input, b.input)

    r = _gan(run_home, "sample", out, "-o", tmp_path / "grid.png")  # a translator draws nothing from z
    assert r.exit_code == 2 and "bundle of an image-to-image run (--task inpaint)" in r.output


# -- gan report and gan runs show ------------------------------------------------------------------
def _images(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="(data:image/(?:png|svg\+xml);base64,[^"]+)"[^>]*alt="([^"]*)"', page)


def test_report_shows_the_strips_and_the_l1_curve(run_home, tmp_path):
    out = tmp_path / "r.html"
    r = _gan(run_home, "report", "run-1", "-o", out)
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "<h3>Input | output | target</h3>" in page and "Fixed-z samples" not in page
    assert "--task inpaint" in page and "gan translate run-1" in page
    alts = [alt for _, alt in _images(page)]
    grids = sorted((run_home / "runs" / "run-1" / "samples").glob("step-*.png"))
    assert len(grids) == 2
    assert "newest grid: step 4 (rows: input, output, target)" in alts
    assert {"step 2", "step 4"} <= set(alts)  # the strip over training, one figure per grid
    embedded = {alt: uri for uri, alt in _images(page)}
    assert embedded["step 4"] == "data:image/png;base64," + base64.b64encode(grids[-1].read_bytes()).decode()
    assert 'id="plot-train-l1"' in page and "L1 of G&#39;s output to the target" in page
    assert "Class histogram" not in page and "conditional run" not in page
    assert "measure the repairs (PSNR, SSIM, L1, FD) with <code>gan evaluate RUN</code>" in page


def test_report_shows_the_repair_metrics(run_home, tmp_path):
    """An evaluation record as ``gan evaluate`` writes it for a translation run: the run's figures
    at the top level, every compared row under ``rows``."""
    home = tmp_path / "home"
    shutil.copytree(run_home, home)
    rows = {"run": {"psnr": 21.5, "ssim": 0.81, "l1": 0.05, "fd_lenet": None},
            "identity": {"psnr": 12.25, "ssim": 0.5, "l1": 0.2, "fd_lenet": None}}
    record = {"kind": "eval", "step": 4, "psnr": 21.5, "ssim": 0.81, "l1": 0.05, "task": "inpaint", "rows": rows,
              "results": [{"metric": k, "value": v, "protocol": {"protocol": "translation"}} for k, v in
                          (("psnr", 21.5), ("ssim", 0.81), ("l1", 0.05))], "time": "2026-12-03T00:00:00+00:00"}
    with open(home / "runs" / "run-1" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    out = tmp_path / "r.html"
    r = _gan(home, "report", "run-1", "-o", out)
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "<h3>Repair metrics</h3>" in page
    table = page[page.index('class="data repair"'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert cells[:6] == ["run", "4", "21.5", "0.81", "0.05", "—"]
    assert cells[6:12] == ["identity", "4", "12.25", "0.5", "0.2", "—"]


def test_report_protocol_table_reads_the_translation_records(run_home, tmp_path):
    """``gan evaluate``'s record of a translation run fills the protocol table (no "?" cells)."""
    home = tmp_path / "home"
    shutil.copytree(run_home, home)
    r = _gan(home, "evaluate", "run-1", "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tmp_path / "r.html"
    assert _gan(home, "report", "run-1", "-o", out).exit_code == 0
    page = out.read_text()
    table = page[page.index('class="data protocols"'):]
    table = table[:table.index("</table>")]
    rows = [re.findall(r"<td[^>]*>(?:<details><summary>)?([^<]*)", tr) for tr in table.split("<tr>")[2:]]
    by_metric = {cells[1]: cells for cells in rows}
    assert set(by_metric) == {"psnr", "ssim", "l1"}  # 24 images: no Fréchet distance, no labels
    for cells in by_metric.values():
        step, _, _, protocol, extractor, counts, reference, weights, seed = cells
        assert (step, protocol, extractor, counts, weights, seed) == ("4", "pixels", "", "24 / 24", "ema", "0")
        assert reference.endswith("shapes") or "shapes" in reference
    assert "?" not in "".join("".join(c) for c in rows)


def test_runs_show_prints_the_task(run_home):
    r = _gan(run_home, "runs", "show", "run-1")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    first = next(i for i, line in enumerate(lines) if "│ task" in line)
    end = next(i for i, line in enumerate(lines) if "│ data" in line)  # the task row comes first
    text = "".join(c for c in "".join(lines[first:end]) if c not in "│ ")  # the table may wrap it
    assert text == "taskinpaint:Gtranslatesimages(mask=box,mask_size=0);samples/rows:input,output,target"
    doc = json.loads(_gan(run_home, "runs", "show", "run-1", "--json").stdout)
    assert doc["task"] == {"name": "inpaint", "translates": True, "options": {"mask": "box", "mask_size": 0}}
    assert doc["config"]["task"]["name"] == "inpaint"


def test_runs_show_task_of_an_old_config():
    from gancli.cli.runs import _task_info

    assert _task_info(None) == {"name": "generate", "translates": False, "options": {}}
    assert _task_info({"name": "superres", "scale": 2, "upsample": "bilinear", "mask": "box"})["options"] == \
        {"scale": 2, "upsample": "bilinear"}
