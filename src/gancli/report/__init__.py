"""``gan report``: one self-contained HTML page about one or several runs.

Three layers, each usable alone:

* :mod:`gancli.report.data` reads a run directory into plain Python values
  (series over steps, config, checkpoints, sample grids); torch- and matplotlib-free,
  also used by ``gan runs compare``;
* :mod:`gancli.report.plots` draws those series with matplotlib (Agg, SVG) and
  reads back what each figure drew;
* :mod:`gancli.report.html` prepares what the page shows and renders the Jinja2 template
  ``templates/report.html.j2``, which lays the page out: inline CSS, images as ``data:``
  URIs, the plotted data as a JSON block (``<script id="report-data">``).

:func:`build_report` ties them together.
"""

from __future__ import annotations

from gancli.report.data import RunData, load_run


def build_report(runs: list[RunData]) -> str:
    """The HTML page (a ``str``) about ``runs`` (one run, or several to compare).

    Raises:
        ValueError: ``runs`` is empty.
    """
    from gancli.report.html import render_page
    from gancli.report.plots import make_plots

    if not runs:
        raise ValueError("build_report needs at least one run")
    return render_page(runs, make_plots(runs))


__all__ = ["RunData", "build_report", "load_run"]
