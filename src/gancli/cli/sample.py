"""``gan sample``: draw images from a trained generator."""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source
from gancli.config import MAX_SEED
from gancli.errors import UsageError

#: The images of one ``gan sample`` are held in memory as float32: at most this many bytes.
MAX_SAMPLE_BYTES = 4 * 2**30
#: Images drawn when -n is not given (a square 8x8 grid).
DEFAULT_NUM = 64
#: Paths (rows) of --interpolate / --class-walk when -n is not given.
DEFAULT_PATHS = 8
#: Frame times of GIFs, milliseconds: walks, and the --timeline of stored grids.
WALK_FRAME_MS = 100
TIMELINE_FRAME_MS = 500
#: Options that each choose what ``gan sample`` makes; at most one per command
#: (except --class-walk, which takes its steps from --interpolate).
MODES = ("--interpolate", "--class-walk", "--timeline", "--class-grid", "--individual", "--dataset-out")


@handles_errors
def sample(
    ctx: typer.Context,
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file, "
                              "or a bundle folder from `gan export --format safetensors`."),
    num: int = typer.Option(None, "-n", "--num", show_default=False,
                            help="Number of images; with --interpolate / --class-walk the number of paths (rows). "
                            f"\\[default: {DEFAULT_NUM}; {DEFAULT_PATHS} paths]"),
    output: Path = typer.Option(None, "-o", "--output", show_default=False,
                                help="Grid image file (.png, .jpg, .jpeg, .webp, .bmp), or a directory with --individual; "
                                "with --interpolate / --class-walk also .gif (animated), with --timeline only .gif. "
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
                                    help="Conditional runs: one row per class, --nrow (default 8) images each; "
                                    "-n is ignored."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Use the EMA generator when the run has one."),
    interpolate: int = typer.Option(None, "--interpolate", metavar="K", show_default=False,
                                    help="Latent walk: K >= 2 steps (both ends included) from each latent of --seed S "
                                    "to the same-index latent of seed S+1; first column = `gan sample --seed S`, last "
                                    "= `--seed S+1` (conditional runs: each path keeps its class). With --class-walk: "
                                    "K steps from each class to the next, blending the class embeddings."),
    slerp: bool = typer.Option(None, "--slerp/--lerp", show_default=False,
                               help="--interpolate along great circles with the norm moving linearly (spherical, "
                               "for Gaussian z; arXiv 1609.04468) or along straight lines. \\[default: --slerp]"),
    class_walk: bool = typer.Option(False, "--class-walk",
                                    help="Conditional runs: each row keeps one z and walks across the classes "
                                    "0, 1, ..., K-1 (one column per class; blended steps with --interpolate K)."),
    timeline: bool = typer.Option(False, "--timeline",
                                  help="Training timelapse: the fixed-z grids the run stored while training "
                                  "(samples/step-<S>.png) as an animated GIF in step order, labelled 'step S'. "
                                  "Needs a run (not a file or bundle) and -o *.gif; generates nothing."),
    pingpong: bool = typer.Option(False, "--pingpong", help="Walk GIFs: play the steps forth and back (2K-2 frames)."),
    duration_ms: int = typer.Option(None, "--duration-ms", show_default=False,
                                    help="GIF frame time, milliseconds. "
                                    f"\\[default: {WALK_FRAME_MS}; {TIMELINE_FRAME_MS} with --timeline]"),
    dataset_out: Path = typer.Option(None, "--dataset-out", metavar="DIR", show_default=False,
                                     help="Write -n images as an image-folder dataset: DIR/<class>/<i>.png (conditional "
                                     "runs, balanced over the classes) or DIR/images/<i>.png, plus DIR/manifest.json; "
                                     "`gan train --dataset DIR` reads it. Any -n (written in batches)."),
    class_weights: str = typer.Option(None, "--class-weights", metavar="W0,W1,...", show_default=False,
                                      help="--dataset-out of a conditional run: relative share of each class "
                                      "(one number per class). \\[default: balanced]"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (the files written, with "
                                 "their sha256) and nothing else there."),
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
    walk = _check_modes(interpolate, class_walk, timeline, class_grid, individual, class_, dataset_out)
    if class_weights is not None and dataset_out is None:
        raise UsageError("--class-weights goes with --dataset-out")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be in [0, 2^63 - 1], got {seed}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if dataset_out is not None:
        return _dataset_out(ctx, run, dataset_out, num, seed, checkpoint, device, batch_size, class_, class_weights,
                            ema, output, nrow, as_json)
    if timeline:
        return _timeline(ctx, run, output, num, checkpoint, pingpong, duration_ms, slerp, as_json)
    if slerp is not None and (interpolate is None or class_walk):
        raise UsageError("--slerp/--lerp choose how --interpolate moves z; "
                         + ("--class-walk keeps z fixed" if class_walk else "give --interpolate K"))
    if interpolate is not None and interpolate < 2:
        raise UsageError(f"--interpolate must be >= 2 (steps per path, both ends included), got {interpolate}")
    if walk and seed > MAX_SEED - 1:  # the walk's last column is `gan sample --seed S+1`
        raise UsageError(f"--seed must be in [0, 2^63 - 2] with --interpolate (it walks to seed S+1), got {seed}")
    num = num if num is not None else DEFAULT_PATHS if walk else DEFAULT_NUM
    if num < 1:
        raise UsageError(f"-n must be >= 1, got {num}")
    if nrow is not None and nrow < 1:
        raise UsageError(f"--nrow must be >= 1, got {nrow}")
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    ckpt_path, label = source.path, source.label
    gif = output is not None and output.suffix.lower() == ".gif" and walk
    if (pingpong or duration_ms is not None) and not gif:
        where = "" if pingpong else ", or --timeline"
        raise UsageError(f"{'--pingpong' if pingpong else '--duration-ms'} applies to animated GIFs: "
                         f"--interpolate / --class-walk with -o *.gif{where}")
    if duration_ms is not None:
        from gancli.gif import check_frame_ms

        check_frame_ms(duration_ms)
    if walk and nrow is not None and not gif:
        raise UsageError("--nrow applies to walk GIFs; in a walk grid the rows are the paths and the columns "
                         "the steps (use -n for the number of paths)")
    if output is not None:
        if walk:
            from gancli.interpolate import walk_format

            walk_format(output)
            if not output.parent.is_dir():
                raise UsageError(f"directory {output.parent} does not exist (for -o {output})")
        elif individual:
            if output.exists() and not output.is_dir():
                raise UsageError(f"-o {output} is a file; --individual needs a directory")
            if not output.parent.is_dir():
                raise UsageError(f"directory {output.parent} does not exist")
            if output.is_dir() and any(output.iterdir()):
                raise UsageError(f"-o {output} already holds files; give a new or empty folder (nothing is overwritten)")
        else:
            from gancli.sampling import image_format

            image_format(output)
            if not output.parent.is_dir():
                raise UsageError(f"directory {output.parent} does not exist (for -o {output})")

    from gancli.engine.device import resolve_device
    from gancli.sampling import grid_labels, save_grid, save_individual

    dev = resolve_device(device)
    g = source.load(device=dev, ema=ema)
    ckpt_path = source.path
    step = g.step
    stem = label if step is None else f"{label}-step{step}"
    kind = "bundle" if ckpt_path.is_dir() else "checkpoint"
    k = g.num_classes
    if (class_ is not None or class_grid or class_walk) and not k:
        flags = "--class-walk" if class_walk else "--class and --class-grid"
        raise UsageError(f"{flags} need{'s' if class_walk else ''} a conditional run (trained with --conditional); "
                         f"{label} is unconditional")
    if class_ is not None and not 0 <= class_ < k:
        raise UsageError(f"--class {class_} is out of range; valid choices: 0..{k - 1}")
    labels = None  # random classes for a conditional G (Generator.sample draws them from seed + 1)
    if class_grid:
        nrow = nrow or 8
        num = k * nrow
        labels = grid_labels(k, nrow)
    elif class_ is not None:
        labels = class_
    if walk:
        from gancli.interpolate import class_walk_columns

        steps = class_walk_columns(k, interpolate).shape[0] if class_walk else interpolate
        need = num * steps * g.img_channels * g.img_resolution ** 2 * 4
        if need > MAX_SAMPLE_BYTES:
            raise UsageError(f"-n {num} paths of {steps} steps would hold {need / 2**30:.0f} GiB of images in "
                             "memory; give fewer paths (-n) or steps (--interpolate)")
        return _walk(g, num, interpolate, class_walk, seed, class_, slerp, output, stem, kind, ckpt_path, nrow,
                     pingpong, duration_ms, batch_size, as_json)
    need = num * g.img_channels * g.img_resolution ** 2 * 4
    if need > MAX_SAMPLE_BYTES:
        most = MAX_SAMPLE_BYTES // (g.img_channels * g.img_resolution ** 2 * 4)
        raise UsageError(f"-n {num} would hold {need / 2**30:.0f} GiB of {g.img_channels}x{g.img_resolution}x"
                         f"{g.img_resolution} images in memory; valid choices: -n 1..{most:,} (run several "
                         "commands with different --seed for more)")
    images = g.sample(num, seed=seed, labels=labels, batch_size=batch_size)
    if individual:  # written into a temp folder renamed at the end: all the files or none
        from gancli.fsutil import atomic_dir

        out_dir = output or Path(stem)
        if output is None and out_dir.is_dir() and any(out_dir.iterdir()):
            raise UsageError(f"{out_dir}/ already holds files; pass -o with a new or empty folder")
        try:
            with atomic_dir(out_dir) as tmp:
                paths = save_individual(images, tmp)
        except KeyboardInterrupt:
            console.error(f"interrupted: nothing was written to {out_dir}/")
            raise typer.Exit(130) from None
        console.info(f"wrote {len(paths)} images to {out_dir}/ ({kind} {ckpt_path.name}, seed {seed})")
        written = sorted(p for p in out_dir.iterdir() if p.is_file())
    else:
        out = output or Path(f"{stem}.png")
        save_grid(images, out, nrow=nrow)
        weights = "EMA" if g.uses_ema else "raw"
        console.info(f"wrote {out} ({num} images, {kind} {ckpt_path.name}, {weights} G, seed {seed})")
        written = [out]
    if as_json:
        console.emit_json({"files": [console.file_record(p) for p in written], "num_images": num, "seed": seed,
                           "source": str(ckpt_path), "step": step, "ema": bool(g.uses_ema),
                           "labels": "class grid" if class_grid else class_})


def _check_modes(interpolate: int | None, class_walk: bool, timeline: bool, class_grid: bool, individual: bool,
                 class_: int | None, dataset_out: Path | None = None) -> bool:
    """Raise :class:`UsageError` naming the clash when more than one of :data:`MODES` is
    given (--class-walk may take --interpolate K) or --class comes with a mode that sets
    the classes itself. Returns whether the command makes a walk (--interpolate / --class-walk)."""
    given = [name for name, on in zip(MODES, (interpolate is not None, class_walk, timeline, class_grid, individual,
                                              dataset_out is not None))
             if on and not (name == "--interpolate" and class_walk)]  # --class-walk --interpolate K: one mode
    if len(given) > 1:
        raise UsageError(f"{given[0]} and {given[1]} cannot be combined: choose one of {', '.join(MODES)} "
                         "(--class-walk takes --interpolate K for blended steps)")
    if class_ is not None and (class_walk or timeline):
        raise UsageError(f"--class and {'--class-walk' if class_walk else '--timeline'} cannot be combined"
                         + (": the walk goes through every class" if class_walk else ""))
    return interpolate is not None or class_walk


def _timeline(ctx: typer.Context, run: str, output: Path | None, num: int | None, checkpoint: str, pingpong: bool,
              duration_ms: int | None, slerp: bool | None, as_json: bool) -> None:
    """``gan sample RUN --timeline``: the run's stored grids as one labelled GIF."""
    from gancli.bundle import is_bundle
    from gancli.cli.common import state
    from gancli.gif import check_frame_ms, check_gif_path
    from gancli.timeline import write_timeline

    for name, given in (("-n", num is not None), ("--checkpoint", checkpoint != "latest"),
                        ("--pingpong", pingpong), ("--slerp/--lerp", slerp is not None)):
        if given:
            raise UsageError(f"{name} does not apply to --timeline (it shows the grids stored while training)")
    path = Path(run)
    if path.suffix == ".safetensors" or (path.is_dir() and is_bundle(path)):
        what = "a checkpoint file" if path.suffix == ".safetensors" else "an exported bundle"
        raise UsageError(f"--timeline needs a run (run-N, N, latest or a run directory), not {what}: {run}")
    r = state(ctx).store().resolve(run)
    out = output or Path(f"{r.id}-timeline.gif")
    check_gif_path(out, "--timeline")
    duration_ms = TIMELINE_FRAME_MS if duration_ms is None else duration_ms
    check_frame_ms(duration_ms)
    steps = write_timeline(r.samples_dir, out, duration_ms, run_id=r.id)
    console.info(f"wrote {out} ({len(steps)} frames, steps {steps[0]}..{steps[-1]} of {r.id}, {duration_ms} ms each)")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "mode": "timeline", "run": r.id,
                           "frames": len(steps), "steps": steps, "duration_ms": duration_ms})


def _walk(g, num: int, interpolate: int | None, class_walk: bool, seed: int, class_: int | None,
          slerp: bool | None, output: Path | None, stem: str, kind: str, ckpt_path: Path, nrow: int | None,
          pingpong: bool, duration_ms: int | None, batch_size: int, as_json: bool) -> None:
    """``--interpolate K`` / ``--class-walk``: generate the walk, write the grid or GIF, report."""
    from gancli.gif import write_gif
    from gancli.interpolate import class_walk as make_class_walk
    from gancli.interpolate import latent_walk, save_walk_grid, supports_soft_labels, walk_frames

    out = output or Path(f"{stem}-{'classwalk' if class_walk else 'walk'}.png")
    if class_walk:
        images = make_class_walk(g, num, interpolate, seed=seed, batch_size=batch_size)
        soft = interpolate is not None and supports_soft_labels(g)
        if interpolate is not None and not soft:
            console.warn(f"{type(g).__name__} takes no blended classes: one column per class")
        method = "blended classes" if soft else "one column per class"
    else:
        method = "slerp" if slerp is None or slerp else "lerp"
        images = latent_walk(g, num, interpolate, seed=seed, method=method, labels=class_, batch_size=batch_size)
    steps = images.shape[1]
    frames = None
    if out.suffix.lower() == ".gif":
        duration_ms = WALK_FRAME_MS if duration_ms is None else duration_ms
        frames = walk_frames(images, nrow=nrow, pingpong=pingpong)
        write_gif(frames, out, duration_ms)
        shape = f"{len(frames)} frames of {num} paths, {duration_ms} ms each"
    else:
        save_walk_grid(images, out)
        shape = f"{num} paths x {steps} steps"
    weights = "EMA" if g.uses_ema else "raw"
    ends = f"z of seed {seed}" if class_walk else f"seed {seed} -> {seed + 1}"
    console.info(f"wrote {out} ({shape}, {method}, {ends}, {kind} {ckpt_path.name}, {weights} G)")
    if as_json:
        console.emit_json({"files": [console.file_record(out)], "mode": "class-walk" if class_walk else "interpolate",
                           "paths": num, "steps": steps, "method": method, "seed": seed,
                           "end_seed": None if class_walk else seed + 1, "frames": len(frames) if frames else None,
                           "source": str(ckpt_path), "step": g.step, "ema": bool(g.uses_ema)})


def _dataset_out(ctx: typer.Context, run: str, out_dir: Path, num: int | None, seed: int, checkpoint: str, device: str,
                 batch_size: int, class_: int | None, class_weights: str | None, ema: bool, output: Path | None,
                 nrow: int | None, as_json: bool) -> None:
    """``--dataset-out DIR``: generated images as a labelled image folder (:mod:`gancli.synthetic`)."""
    for name, given in (("-o", output is not None), ("--nrow", nrow is not None)):
        if given:
            raise UsageError(f"{name} does not apply to --dataset-out (it writes one PNG per image into DIR)")
    num = DEFAULT_NUM if num is None else num
    if num < 1:
        raise UsageError(f"-n must be >= 1, got {num}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--dataset-out {out_dir} is a file; give a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise UsageError(f"--dataset-out {out_dir} already holds files; give a new or empty folder (nothing is overwritten)")
    if not out_dir.absolute().parent.is_dir():
        raise UsageError(f"directory {out_dir.absolute().parent} does not exist (for --dataset-out {out_dir})")
    weights = None
    if class_weights is not None:
        try:
            weights = [float(w) for w in class_weights.split(",")]
        except ValueError:
            raise UsageError(f"--class-weights {class_weights!r} is not a comma-separated list of numbers "
                             "(e.g. 1,1,2,1,1,1,1,1,1,1)") from None
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")

    from gancli.engine.device import resolve_device
    from gancli.fsutil import file_sha256
    from gancli.synthetic import class_counts, write_dataset

    g = source.load(device=resolve_device(device), ema=ema)
    k = g.num_classes
    if (class_ is not None or weights is not None) and not k:
        raise UsageError(f"--class and --class-weights need a conditional run (trained with --conditional); "
                         f"{source.label} is unconditional")
    try:
        counts = class_counts(num, k, class_, weights) if k else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    path = source.path
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    described = {"run": source.run_id, "checkpoint": str(path), "step": g.step,
                 "sha256": file_sha256(path) if path.is_file() else {p.name: file_sha256(p) for p in files},
                 "weights": "ema" if g.uses_ema else "raw", "kind": "bundle" if path.is_dir() else "checkpoint"}
    with console.progress_bar() as bar:
        task = bar.add_task(f"writing {out_dir}", total=num)
        try:
            manifest = write_dataset(g, out_dir, counts, seed, described, n=num, batch_size=batch_size,
                                     progress=lambda done, total: bar.update(task, completed=done))
        except KeyboardInterrupt:
            console.error(f"interrupted: nothing was written to {out_dir}/")
            raise typer.Exit(130) from None
        except FileExistsError:
            raise UsageError(f"--dataset-out {out_dir} was filled by something else meanwhile; nothing written") from None
    per = ", ".join(f"{c}: {n}" for c, n in manifest["per_class"].items() if n) if k else f"{num} unlabelled"
    console.info(f"wrote {num} images to {out_dir}/ ({per}; {described['kind']} {path.name}, "
                 f"{'EMA' if g.uses_ema else 'raw'} G, seed {seed}) and {out_dir / 'manifest.json'}")
    if as_json:
        console.emit_json({"dataset": str(out_dir), "num_images": num, "per_class": manifest["per_class"],
                           "manifest": console.file_record(out_dir / "manifest.json"), "seed": seed,
                           "source": str(path), "step": g.step, "ema": bool(g.uses_ema)})
