"""The report's figures: matplotlib line and bar charts of :attr:`RunData.series`, as SVG.

No pyplot and no global backend: each figure is a :class:`matplotlib.figure.Figure`
written with the SVG backend (text as paths, so the page needs no font), inside an
``rc_context`` that also fixes the SVG ids (same input, same bytes).

Every :class:`Plot` carries, besides its SVG, the data it drew read back from the
matplotlib artists (``lines``): the raw curve of each run and series, or the bars of a
histogram. The report embeds it as JSON, so a test can check the plotted values against
``metrics.jsonl``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

from gancli.report.data import RunData, lower_is_better, smooth, smoothing_weight

#: One colour per run (several runs) or per series (one run).
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4f46e5", "#a16207")
#: Several runs: one line style per series of a plot.
_STYLES = ("-", "--", ":", "-.")
#: Size of one figure in inches at 100 dpi: 610 x 330 px, two per row at 1280 px.
FIGSIZE = (6.1, 3.3)
_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "gancli-report",
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.frameon": False,
    "legend.fontsize": 8,
}

#: Titles and y labels of the known series; others use their key.
TITLES = {
    "train.loss_d": ("Discriminator loss", "loss_d"),
    "train.loss_g": ("Generator loss", "loss_g"),
    "train.d_real": ("D output on real / fake images", "D(x), D(G(z))"),
    "train.lr_g": ("Learning rates", "lr"),
    "train.img_per_sec": ("Throughput", "images / s"),
    "train.gp": ("Gradient penalty (WGAN-GP)", "gp"),
    "train.r1": ("R1 penalty", "r1"),
    "train.skipped": ("Steps skipped (--nan-policy skip)", "steps"),
    "train.l1": ("L1 of G's output to the target (training batches)", "L1"),
    "eval.fd_lenet": ("FD-LeNet (lower is better)", "FD-LeNet"),
    "eval.fid": ("FID (lower is better)", "FID"),
    "eval.kid": ("KID (lower is better)", "KID"),
    "eval.kid_lenet": ("KID-LeNet (lower is better)", "KID-LeNet"),
    "eval.is": ("Inception Score (higher is better)", "IS"),
    "eval.is_lenet": ("Classifier IS, LeNet (higher is better)", "IS-LeNet"),
    "eval.precision": ("Precision (higher is better)", "precision"),
    "eval.recall": ("Recall (higher is better)", "recall"),
    "eval.precision_lenet": ("Precision, LeNet (higher is better)", "precision"),
    "eval.recall_lenet": ("Recall, LeNet (higher is better)", "recall"),
    "eval.classes_covered": ("Classes covered (evaluation)", "classes"),
    "eval.psnr": ("PSNR of the repairs, dB (higher is better)", "PSNR"),
    "eval.ssim": ("SSIM of the repairs (higher is better)", "SSIM"),
    "eval.l1": ("L1 of the repairs to the targets (lower is better)", "L1"),
    "eval.label_preservation": ("Label preservation: LeNet accuracy on the outputs (higher is better)",
                                "label preservation"),
    "eval.kl_to_uniform": ("KL of the class histogram to uniform (evaluation)", "KL"),
    "monitor.diversity": ("Diversity (fraction of the data's)", "diversity"),
    "monitor.duplicates": ("Near-duplicate pairs", "fraction"),
    "monitor.classes_covered": ("Classes covered (monitor)", "classes"),
    "monitor.kl_to_uniform": ("KL of the class histogram to uniform (monitor)", "KL"),
}
#: Train series drawn together in one plot (the first names the plot).
_PAIRS = {"train.d_real": ("train.d_real", "train.d_fake"), "train.lr_g": ("train.lr_g", "train.lr_d")}
_PAIRED = {"train.d_fake": "train.d_real", "train.lr_d": "train.lr_g"}


@dataclass(frozen=True)
class PlotSpec:
    """What one figure shows."""

    id: str  # HTML id, e.g. plot-train-loss_d
    section: str  # training, evaluation, monitor
    title: str
    ylabel: str
    series: tuple[str, ...]  # names in RunData.series drawn in it
    smooth: bool = False  # draw an EMA line over the raw (faint) one
    mark_best: bool = False  # mark each run's best value (eval metrics)
    kind: str = "line"  # line, or histogram (bars of the latest class histogram)


@dataclass
class Plot:
    """A drawn figure: its spec, its SVG, and the data read back from its artists."""

    spec: PlotSpec
    svg: bytes
    #: ``{"<run label>|<series>": {"steps": [...], "values": [...]}}`` for line plots (raw
    #: curves, NaN as None); ``{"<run label>|histogram": {"classes": [...], "counts": [...]}}``
    #: for the histogram.
    lines: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    caption: str = ""


def plan(runs: list[RunData]) -> list[PlotSpec]:
    """The figures for ``runs``: one per series name any run has (a pair such as
    d_real / d_fake or lr_g / lr_d shares one; eval metrics only when some run has them at
    two or more steps), in section order training, evaluation, monitor, then the class
    histogram when a run has one."""
    names: dict[str, None] = {}
    for r in runs:  # an eval metric measured at one step only is a row of the evaluation table, not a plot
        names.update(dict.fromkeys(n for n, s in r.series.items() if len(s) and not n.startswith("eval.")))
    for r in runs:
        names.update(dict.fromkeys(n for n, s in r.series.items() if n.startswith("eval.")
                                   and any(len(x.series.get(n, ())) >= 2 for x in runs)))
    specs = []
    for name in names:
        if name in _PAIRED:
            if _PAIRED[name] in names:
                continue  # drawn with its partner
            group = (name,)
        else:
            group = tuple(n for n in _PAIRS.get(name, (name,)) if n in names)
        kind, key = name.split(".", 1)
        title, ylabel = TITLES.get(name, (key.replace("_", " "), key))
        section = {"train": "training", "eval": "evaluation", "monitor": "monitor"}[kind]
        specs.append(PlotSpec(
            id=f"plot-{kind}-{key}", section=section, title=title, ylabel=ylabel, series=group,
            smooth=kind == "train" and key not in ("img_per_sec", "lr_g", "lr_d", "skipped"),
            mark_best=kind == "eval",
        ))
    sources = {h[0] for r in runs if (h := r.latest_histogram())}
    if sources:  # with an evaluation's histogram (50k images) under Evaluation, else the monitor's (a few hundred)
        where = "evaluation" if "eval" in sources else "monitor"
        specs.append(PlotSpec(id="plot-class-histogram", section=where, kind="histogram", ylabel="images", series=(),
                              title=f"Class histogram of the newest {'evaluation' if where == 'evaluation' else 'monitor check'}"))
    return specs


def make_plots(runs: list[RunData]) -> list[Plot]:
    """Draw every figure of :func:`plan` for ``runs`` (matplotlib, SVG)."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        return [draw_histogram(spec, runs) if spec.kind == "histogram" else draw_lines(spec, runs) for spec in plan(runs)]


def draw_lines(spec: PlotSpec, runs: list[RunData]) -> Plot:
    """One line plot: each run and series of ``spec`` as a raw curve (faint when an EMA
    line is drawn over it), the best value of eval metrics marked with a star."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = Figure(figsize=FIGSIZE, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    many = len(runs) > 1
    smoothed: list[float] = []
    best: list[tuple] = []  # (series, lower is better, colour) to mark once the axes are final
    for ri, run in enumerate(runs):
        for si, name in enumerate(spec.series):
            s = run.series.get(name)
            if s is None or not len(s):
                continue
            color = PALETTE[(ri if many else si) % len(PALETTE)]
            style = _STYLES[si % len(_STYLES)] if many else "-"
            key = name.split(".", 1)[1]
            label = (f"{run.label} {key}" if len(spec.series) > 1 else run.label) if many else \
                (key if len(spec.series) > 1 else None)
            weight = smoothing_weight(len(s)) if spec.smooth else 0.0
            marker = "o" if len(s) <= 30 and not weight else None
            ax.plot(s.steps, s.values, color=color, linestyle=style, linewidth=1.0 if weight else 1.6,
                    alpha=0.3 if weight else 1.0, marker=marker, markersize=3.5, gid=f"raw|{run.label}|{name}",
                    label=None if weight else label)
            if weight:
                ax.plot(s.steps, smooth(s.values, weight), color=color, linestyle=style, linewidth=1.8, label=label)
                smoothed.append(weight)
            if spec.mark_best:
                best.append((s, lower_is_better(key), color))
    if spec.mark_best and _wide_positive(ax):
        ax.set_yscale("log")
    else:
        _sensible_span(ax)
    _step_axis(ax, runs)
    for s, lower, color in best:
        _mark_best(ax, s, lower, color)
    ax.set_title(spec.title, loc="left", fontweight="bold", color="#111827")
    ax.set_xlabel("step")
    ax.set_ylabel(spec.ylabel)
    key = spec.series[0].split(".", 1)[1]
    if key == "classes_covered":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
    elif key == "duplicates":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="best", frameon=True, facecolor="white", edgecolor="#e5e7eb", framealpha=0.9)
    caption = ""
    if smoothed:
        caption = f"faint: logged values; solid: EMA smoothing {max(smoothed):.2f}"
    if spec.mark_best:
        caption = "star: best value" + (" (log scale)" if ax.get_yscale() == "log" else "")
    lines = {}
    for line in ax.get_lines():
        gid = line.get_gid() or ""
        if gid.startswith("raw|"):
            _, label, name = gid.split("|", 2)
            lines[f"{label}|{name}"] = {"steps": [_plain(x) for x in line.get_xdata()],
                                        "values": [_plain(y) for y in line.get_ydata()]}
    return Plot(spec, _svg(fig), lines, caption)


def draw_histogram(spec: PlotSpec, runs: list[RunData]) -> Plot:
    """Bars of each run's newest class histogram (grouped by class with several runs), with
    the count a uniform histogram would have as a dashed line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    found = [(r, h) for r in runs if (h := r.latest_histogram())]
    width = 0.8 / len(found)
    lines = {}
    sources = []
    for i, (run, (source, step, counts)) in enumerate(found):
        xs = [c - 0.4 + width * (i + 0.5) for c in range(len(counts))]
        color = PALETTE[i % len(PALETTE)] if len(runs) > 1 else PALETTE[0]
        bars = ax.bar(xs, counts, width=width * 0.92, color=color, label=f"{run.label} (step {step})" if len(runs) > 1 else None,
                      gid=f"hist|{run.label}")
        lines[f"{run.label}|histogram"] = {"classes": list(range(len(counts))),
                                           "counts": [_plain(b.get_height()) for b in bars.patches]}
        total = sum(counts)
        ax.axhline(total / len(counts), color=color, linestyle="--", linewidth=1, alpha=0.7)
        sources.append(f"{run.label}: {'gan evaluate / --eval-every' if source == 'eval' else 'monitor'} at step {step}, "
                       f"{total:,} images")
    ax.set_xticks(range(max(len(h[2]) for _, h in found)))
    ax.set_title(spec.title, loc="left", fontweight="bold", color="#111827")
    ax.set_xlabel("class (as the classifier sees it)")
    ax.set_ylabel(spec.ylabel)
    ax.grid(axis="x", visible=False)
    if len(runs) > 1:
        ax.legend(loc="best")
    caption = "dashed: a uniform histogram. " + "; ".join(sources)
    return Plot(spec, _svg(fig), lines, caption)


def _step_axis(ax, runs: list[RunData]) -> None:
    """The x axis of every line plot: step 0 to the furthest configured (or reached) step of
    ``runs``, so that plots line up and a single evaluation sits where it happened."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    end = max(max(r.total_steps or 0, r.step) for r in runs)
    if end > 0:
        ax.set_xlim(0, end * 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))


def _mark_best(ax, s, lower: bool, color: str) -> None:
    best = s.best(lower)
    if best is None:
        return
    step, value = best
    ax.scatter([step], [value], marker="*", s=140, color=color, edgecolors="#111827", linewidths=0.6, zorder=5)
    left, right = ax.get_xlim()
    on_right = step > (left + right) / 2  # label towards the middle, so it never leaves the axes
    ax.annotate(f"best {value:.4g} @ {step:,}", (step, value), textcoords="offset points", xytext=(-8 if on_right else 8, 8),
                ha="right" if on_right else "left", fontsize=8, color="#111827", annotation_clip=False)


#: A linear y-axis spans at least this fraction of its largest magnitude: a learning rate of
#: 0.00019-0.00021 or a throughput of 149.75-151.75 img/s reads as flat, not as a trend.
MIN_RELATIVE_SPAN = 0.10


def _sensible_span(ax) -> None:
    """Widen a linear y-axis whose values vary by less than :data:`MIN_RELATIVE_SPAN` of their
    magnitude: from zero to 15% above the largest value for positive series (to zero for
    negative ones), else centred on the values."""
    ys = _plotted_values(ax)
    if not ys:
        return
    lo, hi = min(ys), max(ys)
    scale = max(abs(lo), abs(hi))
    if scale == 0 or hi - lo >= MIN_RELATIVE_SPAN * scale:
        return
    if lo > 0:
        ax.set_ylim(0, hi * 1.15)
    elif hi < 0:
        ax.set_ylim(lo * 1.15, 0)
    else:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - MIN_RELATIVE_SPAN * scale / 2, mid + MIN_RELATIVE_SPAN * scale / 2)


def _plotted_values(ax) -> list[float]:
    """The finite y values of every line on ``ax``."""
    return [float(y) for line in ax.get_lines() for y in line.get_ydata() if math.isfinite(float(y))]


def _wide_positive(ax) -> bool:
    """The plotted values are all positive and span more than 30x: a log scale reads better."""
    ys = _plotted_values(ax)
    return bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 30


def _plain(x: Any) -> Any:
    """A numpy / Python number as a JSON-able Python value (NaN and inf as None)."""
    x = x.item() if hasattr(x, "item") else x
    return x if not isinstance(x, float) or math.isfinite(x) else None


def _svg(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
