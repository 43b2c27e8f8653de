"""``gan sample``: draw images from a trained generator."""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source
from gancli.errors import UsageError

#: The images of one ``gan sample`` are held in memory as float32: at most this many bytes.
MAX_SAMPLE_BYTES = 4 * 2**30


@handles_errors
def sample(
    ctx: typer.Context,
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file, "
                              "or a bundle folder from `gan export --format safetensors`."),
    num: int = typer.Option(64, "-n", "--num", help="Number of images."),
    output: Path = typer.Option(None, "-o", "--output", show_default=False,
                                help="Grid image file (.png, .jpg, .jpeg, .webp, .bmp), or a directory with --individual. "
                                "\\[default: <run>-step<S>.png]"),
    nrow: int = typer.Option(None, "--nrow", show_default=False, help="Images per grid row. \\[default: square]"),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents z; same seed = same images."),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", help="'latest' or a step number.",
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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (the files written, with "
                                 "their sha256) and nothing else there."),
) -> None:
    """Generate images from a run's generator (a square 8x8 grid for -n 64).

    Examples:

      gan sample latest -n 64 -o grid.png

      gan sample run-3 --checkpoint 2000 -n 100 --nrow 10 -o grid.png

      gan sample run-3 -n 16 -o out/ --individual

      gan sample run-5 --class-grid -o classes.png      (conditional runs)
    """
    console.json_mode(as_json)
    if num < 1:
        raise UsageError(f"-n must be >= 1, got {num}")
    if not 0 <= seed < 2**63 - 1:
        raise UsageError(f"--seed must be in [0, 2^63 - 2], got {seed}")
    if nrow is not None and nrow < 1:
        raise UsageError(f"--nrow must be >= 1, got {nrow}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="samples")
    ckpt_path, label = source.path, source.label
    if output is not None:
        if individual:
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
    if (class_ is not None or class_grid) and not k:
        raise UsageError("--class and --class-grid need a conditional run (trained with --conditional)")
    if class_ is not None and not 0 <= class_ < k:
        raise UsageError(f"--class {class_} is out of range; valid choices: 0..{k - 1}")
    labels = None  # random classes for a conditional G (Generator.sample draws them from seed + 1)
    if class_grid:
        nrow = nrow or 8
        num = k * nrow
        labels = grid_labels(k, nrow)
    elif class_ is not None:
        labels = class_
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
