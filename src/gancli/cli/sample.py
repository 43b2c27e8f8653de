"""``gan sample``: draw images from a trained generator.

Checks the options (:mod:`gancli.cli.sample_options`), calls the mode's library function
in :mod:`gancli.generate` (grids and files: :mod:`~gancli.generate.sampling`, walks:
:mod:`~gancli.generate.walks`, the timelapse: :mod:`~gancli.generate.timeline`, datasets:
:mod:`~gancli.generate.synthetic`) and prints what it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from gancli import console
from gancli.cli import sample_options as opts
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source, state
from gancli.cli.sample_options import DEFAULT_NUM, DEFAULT_PATHS
from gancli.conditioning import Conditioning
from gancli.errors import UsageError
from gancli.generate.gif import TIMELINE_FRAME_MS, WALK_FRAME_MS


@handles_errors
def sample(
    ctx: typer.Context,
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file, or a bundle folder from "
                              "`gan export --format safetensors`."),
    num: int = typer.Option(None, "-n", "--num", show_default=False, help="Number of images; with --interpolate / --class-walk "
                            f"the number of paths (rows). \\[default: {DEFAULT_NUM}; {DEFAULT_PATHS} paths]"),
    output: Path = typer.Option(None, "-o", "--output", show_default=False,
                                help="Grid image file (.png, .jpg, .jpeg, .webp, .bmp), or a directory with --individual; with "
                                "--interpolate / --class-walk also .gif (animated), with --timeline only .gif. "
                                "\\[default: <run>-step<S>.png, <run>-step<S>-walk.png, <run>-timeline.gif]"),
    nrow: int = typer.Option(None, "--nrow", show_default=False,
                             help="Images per grid row (in a walk GIF: paths per frame row). \\[default: square]"),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents z; same seed = same images. --interpolate "
                             "walks from the latents of seed S to those of seed S+1."),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c",
                                   help="'latest', 'best' (kept by gan train --eval-every) or a step number.",
                                   autocompletion=complete_checkpoint),
    individual: bool = typer.Option(False, "--individual", help="Write one PNG per image into the -o directory."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    batch_size: int = typer.Option(256, "--batch-size", help="Images generated per forward pass."),
    class_: int = typer.Option(None, "--class", show_default=False,
                              help="Conditional runs: generate this class only. \\[default: random classes]"),
    class_grid: bool = typer.Option(False, "--class-grid",
                                    help="Conditional runs: one row per class, --nrow (default 8) images each; -n is ignored."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Use the EMA generator when the run has one."),
    interpolate: int = typer.Option(None, "--interpolate", metavar="K", show_default=False,
                                    help="Latent walk: K >= 2 steps (both ends included) from each latent of --seed S to the "
                                    "same-index latent of seed S+1; first column = `gan sample --seed S`, last = `--seed S+1` "
                                    "(conditional runs: each path keeps its class). With --class-walk: K steps from each "
                                    "class to the next, blending the class embeddings."),
    slerp: bool = typer.Option(None, "--slerp/--lerp", show_default=False,
                               help="--interpolate along great circles with the norm moving linearly (spherical, for Gaussian "
                               "z; arXiv 1609.04468) or along straight lines. \\[default: --slerp]"),
    class_walk: bool = typer.Option(False, "--class-walk", help="Conditional runs: each row keeps one z and walks across the "
                                    "classes 0, 1, ..., K-1 (one column per class; blended steps with --interpolate K)."),
    timeline: bool = typer.Option(False, "--timeline",
                                  help="Training timelapse: the fixed-z grids the run stored while training "
                                  "(samples/step-<S>.png) as an animated GIF in step order, labelled 'step S'. "
                                  "Needs a run (not a file or bundle) and -o *.gif; generates nothing."),
    pingpong: bool = typer.Option(False, "--pingpong", help="Walk GIFs: play the steps forth and back (2K-2 frames)."),
    duration_ms: int = typer.Option(None, "--duration-ms", show_default=False, help="GIF frame time, milliseconds. "
                                    f"\\[default: {WALK_FRAME_MS}; {TIMELINE_FRAME_MS} with --timeline]"),
    dataset_out: Path = typer.Option(None, "--dataset-out", metavar="DIR", show_default=False,
                                     help="Write -n images as an image-folder dataset: DIR/<class>/<i>.png (conditional runs, "
                                     "balanced over the classes) or DIR/images/<i>.png, plus DIR/manifest.json; "
                                     "`gan train --dataset DIR` reads it. Any -n (written in batches)."),
    class_weights: str = typer.Option(None, "--class-weights", metavar="W0,W1,...", show_default=False,
                                      help="--dataset-out of a conditional run: relative share of each class (one number per "
                                      "class). \\[default: balanced]"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (the files written, with their sha256) "
                                 "and nothing else there."),
) -> None:
    """Generate images from a run's generator (a square 8x8 grid for -n 64).

    Or, one per command: latent walks (--interpolate), class walks (--class-walk,
    which takes --interpolate K for blended steps), the training timelapse
    (--timeline), class grids (--class-grid) or one file per image (--individual).
    See docs/sampling.md.

    Examples:

      gan sample latest -n 64 -o grid.png

      gan sample run-3 --checkpoint 2000 -n 100 --nrow 10 -o grid.png

      gan sample run-3 -n 16 -o out/ --individual

      gan sample run-5 --class-grid -o classes.png      (conditional runs)

      gan sample run-3 --interpolate 10 --seed 7 -o walk.png      (rows = paths, columns = steps)

      gan sample run-3 --interpolate 24 -n 16 --pingpong -o walk.gif

      gan sample run-5 --class-walk --interpolate 4 -o classes.gif      (conditional runs)

      gan sample run-3 --timeline -o timeline.gif

      gan sample run-5 --dataset-out synth/ -n 60000      (a labelled dataset; see docs/sampling.md)
    """
    console.json_mode(as_json)
    walk = opts.check_mode(interpolate, class_walk, timeline, class_grid, individual, class_, dataset_out, class_weights,
                           seed, batch_size)
    if dataset_out is not None:
        return _dataset_out(ctx, run, dataset_out, num, seed, checkpoint, device, batch_size, class_, class_weights,
                            ema, output, nrow, as_json)
    if timeline:
        return _timeline(ctx, run, output, num, checkpoint, pingpong, duration_ms, slerp, as_json)
    num = opts.check_images(walk, interpolate, class_walk, slerp, seed, num, nrow)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    opts.check_output(output, walk, individual, nrow, pingpong, duration_ms)
    g = _load(source, device, ema)
    k = Conditioning.of_generator(g).generator_classes  # the classes --class may name
    opts.check_classes(k, source.label, "class-walk" if class_walk else "images", class_,
                       class_grid or class_walk)
    stem = source.label if g.step is None else f"{source.label}-step{g.step}"
    if walk:
        return _walk(g, source, stem, num, interpolate, class_walk, seed, class_, slerp, output, nrow, pingpong,
                     duration_ms, batch_size, as_json)
    from gancli.generate import sampling

    if individual:  # written into a temp folder renamed at the end: all the files or none
        out_dir = output or Path(stem)
        if output is None and out_dir.is_dir() and any(out_dir.iterdir()):
            raise UsageError(f"{out_dir}/ already holds files; pass -o with a new or empty folder")
        with _nothing_written_if_interrupted(out_dir):
            written = sampling.sample_individual(g, out_dir, num, seed, class_, batch_size)
        console.info(f"wrote {len(written)} images to {out_dir}/ ({_weights_from(source)}, seed {seed})")
    else:
        written = [output or Path(f"{stem}.png")]
        if class_grid:
            images = sampling.sample_class_grid(g, written[0], nrow or sampling.CLASS_GRID_COLUMNS, seed, batch_size)
        else:
            images = sampling.sample_grid(g, written[0], num, seed, class_, nrow, batch_size)
        num = len(images)
        console.info(f"wrote {written[0]} ({num} images, {_weights_from(source)}, {_ema(g)} G, seed {seed})")
    if as_json:
        console.emit_json({"files": [console.file_record(p) for p in written], "num_images": num, "seed": seed,
                           "source": str(source.path), "step": g.step, "ema": bool(g.uses_ema),
                           "labels": "class grid" if class_grid else class_})


def _timeline(ctx: typer.Context, run: str, output: Path | None, num: int | None, checkpoint: str, pingpong: bool,
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


def _walk(g, source, stem: str, num: int, interpolate: int | None, class_walk: bool, seed: int, class_: int | None,
          slerp: bool | None, output: Path | None, nrow: int | None, pingpong: bool, duration_ms: int | None,
          batch_size: int, as_json: bool) -> None:
    """``--interpolate K`` / ``--class-walk``: :func:`~gancli.generate.walks.write_walk`, then report."""
    from gancli.generate.walks import write_walk

    out = output or Path(f"{stem}-{'classwalk' if class_walk else 'walk'}.png")
    duration_ms = WALK_FRAME_MS if duration_ms is None else duration_ms
    w = write_walk(g, out, num, interpolate, classes=class_walk, seed=seed, labels=class_, nrow=nrow, pingpong=pingpong,
                   method="slerp" if slerp is None or slerp else "lerp", duration_ms=duration_ms, batch_size=batch_size)
    if class_walk and interpolate is not None and w.method != "blended classes":
        console.warn(f"{type(g).__name__} takes no blended classes: one column per class")
    steps = w.images.shape[1]
    shape = f"{w.frames} frames of {num} paths, {duration_ms} ms each" if w.frames else f"{num} paths x {steps} steps"
    ends = f"z of seed {seed}" if class_walk else f"seed {seed} -> {seed + 1}"
    console.info(f"wrote {out} ({shape}, {w.method}, {ends}, {_weights_from(source)}, {_ema(g)} G)")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "mode": "class-walk" if class_walk else "interpolate",
                           "paths": num, "steps": steps, "method": w.method, "seed": seed,
                           "end_seed": None if class_walk else seed + 1, "frames": w.frames,
                           "source": str(source.path), "step": g.step, "ema": bool(g.uses_ema)})


def _dataset_out(ctx: typer.Context, run: str, out_dir: Path, num: int | None, seed: int, checkpoint: str, device: str,
                 batch_size: int, class_: int | None, class_weights: str | None, ema: bool, output: Path | None,
                 nrow: int | None, as_json: bool) -> None:
    """``--dataset-out DIR``: generated images as a labelled image folder (:mod:`gancli.generate.synthetic`)."""
    num, weights = opts.check_dataset(out_dir, num, output, nrow, class_weights)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    g = _load(source, device, ema)
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


def _load(source, device: str, ema: bool):
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


def _weights_from(source) -> str:
    return f"{'bundle' if source.path.is_dir() else 'checkpoint'} {source.path.name}"


def _ema(g) -> str:
    return "EMA" if g.uses_ema else "raw"
