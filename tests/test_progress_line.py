"""The live training line (issue #27): at any width step / total, elapsed time and ETA stay;
the monitor goes first, then the losses, then the rate; the bar takes what is left."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from gancli import console
from gancli.console import BAR_MIN_WIDTH, RichReporter, fit_fields

TEXTS = {"label": "train", "steps": "1200/4685", "rate": "520 img/s",
         "losses": "loss_D 1.234 loss_G 0.987 D(x) 0.51 D(G(z)) 0.43",
         "monitor": "diversity 0.31 dup 0.0% classes 10/10 KL 0.01", "elapsed": "0:02:03", "eta": "ETA 0:06:40"}


def test_fields_are_dropped_by_priority():
    assert fit_fields(200, TEXTS)[0] == ["label", "bar", "steps", "rate", "losses", "monitor", "elapsed", "eta"]
    assert fit_fields(120, TEXTS)[0] == ["label", "bar", "steps", "rate", "losses", "elapsed", "eta"]  # monitor first
    assert fit_fields(100, TEXTS)[0] == ["label", "steps", "rate", "losses", "elapsed", "eta"]  # no room for the bar
    assert fit_fields(79, TEXTS)[0] == ["label", "bar", "steps", "rate", "elapsed", "eta"]  # then the losses
    assert fit_fields(45, TEXTS)[0] == ["label", "steps", "rate", "elapsed", "eta"]
    assert fit_fields(40, TEXTS)[0] == ["label", "steps", "elapsed", "eta"]  # the rate last
    assert fit_fields(20, TEXTS)[0] == ["label", "steps", "elapsed", "eta"]  # these always stay
    kept, bar = fit_fields(79, TEXTS)
    assert bar >= BAR_MIN_WIDTH and sum(len(TEXTS[n]) for n in kept if n != "bar") + bar + len(kept) - 1 == 79
    assert fit_fields(200, {**TEXTS, "monitor": ""})[0] == ["label", "bar", "steps", "rate", "losses", "elapsed", "eta"]


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_rendered_line_keeps_step_elapsed_and_eta(monkeypatch, width):
    buf = io.StringIO()
    monkeypatch.setenv("COLUMNS", str(width))  # Rich reads COLUMNS over Console(width=...); height: TERM=dumb
    monkeypatch.setattr(console, "out", Console(file=buf, width=width, height=25, force_terminal=True, color_system=None))
    rep = RichReporter()
    rep.start(4685, 0)
    rep.advance(1200)
    rep.log({"step": 1200, "loss_d": 1.234, "loss_g": 0.987, "d_real": 0.51, "d_fake": 0.43, "img_per_sec": 520.0})
    rep.monitor("diversity 0.31 dup 0.0% classes 10/10 KL 0.01")
    rep.stop()
    frames = re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue()))
    line = [x for x in frames if "1200/4685" in x][-1]  # the last frame drawn
    assert len(line) <= width, line
    assert re.search(r"\b0:00:0\d\b", line) and re.search(r"ETA (\d:\d\d:\d\d|-:--:--)", line), line
    assert ("img/s" in line) == (width >= 60)
    assert ("loss_D" in line) == (width >= 100), line
    assert ("classes 10/10" in line) == (width >= 160), line


def test_a_long_phase_says_it_is_still_working(monkeypatch):
    """Issue #27: clustering (~70 s on 60k images) printed one static line; off a terminal a
    plain line comes every PHASE_TICK_S seconds (here 0.05 s), none with --quiet."""
    import time

    monkeypatch.setattr(console, "err", Console(file=io.StringIO(), force_terminal=False))
    lines: list[str] = []
    with console.phase("clustering", lines.append, every=0.05):
        time.sleep(0.3)
    assert len(lines) >= 2 and lines[0].startswith("clustering: still working ("), lines
    monkeypatch.setattr(console.settings, "quiet", True)
    quiet: list[str] = []
    with console.phase("clustering", quiet.append, every=0.05):
        time.sleep(0.2)
    assert quiet == []


def test_plain_progress_lines_say_how_far_each_phase_is():
    """Issue #27 item 3: off a terminal, a phase with a bar (reference statistics, sampling into
    a folder, CAS training...) becomes ``<phase>: done/total (pct), elapsed, ETA`` lines; a
    finished phase says nothing more."""
    p = console.PlainProgress(lambda _t: None, every=10.0)
    a = p.add_task("reference statistics (mnist train)", total=60000)
    b = p.add_task("generating and scoring images", total=50000)
    p.update(a, completed=15000)
    t0 = p._tasks[a][3]
    lines = p.lines(now=t0 + 20.0)
    assert lines[0] == "reference statistics (mnist train): 15,000/60,000 (25%), 20s, ETA 1m00s", lines
    assert lines[1].startswith("generating and scoring images: 0/50,000 (0%), ") and "ETA" not in lines[1], lines
    p.update(a, completed=60000)
    p.update(b, advance=100)
    assert [x.split(":")[0] for x in p.lines()] == ["generating and scoring images"]


def test_progress_bar_off_a_terminal_prints_plain_lines(monkeypatch):
    import time

    monkeypatch.setattr(console, "err", Console(file=io.StringIO(), force_terminal=False))
    buf = io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=buf, force_terminal=False, width=200))
    with console.progress_bar(every=0.05) as bar:
        task = bar.add_task("writing synth/", total=1000)
        for done in range(0, 1001, 250):
            bar.update(task, completed=done)
            time.sleep(0.06)
    lines = buf.getvalue().splitlines()
    assert lines and all(x.startswith("writing synth/: ") and "/1,000 (" in x for x in lines), lines
    monkeypatch.setattr(console.settings, "quiet", True)
    buf.truncate(0)
    with console.progress_bar(every=0.05) as bar:
        bar.update(bar.add_task("writing synth/", total=10), completed=1)
        time.sleep(0.2)
    assert buf.getvalue() == ""


def test_training_data_loading_is_a_phase(tmp_path, mnist_dir):
    """Loading the training images runs inside the reporter's phase (a spinner, or a plain
    "still working" line every 10 s), so a slow folder or disk is not silent."""
    import contextlib

    from gancli.engine.launch import train
    from gancli.engine.protocols import NullReporter
    from gancli.resolve import build_config
    from gancli.runs import RunStore

    class Phases(NullReporter):
        def __init__(self):
            self.phases = []

        @contextlib.contextmanager
        def phase(self, label):
            self.phases.append(label)
            yield

    rep = Phases()
    cfg = build_config(dict(arch="mlp", limit=256, batch_size=32, steps=2, device="cpu", sample_every=0, keep=0,
                            clusters=0, eval_every=2, eval_samples=2048))
    train(cfg, RunStore(tmp_path), mnist_dir, reporter=rep)
    assert rep.phases == ["loading mnist", "reference statistics"], rep.phases
