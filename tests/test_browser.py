"""`gan report` in a real browser: headless Chromium loads the page with no console error,
every image decodes (the page's own check sets ``data-images-ok`` on ``<body>``), and a
1280 px wide screenshot is not blank. Skipped when no Chromium or Chrome is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import mnist_root, require_mnist
from PIL import Image
from typer.testing import CliRunner

from gancli.cli import app

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser found on PATH (looked for {', '.join(BROWSERS)})")


def _chromium(browser: str, *args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    # --no-sandbox: containers and root (CI) cannot use Chromium's sandbox.
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           "--disable-extensions", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console_lines(stderr: str) -> list[str]:
    """Chromium's log lines of the page's console (errors, CSP refusals, uncaught exceptions)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln or "Refused to" in ln]


def _body_attrs(dom: str) -> dict[str, str]:
    m = re.search(r"<body([^>]*)>", dom)
    assert m, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a tiny run with samples, checkpoints and monitor records."""
    browser = _browser()  # skip before training when there is no browser
    assert browser
    require_mnist()
    home = tmp_path_factory.mktemp("browserhome")
    base = ["--home", str(home), "--data-dir", str(mnist_root())]
    r = CliRunner().invoke(app, [*base, "train", "--arch", "mlp", "--limit", "256", "--batch-size", "32", "--nz", "16",
                                 "--ngf", "8", "--ndf", "8", "--device", "cpu", "--steps", "6", "--log-every", "2",
                                 "--sample-every", "2", "--monitor-every", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = home / "report.html"
    r = CliRunner().invoke(app, [*base, "report", "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return out


def test_page_loads_without_errors_and_every_image_decodes(report):
    browser = _browser()
    page = report.read_text("utf-8")
    n_images = len(re.findall(r"<img\b", page))
    res = _chromium(browser, "--dump-dom", report.resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    attrs = _body_attrs(res.stdout)
    assert attrs.get("data-images-ok") == "true", attrs  # set by the page once every <img> has decoded
    assert attrs.get("data-images") == str(n_images) and n_images >= 8
    assert _console_lines(res.stderr) == []


def test_screenshot_at_1280px_is_not_blank(report, tmp_path):
    browser = _browser()
    shot = tmp_path / "report.png"
    res = _chromium(browser, f"--screenshot={shot}", "--window-size=1280,4000", report.resolve().as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1280, 4000)
        assert len(rgb.getcolors(maxcolors=1 << 20) or range(1 << 20)) > 50  # text, plots and grids, not a flat fill
        assert max(hi - lo for lo, hi in rgb.getextrema()) > 200
        r, g, b = rgb.getpixel((5, 5))
        assert r + g + b < 150  # the dark page header: the inline CSS applied
        # the sample grids (white digits on black) are drawn somewhere below the header
        dark = sum(rgb.crop((0, 300, 1280, 1300)).convert("L").histogram()[:20])
        assert dark > 10_000


def test_the_checks_catch_a_broken_page(tmp_path):
    """The harness itself: a page with a script error and an undecodable image fails both checks."""
    browser = _browser()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                   "<script>window.addEventListener('load', function () {"
                   "document.body.dataset.imagesOk = String(Array.prototype.every.call(document.images,"
                   " function (i) { return i.naturalWidth > 0; })); missingFunction(); });</script></body></html>")
    res = _chromium(browser, "--dump-dom", bad.resolve().as_uri())
    assert _body_attrs(res.stdout).get("data-images-ok") == "false"
    assert any("missingFunction" in ln for ln in _console_lines(res.stderr)), res.stderr[-2000:]
