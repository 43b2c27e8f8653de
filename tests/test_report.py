"""`gan report` and `gan runs compare` on real tiny runs (trained through the CLI on real
MNIST): one self-contained HTML file, every image embedded and valid, every plot there, and
the plotted data equal to metrics.jsonl."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import mnist_root, require_mnist
from PIL import Image
from typer.testing import CliRunner

from gancli.cli import app
from gancli.report.data import Series, collect_series, config_differences, lower_is_better, smooth, smoothing_weight

TINY = ["--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8", "--device", "cpu",
        "--steps", "6", "--log-every", "2", "--sample-every", "2", "--checkpoint-every", "3"]


def _gan(home: Path, *args, **kwargs):
    return CliRunner().invoke(app, ["--home", str(home), *[str(a) for a in args]], catch_exceptions=False, **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A home with three runs: run-1 plain, run-2 with --eval-every and the monitor,
    run-3 conditional."""
    require_mnist()
    home = tmp_path_factory.mktemp("reporthome")
    data = ["--data-dir", str(mnist_root())]
    runs = [
        ["--arch", "mlp", "--monitor-every", "0"],
        ["--arch", "mlp", "--eval-every", "3", "--eval-samples", "2048", "--monitor-every", "3"],
        ["--arch", "mlp", "--conditional", "--monitor-every", "3"],
    ]
    for extra in runs:
        r = CliRunner().invoke(app, ["--home", str(home), *data, "train", *TINY, *extra], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    return home


# -- reading the page back ----------------------------------------------------------------
_EXTERNAL = re.compile(r"""(?:\b(?:src|href|action|poster)\s*=\s*["']?\s*|url\(\s*["']?\s*)(?:[a-z][a-z0-9+.-]*:(?!image/)|//)""",
                       re.IGNORECASE)


def _report(store: Path, tmp_path: Path, *runs: str) -> tuple[str, Path]:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "report.html"
    r = _gan(store, "report", *runs, "-o", out)
    assert r.exit_code == 0, r.output
    assert [p.name for p in out_dir.iterdir()] == ["report.html"]  # one file, no temp file left
    return out.read_text("utf-8"), out


def _report_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m, "no report-data block"
    return json.loads(m.group(1))


def _check_self_contained(page: str) -> None:
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page, re.IGNORECASE)
    assert refs
    for ref in refs:
        assert ref.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,", "#")), ref[:80]
    assert not _EXTERNAL.search(page.replace("data:image/", "")), _EXTERNAL.search(page)
    assert "http://" not in re.sub(r"data:[^\"']*", "", page) and "https://" not in re.sub(r"data:[^\"']*", "", page)
    assert "<link" not in page and "@import" not in page and "@font-face" not in page


def _images(page: str) -> list[tuple[str, str, bytes]]:
    """``(id, mime, decoded bytes)`` of every <img>, asserting each is a valid data: image."""
    out = []
    tags = re.findall(r"<img\b[^>]*>", page)
    for tag in tags:
        src = re.search(r'src="([^"]+)"', tag).group(1)
        m = re.fullmatch(r"data:(image/png|image/svg\+xml);base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        data = base64.b64decode(m.group(2), validate=True)
        if m.group(1) == "image/png":
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                assert im.size[0] > 0 and im.size[1] > 0
        else:
            root = ET.fromstring(data)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert b"<image" not in data and b"xlink:href=\"http" not in data  # no linked raster inside
        ident = re.search(r'id="([^"]+)"', tag)
        out.append((ident.group(1) if ident else "", m.group(1), data))
    return out


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _expected_series(run_dir: Path) -> dict[str, dict[int, float]]:
    """The curves metrics.jsonl holds, read here independently of gancli.report."""
    out: dict[str, dict[int, float]] = {}
    skip = {"kind", "step", "epoch", "time", "seconds", "results"}
    for rec in _metrics(run_dir):
        kind = rec.get("kind", "train")
        if kind not in ("train", "eval", "monitor"):
            continue
        values = {}
        for res in rec.get("results", []):
            values[res["metric"]] = res["value"]
            if "kl_to_uniform" in res:
                values.setdefault("kl_to_uniform", res["kl_to_uniform"])
        values.update({k: v for k, v in rec.items() if k not in skip and _number(v) and not (kind == "train" and k == "seconds")})
        for k, v in values.items():
            out.setdefault(f"{kind}.{k}", {})[rec["step"]] = v
    return out


def _check_series_match_metrics(doc: dict, run_dir: Path, label: str) -> None:
    expected = _expected_series(run_dir)
    run = next(r for r in doc["runs"] if r["label"] == label)
    assert set(run["series"]) == set(expected)
    for name, points in expected.items():
        got = run["series"][name]
        assert got["steps"] == sorted(points), name
        assert got["values"] == [points[s] for s in sorted(points)], name
    # what each figure drew, read back from matplotlib, is that data too
    drawn = set()
    for plot in doc["plots"]:
        for key, line in plot["lines"].items():
            who, name = key.split("|", 1)
            if who != label or name == "histogram":
                continue
            points = expected[name]
            assert line["steps"] == sorted(points), (plot["id"], name)
            assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(line["values"], [points[s] for s in sorted(points)]))
            assert len(line["values"]) == len(points)
            drawn.add(name)
    assert drawn == set(expected), set(expected) - drawn  # every series is plotted


# -- gan report -----------------------------------------------------------------------------
def test_report_plain_run(store, tmp_path):
    page, _ = _report(store, tmp_path, "run-1")
    _check_self_contained(page)
    images = _images(page)
    doc = _report_data(page)
    assert doc["format"] == "gancli-report" and [r["id"] for r in doc["runs"]] == ["run-1"]
    _check_series_match_metrics(doc, store / "runs" / "run-1", "run-1")
    plot_ids = {p["id"] for p in doc["plots"]}
    for pid in ("plot-train-loss_d", "plot-train-loss_g", "plot-train-d_real", "plot-train-lr_g", "plot-train-img_per_sec"):
        assert pid in plot_ids
    svg_ids = {i for i, mime, _ in images if mime == "image/svg+xml"}
    assert svg_ids == plot_ids  # every plot is an embedded figure, and nothing else is
    d_plot = next(p for p in doc["plots"] if p["id"] == "plot-train-d_real")
    assert d_plot["series"] == ["train.d_real", "train.d_fake"]
    assert not any(p["section"] == "evaluation" for p in doc["plots"])  # no eval records: no eval plots
    # sample grids: the strip holds every stored step, plus the newest one large
    pngs = [data for _, mime, data in images if mime == "image/png"]
    grids = sorted((store / "runs" / "run-1" / "samples").glob("step-*.png"))
    assert len(grids) == 3 and len(pngs) == len(grids) + 1
    assert set(pngs) == {g.read_bytes() for g in grids}
    for step in (2, 4, 6):
        assert f"step {step}</figcaption>" in page
    # config, command, environment, checkpoints
    cfg = json.loads((store / "runs" / "run-1" / "config.json").read_text())
    assert "<h4>optim</h4>" in page and "<th>lr_g</th>" in page
    assert shlex.join(cfg["meta"]["command"]) in html.unescape(page)  # the command line that made the run
    assert cfg["meta"]["torch_version"] in page and "<th>device</th><td>cpu</td>" in page
    for name in ("step-3.safetensors", "step-6.safetensors"):
        assert f"<code>{name}</code>" in page
    assert "steps/s" in page and "Wall time" in page


def test_report_with_evaluations_and_monitor(store, tmp_path):
    page, _ = _report(store, tmp_path, "2")
    _check_self_contained(page)
    _images(page)
    doc = _report_data(page)
    run_dir = store / "runs" / "run-2"
    _check_series_match_metrics(doc, run_dir, "run-2")
    plot_ids = {p["id"] for p in doc["plots"]}
    assert {"plot-eval-fd_lenet", "plot-monitor-diversity", "plot-monitor-duplicates", "plot-monitor-classes_covered",
            "plot-monitor-kl_to_uniform", "plot-class-histogram"} <= plot_ids
    evals = [r for r in _metrics(run_dir) if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    fd = doc["runs"][0]["series"]["eval.fd_lenet"]
    assert fd == {"steps": [3, 6], "values": [evals[0]["fd_lenet"], evals[1]["fd_lenet"]]}
    best = min(evals, key=lambda r: r["fd_lenet"])
    assert doc["runs"][0]["headline"]["best"]["fd_lenet"] == {"step": best["step"], "value": best["fd_lenet"]}
    assert f"best {best['fd_lenet']:.4g} @ {best['step']:,}" in page  # in the table (and drawn on the figure)
    hist = next(res["histogram"] for res in evals[-1]["results"] if "histogram" in res)
    hist_plot = next(p for p in doc["plots"] if p["id"] == "plot-class-histogram")
    assert hist_plot["section"] == "evaluation"
    drawn = hist_plot["lines"]["run-2|histogram"]
    assert drawn == {"classes": list(range(len(hist))), "counts": hist}
    # protocol records and the best checkpoint
    assert "Protocol records" in page and "gancli LeNet-MNIST" in page
    assert "<code>best.safetensors</code>" in page and '<span class="good">best</span>' in page
    assert "Mode-collapse monitor" in page


def test_report_conditional_run(store, tmp_path):
    page, _ = _report(store, tmp_path, "run-3")
    _check_self_contained(page)
    images = _images(page)
    doc = _report_data(page)
    _check_series_match_metrics(doc, store / "runs" / "run-3", "run-3")
    assert "conditional (10 classes)" in page and "one row per class" in page
    hist = next(p for p in doc["plots"] if p["id"] == "plot-class-histogram")
    assert hist["section"] == "monitor"  # no evaluation: the monitor's histogram, under the monitor
    assert 'href="#evaluation"' not in page
    newest = (store / "runs" / "run-3" / "samples" / "step-6.png").read_bytes()
    assert sum(data == newest for _, _, data in images) == 2  # in the strip and large
    with Image.open(io.BytesIO(newest)) as im:
        assert im.size[1] > im.size[0]  # 10 rows of 8


def test_report_several_runs_overlay(store, tmp_path):
    page, _ = _report(store, tmp_path, "1", "2", "3")
    _check_self_contained(page)
    images = _images(page)
    doc = _report_data(page)
    assert [r["label"] for r in doc["runs"]] == ["run-1", "run-2", "run-3"]
    for label in ("run-1", "run-2", "run-3"):
        _check_series_match_metrics(doc, store / "runs" / label, label)
    loss = next(p for p in doc["plots"] if p["id"] == "plot-train-loss_d")
    assert sorted(loss["lines"]) == ["run-1|train.loss_d", "run-2|train.loss_d", "run-3|train.loss_d"]
    # differences only: the conditional run and the eval run differ, the batch size does not
    assert "<code>model.num_classes</code>" in page and "<code>train.eval_every_steps</code>" in page
    assert "<code>train.batch_size</code>" not in page
    newest = {(store / "runs" / r / "samples" / "step-6.png").read_bytes() for r in ("run-1", "run-2", "run-3")}
    assert newest <= {data for _, _, data in images}
    assert "run-1 vs run-2 vs run-3" in page


def test_report_default_name_json_and_open(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    r = _gan(store, "report", "--json", "--open")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout is exactly one JSON object
    out = tmp_path / "run-3-report.html"  # latest = run-3
    assert doc["files"][0]["path"] == "run-3-report.html" and out.is_file()
    assert doc["files"][0]["bytes"] == out.stat().st_size
    import hashlib

    assert doc["files"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert doc["runs"] == [{"id": "run-3", "path": str(store / "runs" / "run-3")}]
    assert opened == [out.resolve().as_uri()]
    r = _gan(store, "report", "1", "2")
    assert r.exit_code == 0 and (tmp_path / "run-1-vs-run-2-report.html").is_file()


def _one_error_line(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args,fragment", [
    (["run-9"], "unknown run 'run-9'; valid choices: latest, run-1"),
    (["1", "-o", "{tmp}/missing/r.html"], "does not exist"),
    (["1", "-o", "{tmp}/r.pdf"], "unknown report type '.pdf'; valid choices: .html, .htm"),
    (["1", "-o", "{tmp}"], "is a directory"),
    (["1", "run-1"], "give each run once"),
])
def test_report_bad_input_is_one_line(store, tmp_path, args, fragment):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = _gan(store, "report", *args)
    assert r.exit_code == 2
    assert fragment in _one_error_line(r)
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*tmp*"))


def test_report_of_an_empty_store_is_one_line(tmp_path):
    r = _gan(tmp_path / "empty", "report")
    assert r.exit_code == 2 and "no runs in" in _one_error_line(r)


def test_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gancli.cli import app\n"
        "for argv in (['--help'], ['report', '--help'], ['runs', 'compare', '--help']):\n"
        "    r = CliRunner().invoke(app, argv)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- gan runs compare -------------------------------------------------------------------------
def test_runs_compare_table_and_json(store):
    r = _gan(store, "runs", "compare", "1", "2", "3", env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for text in ("model.num_classes", "train.eval_every_steps", "train.monitor_every_steps", "fd_lenet", "wall time"):
        assert text in r.output
    assert "train.batch_size" not in r.output  # only differences
    r = _gan(store, "runs", "compare", "run-1", "run-2", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    diff = {d["key"]: d["values"] for d in doc["config_differences"]}
    assert diff["train.eval_every_steps"] == [0, 3]
    assert "train.batch_size" not in diff
    one, two = doc["runs"]
    assert one["id"] == "run-1" and one["eval"] == {} and one["step"] == 6
    evals = [x for x in _metrics(store / "runs" / "run-2") if x.get("kind") == "eval"]
    assert two["eval_step"] == 6 and two["eval"]["fd_lenet"] == evals[-1]["fd_lenet"]
    assert two["steps_per_second"] > 0 and two["wall_seconds"] >= 0


@pytest.mark.parametrize("args,fragment", [
    (["1"], "needs at least two runs"),
    (["1", "run-7"], "unknown run 'run-7'"),
    (["2", "run-2"], "give each run once"),
])
def test_runs_compare_bad_input(store, args, fragment):
    r = _gan(store, "runs", "compare", *args)
    assert r.exit_code == 2 and fragment in _one_error_line(r)


# -- the data layer ---------------------------------------------------------------------------
def test_collect_series_last_record_of_a_step_wins_and_kinds_are_apart():
    records = [
        {"kind": "train", "step": 2, "loss_d": 1.0, "epoch": 0.1, "time": "t"},
        {"kind": "eval", "step": 2, "fd_lenet": 9.0, "results": [{"metric": "fd_lenet", "value": 9.01},
                                                                 {"metric": "is_lenet", "value": 2.0, "std": 0.1}]},
        {"kind": "monitor", "step": 2, "classes_covered": 3, "histogram": [1, 2]},
        {"kind": "eval", "step": 2, "fd_lenet": 8.0, "results": []},
        {"kind": "stop", "step": 3, "reason": "diverged"},
        {"step": 4, "loss_d": float("nan")},
    ]
    s = collect_series(records)
    assert list(s) == ["train.loss_d", "eval.fd_lenet", "eval.is_lenet", "monitor.classes_covered"]
    assert s["eval.fd_lenet"] == Series((2,), (8.0,))
    assert s["eval.is_lenet"] == Series((2,), (2.0,))
    assert s["train.loss_d"].steps == (2, 4) and math.isnan(s["train.loss_d"].values[1])
    assert s["monitor.classes_covered"].best(lower=False) == (2, 3)


def test_smoothing_and_directions():
    assert smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no pull towards 0
    out = smooth([0.0, 10.0, float("nan"), 10.0], 0.5)
    assert math.isnan(out[2]) and out[1] == pytest.approx(10 * 0.5 / 0.75)
    assert smoothing_weight(5) == 0 and 0 < smoothing_weight(50) < 0.95
    with pytest.raises(ValueError):
        smooth([1.0], 1.0)
    assert lower_is_better("fd_lenet") and lower_is_better("kid") and lower_is_better("kl_to_uniform")
    assert not lower_is_better("is_lenet") and not lower_is_better("precision") and not lower_is_better("classes_covered")
    assert not lower_is_better("cas") and not lower_is_better("cas_ratio") and not lower_is_better("cas_mix_gain")


def _hand_made_run(home: Path, n: int, evals: list[tuple[int, str, float]]) -> None:
    """run-n in ``home``: a config.json and train records at steps 2 and 4, plus one eval
    record per ``(step, metric, value)``; no training, no checkpoints, no grids."""
    from gancli.config import RunConfig

    run = home / "runs" / f"run-{n}"
    run.mkdir(parents=True)
    doc = {"format": "gancli-run", "format_version": 1, "meta": {"created": "2026-01-01T00:00:00+00:00"},
           "config": RunConfig().to_dict()}
    (run / "config.json").write_text(json.dumps(doc))
    records = [{"kind": "train", "step": s, "loss_d": 1.0 + s, "time": "2026-01-01T00:01:00+00:00"} for s in (2, 4)]
    records += [{"kind": "eval", "step": s, "results": [{"metric": m, "value": v}]} for s, m, v in evals]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _section(page: str, key: str) -> str:
    m = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    return m.group(1) if m else ""


def _figure_titles(section: str) -> list[str]:
    """The titles (alt texts) of the figures a reader sees in a section."""
    return re.findall(r'<figure class="plot"[^>]*><img [^>]*alt="([^"]*)"', section)


def _table_rows(section: str) -> list[list[str]]:
    """The body rows of a section's first table, as the text of their cells."""
    body = re.search(r"<tbody>(.*?)</tbody>", section, re.S)
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_an_eval_metric_at_one_step_is_a_table_row_not_a_plot(tmp_path):
    """A metric evaluated once (one `gan evaluate`) is read in the evaluation table, not as
    a one-point figure; evaluated at two steps it gets its figure, in a comparison too."""
    _hand_made_run(tmp_path, 1, [(4, "fd_lenet", 7.5), (4, "cas", 0.25)])
    _hand_made_run(tmp_path, 2, [(2, "fd_lenet", 9.0), (4, "fd_lenet", 7.5), (4, "cas", 0.25)])
    _hand_made_run(tmp_path, 3, [(4, "fd_lenet", 8.0)])
    pages = {}
    for runs in (["1"], ["2"], ["3", "2"]):
        out = tmp_path / f"r{'-'.join(runs)}.html"
        r = _gan(tmp_path, "report", *runs, "-o", out)
        assert r.exit_code == 0, r.output
        pages[tuple(runs)] = out.read_text("utf-8")

    one = _section(pages[("1",)], "evaluation")
    assert _figure_titles(one) == []
    assert [row[:2] for row in _table_rows(one)] == [["fd_lenet", "7.5"], ["cas", "0.25"]]
    assert _figure_titles(_section(pages[("1",)], "training")) == ["Discriminator loss"]

    two = _section(pages[("2",)], "evaluation")
    assert _figure_titles(two) == ["FD-LeNet (lower is better)"]  # cas, once, stays a row
    assert [row[:2] for row in _table_rows(two)] == [["fd_lenet", "7.5"], ["cas", "0.25"]]

    both = _section(pages[("3", "2")], "evaluation")  # run-3 has fd_lenet once, run-2 twice: one figure, both runs
    assert _figure_titles(both) == ["FD-LeNet (lower is better)"]
    assert [row[:3] for row in _table_rows(both)] == [["run-3", "fd_lenet", "8"], ["run-2", "fd_lenet", "7.5"],
                                                      ["run-2", "cas", "0.25"]]


def test_png_size_comes_from_pillow_and_refuses_other_files(tmp_path):
    from gancli.report.html import png_size

    buf = io.BytesIO()
    Image.new("L", (62, 32)).save(buf, format="PNG")
    assert png_size(buf.getvalue()) == (62, 32)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    for data in (b"not a png", buf.getvalue()[:20], jpeg.getvalue()):
        with pytest.raises(ValueError, match="not a PNG file"):
            png_size(data)


def test_the_page_template_is_package_data():
    """html.py renders templates/report.html.j2, found through the package (so a wheel must ship it)."""
    from importlib.resources import files

    from gancli.report.html import TEMPLATE

    assert files("gancli.report").joinpath("templates", TEMPLATE).is_file()


def test_config_differences_dotted_and_missing_keys():
    a = {"loss": {"name": "bce", "gp_lambda": 0.0}, "train": {"steps": 10}, "version": 1}
    b = {"loss": {"name": "hinge", "gp_lambda": 0.0}, "train": {"steps": 10, "augment": "diffaug"}, "version": 1}
    assert config_differences([a, b]) == {"loss.name": ["bce", "hinge"], "train.augment": [None, "diffaug"]}
    assert config_differences([a, a]) == {}


@pytest.mark.parametrize("values,expect", [
    ([0.00019, 0.0002, 0.00021], (0.0, 0.00021 * 1.15)),  # a learning rate: from zero
    ([149.75, 151.75], (0.0, 151.75 * 1.15)),  # a throughput
    ([-2.0, -2.05], (-2.05 * 1.15, 0.0)),
    ([0.0, 0.0001], None),  # varies by all of its magnitude: left to matplotlib
    ([1.0, 5.0], None),
])
def test_flat_series_get_a_sensible_y_span(values, expect):
    """Issue #27: a nearly flat series is drawn flat, not auto-ranged into a trend."""
    from matplotlib.figure import Figure

    from gancli.report.plots import _sensible_span

    ax = Figure().add_subplot()
    ax.plot(range(len(values)), values)
    before = ax.get_ylim()
    _sensible_span(ax)
    if expect is None:
        assert ax.get_ylim() == before
    else:
        assert ax.get_ylim() == pytest.approx(expect)
