"""``gan sample``: draw images from a trained generator.

Checks the options (:mod:`gancli.cli.sample_options`), then each mode
(:mod:`gancli.cli.sample_modes`) calls its library function in :mod:`gancli.generate` (grids and files: :mod:`~gancli.generate.sampling`, walks:
:mod:`~gancli.generate.walks`, the timelapse: :mod:`~gancli.generate.timeline`, datasets:
:mod:`~gancli.generate.synthetic`) and prints what it wrote.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli import sample_modes as modes
from gancli.cli import sample_options as opts
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source
from gancli.cli.sample_options import DEFAULT_NUM, DEFAULT_PATHS
from gancli.conditioning import Conditioning
from gancli.generate.gif import GRID_MIN_PX, TIMELINE_FRAME_MS, WALK_FRAME_MS


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
                                   help="'latest', 'best' (kept by gan train --eval-every), a step number or damaged/step-N (set aside by a resume).",
                                   autocompletion=complete_checkpoint),
    zoom: int = typer.Option(None, "--zoom", metavar="N", show_default=False,
                              help="Enlarge a grid image N times (nearest neighbour: the pixels stay sharp); "
                              "1 = one image pixel per file pixel. \\[default: the smallest N that makes the grid "
                              f"at least {GRID_MIN_PX} px, e.g. 2 for an 8x8 grid of 28-px digits]"),
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
    opts.check_zoom(zoom, output, walk, individual, dataset_out is not None, timeline)
    if dataset_out is not None:
        return modes.dataset_out(ctx, run, dataset_out, num, seed, checkpoint, device, batch_size, class_,
                                 class_weights, ema, output, nrow, as_json)
    if timeline:
        return modes.timeline(ctx, run, output, num, checkpoint, pingpong, duration_ms, slerp, as_json)
    num = opts.check_images(walk, interpolate, class_walk, slerp, seed, num, nrow)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    opts.check_output(output, walk, individual, nrow, pingpong, duration_ms)
    kind = "class-walk" if class_walk else "images"
    model = source.model_config()
    if model is not None:  # from the header alone: a wrong --class is answered before the weights load
        opts.check_classes(Conditioning.of(model).generator_classes, source.label, kind, class_,
                           class_grid or class_walk)
    g = modes.load(source, device, ema)
    k = Conditioning.of_generator(g).generator_classes  # the classes --class may name
    opts.check_classes(k, source.label, kind, class_, class_grid or class_walk)
    stem = source.label if g.step is None else f"{source.label}-step{g.step}"
    if walk:
        return modes.walk(g, source, stem, num, interpolate, class_walk, seed, class_, slerp, output, nrow, pingpong,
                          duration_ms, batch_size, zoom, as_json)
    modes.images(g, source, stem, num, seed, class_, class_grid, individual, output, nrow, batch_size, zoom, as_json)
