"""The modes of ``gan sample`` (:mod:`gancli.cli.sample`): each calls its library function in
:mod:`gancli.generate` and prints what it wrote (text, or one JSON object with ``--json``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from gancli import console
from gancli.cli import sample_options as opts
from gancli.cli.common import resolve_generator_source, state
from gancli.conditioning import Conditioning
from gancli.errors import UsageError
from gancli.generate.gif import TIMELINE_FRAME_MS, WALK_FRAME_MS


def images(g, source, stem: str, num: int, seed: int, class_: int | None, class_grid: bool, individual: bool,
           output: Path | None, nrow: int | None, batch_size: int, zoom: int | None, as_json: bool) -> None:
    """A grid PNG (``-n``, ``--class``, ``--class-grid``) or one PNG per image (``--individual``)."""
    from gancli.generate import sampling

    if individual:  # written into a temp folder renamed at the end: all the files or none
        out_dir = output or Path(stem)
        if output is None and out_dir.is_dir() and any(out_dir.iterdir()):
            raise UsageError(f"{out_dir}/ already holds files; pass -o with a new or empty folder")
        with console.progress_bar() as bar, _nothing_written_if_interrupted(out_dir):
            task = bar.add_task(f"writing {out_dir}/", total=num)
            written = sampling.sample_individual(g, out_dir, num, seed, class_, batch_size,
                                                 progress=lambda done, total: bar.update(task, completed=done))
        console.info(f"wrote {len(written)} images to {out_dir}/ ({_weights_from(source)}, seed {seed})")
    else:
        written = [output or Path(f"{stem}.png")]
        if class_grid:
            grid = sampling.sample_class_grid(g, written[0], nrow or sampling.CLASS_GRID_COLUMNS, seed, batch_size,
                                              zoom)
        else:
            grid = sampling.sample_grid(g, written[0], num, seed, class_, nrow, batch_size, zoom)
        num, zoom = len(grid.images), grid.zoom
        size = _size(written[0], zoom)
        console.info(f"wrote {written[0]} ({num} images, {size}, {_weights_from(source)}, {_ema(g)} G, seed {seed})")
    if as_json:
        console.emit_json({"files": [console.file_record(p) for p in written], "num_images": num, "seed": seed,
                           "source": str(source.path), "step": g.step, "ema": bool(g.uses_ema),
                           "labels": "class grid" if class_grid else class_,
                           **({} if individual else {"zoom": zoom})})


def timeline(ctx: typer.Context, run: str, output: Path | None, num: int | None, checkpoint: str, pingpong: bool,
              duration_ms: int | None, slerp: bool | None, as_json: bool) -> None:
    """``gan sample RUN --timeline``: the run's stored grids as one labelled GIF."""
    from gancli.generate.timeline import write_timeline

    opts.check_timeline(run, num, checkpoint, pingpong, slerp)
    r = state(ctx).store().resolve(run)
    out = output or Path(f"{r.id}-timeline.gif")
    duration_ms = TIMELINE_FRAME_MS if duration_ms is None else duration_ms
    steps = write_timeline(r.samples_dir, out, duration_ms, run_id=r.id)
    console.info(f"wrote {out} ({len(steps)} frames, steps {steps[0]}..{steps[-1]} of {r.id}, {duration_ms} ms each)")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "mode": "timeline", "run": r.id,
                           "frames": len(steps), "steps": steps, "duration_ms": duration_ms})


def walk(g, source, stem: str, num: int, interpolate: int | None, class_walk: bool, seed: int, class_: int | None,
          slerp: bool | None, output: Path | None, nrow: int | None, pingpong: bool, duration_ms: int | None,
          batch_size: int, zoom: int | None, as_json: bool) -> None:
    """``--interpolate K`` / ``--class-walk``: :func:`~gancli.generate.walks.write_walk`, then report."""
    from gancli.generate.walks import write_walk

    out = output or Path(f"{stem}-{'classwalk' if class_walk else 'walk'}.png")
    duration_ms = WALK_FRAME_MS if duration_ms is None else duration_ms
    w = write_walk(g, out, num, interpolate, classes=class_walk, seed=seed, labels=class_, nrow=nrow, pingpong=pingpong,
                   method="slerp" if slerp is None or slerp else "lerp", duration_ms=duration_ms, batch_size=batch_size,
                   scale=zoom)
    if class_walk and interpolate is not None and w.method != "blended classes":
        console.warn(f"{type(g).__name__} takes no blended classes: one column per class")
    steps = w.images.shape[1]
    shape = f"{w.frames} frames of {num} paths, {duration_ms} ms each" if w.frames else f"{num} paths x {steps} steps"
    ends = f"z of seed {seed}" if class_walk else f"seed {seed} -> {seed + 1}"
    size = "" if w.frames else _size(out, w.zoom) + ", "
    console.info(f"wrote {out} ({shape}, {size}{w.method}, {ends}, {_weights_from(source)}, {_ema(g)} G)")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "mode": "class-walk" if class_walk else "interpolate",
                           "paths": num, "steps": steps, "method": w.method, "seed": seed,
                           "end_seed": None if class_walk else seed + 1, "frames": w.frames,
                           "source": str(source.path), "step": g.step, "ema": bool(g.uses_ema)})


def dataset_out(ctx: typer.Context, run: str, out_dir: Path, num: int | None, seed: int, checkpoint: str, device: str,
                 batch_size: int, class_: int | None, class_weights: str | None, ema: bool, output: Path | None,
                 nrow: int | None, as_json: bool) -> None:
    """``--dataset-out DIR``: generated images as a labelled image folder (:mod:`gancli.generate.synthetic`)."""
    num, weights = opts.check_dataset(out_dir, num, output, nrow, class_weights)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    g = load(source, device, ema)
    opts.check_classes(Conditioning.of_generator(g).generator_classes, source.label, "dataset", class_,
                       weights is not None)
    from gancli.generate import synthetic

    try:
        counts = synthetic.class_counts(num, g.num_classes, class_, weights) if g.num_classes else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    described = synthetic.describe_source(source.path, source.run_id, g)
    with console.progress_bar() as bar, _nothing_written_if_interrupted(out_dir):
        task = bar.add_task(f"writing {out_dir}", total=num)
        try:
            manifest = synthetic.write_dataset(g, out_dir, counts, seed, described, n=num, batch_size=batch_size,
                                               progress=lambda done, total: bar.update(task, completed=done))
        except FileExistsError:
            raise UsageError(f"--dataset-out {out_dir} was filled by something else meanwhile; nothing written") from None
    per = ", ".join(f"{c}: {n}" for c, n in manifest["per_class"].items() if n) if g.num_classes else f"{num} unlabelled"
    console.info(f"wrote {num} images to {out_dir}/ ({per}; {_weights_from(source)}, {_ema(g)} G, seed {seed}) "
                 f"and {out_dir / 'manifest.json'}")
    if as_json:
        console.emit_json({"dataset": str(out_dir), "num_images": num, "per_class": manifest["per_class"],
                           "manifest": console.file_record(out_dir / "manifest.json"), "seed": seed,
                           "source": str(source.path), "step": g.step, "ema": bool(g.uses_ema)})


def load(source, device: str, ema: bool):
    from gancli.engine.device import resolve_device

    return source.load(device=resolve_device(device), ema=ema)


@contextmanager
def _nothing_written_if_interrupted(out_dir: Path) -> Iterator[None]:
    """Ctrl-C while a folder is written (into a temp folder, renamed at the end): say so, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        console.error(f"interrupted: nothing was written to {out_dir}/")
        raise typer.Exit(130) from None


def _size(path: Path, zoom: int) -> str:
    """``"484 x 484 px (2x)"``: the size of the grid image at ``path`` and its enlargement."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return f"{w} x {h} px ({zoom}x)"


def _weights_from(source) -> str:
    return f"{'bundle' if source.path.is_dir() else 'checkpoint'} {source.path.name}"


def _ema(g) -> str:
    return "EMA" if g.uses_ema else "raw"
