"""``gan translate``: run an image-to-image run's generator on image files or folders and write
PNGs at each input's own size (the library half: :mod:`gancli.translate.apply`)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source
from gancli.errors import UsageError

#: the defaults of --tile and --overlap (restated from gancli.translate.apply, which imports torch;
#: a test checks they agree)
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32


def _check_tiles(tile: int, overlap: int) -> None:
    if tile < 0:
        raise UsageError(f"--tile {tile} is not valid; valid choices: 0 (no tiles) or a side in pixels")
    if overlap < 0 or (tile and overlap > tile // 2):
        raise UsageError(f"--overlap {overlap} is not valid; valid choices: 0 to {tile // 2} (half of --tile {tile})"
                         if tile else f"--overlap {overlap} is not valid; valid choices: 0 or more pixels")


def _check_output(output: Path, single: bool) -> None:
    """A file -o is replaced (as ``gan sample``'s grid); a folder -o must be new or empty (as
    ``gan sample --individual``'s): nothing in it is overwritten."""
    if not output.parent.is_dir():
        raise UsageError(f"directory {output.parent} does not exist (for -o {output})")
    if single:
        if output.is_dir():
            raise UsageError(f"-o {output} is a folder; give a .png file name or a folder without a suffix")
        return
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output} is a file; several inputs need a folder")
    if output.is_dir() and any(output.iterdir()):
        raise UsageError(f"-o {output} already holds files; give a new or empty folder (nothing is overwritten)")


@contextmanager
def _nothing_written_if_interrupted(out_dir: Path):
    try:
        yield
    except KeyboardInterrupt:
        console.error(f"interrupted: nothing was written to {out_dir}/")
        raise typer.Exit(130) from None


@handles_errors
def translate(
    ctx: typer.Context,
    run: str = typer.Argument(..., metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file of an "
                              "image-to-image run (gan train --task ...), or its bundle folder (gan export --format "
                              "safetensors)."),
    inputs: list[Path] = typer.Argument(..., metavar="INPUT", show_default=False,
                                        help="Image files, or folders (their images at any depth)."),
    output: Path = typer.Option(..., "-o", "--output", show_default=False,
                                help="A folder (new or empty; created), or a .png file for one input file (replaced)."),
    mask: Path = typer.Option(None, "--mask", metavar="PNG", show_default=False,
                              help="Inpaint runs: the holes, white = hole, the size of each input."),
    corrupt: bool = typer.Option(False, "--corrupt", help="The inputs are clean images: apply the run's training "
                                 "corruption (holes, downscaling, noise, luma, edges) first; the clean input is the "
                                 "target (--compare, --json's PSNR / SSIM)."),
    seed: int = typer.Option(0, "--seed", help="--corrupt: seed of the random corruptions (holes, noise); image k "
                             "of the command gets (seed, k)."),
    compare: bool = typer.Option(False, "--compare", help="Also write <name>-compare.png: input | output | target "
                                 "(target with --corrupt)."),
    direction: str = typer.Option(None, "--direction", metavar="a2b|b2a", show_default=False,
                                  help="Unpaired (CycleGAN) runs: translate domain A to B or B to A. \\[default: a2b]"),
    tile: int = typer.Option(DEFAULT_TILE, "--tile", help="Images with a side above this many pixels are translated "
                             "in overlapping tiles of this side (a multiple of the generator's); 0 = never tile."),
    overlap: int = typer.Option(None, "--overlap", show_default=False, help="Pixels shared by neighbouring tiles, "
                                f"blended across (0 to --tile / 2). \\[default: {DEFAULT_OVERLAP}, at most --tile / 2]"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c",
                                   help="'latest', 'best' (kept by gan train --eval-every), a step number or damaged/step-N (set aside by a resume).",
                                   autocompletion=complete_checkpoint),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Use the EMA generator when the run has one."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (each input with its output, "
                                 "sizes and, with --corrupt, PSNR / SSIM) and nothing else there."),
) -> None:
    """Translate images with an image-to-image run: repair, super-resolve, color...

    Each output has its input's own size (superres: the run's --scale times it,
    unless --corrupt). See docs/cli.md#gan-translate.

    Examples:

      gan translate run-3 photo.png --mask holes.png -o repaired.png      (inpaint)

      gan translate run-3 digits/ --corrupt --compare -o out/      (training holes on clean images)

      gan translate run-4 small/ -o large/      (superres: 4x the input's size for --scale 4)
    """
    console.json_mode(as_json)
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, max(tile, 0) // 2)
    _check_tiles(tile, overlap)
    if mask is not None and not mask.is_file():
        raise UsageError(f"--mask {mask} does not exist")
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="translated")

    from gancli.engine.device import resolve_device
    from gancli.fsutil import atomic_dir
    from gancli.translate import apply
    from gancli.translate.load import load_translator

    jobs, single = apply.plan(inputs, output, compare)
    _check_output(output, single)
    tr = load_translator(source.path, device=resolve_device(device), ema=ema, direction=direction)
    apply.check_options(tr, mask=mask, corrupt=corrupt, label=source.run_id or str(source.path))
    if tile % tr.multiple:
        raise UsageError(f"--tile {tile} is not a multiple of this generator's {tr.multiple} px; valid choices: 0 "
                         f"(no tiles) or {tr.multiple}, {2 * tr.multiple}, {3 * tr.multiple}...")
    if tile and overlap and tile - overlap < tr.multiple:
        raise UsageError(f"--tile {tile} cannot overlap: tiles start at multiples of this generator's {tr.multiple} px; "
                         f"valid choices: --tile {2 * tr.multiple} or more, or --overlap 0")
    options = dict(mask=mask, corrupt=corrupt, seed=seed, tile=tile, overlap=overlap)
    if single:
        written = apply.translate_files(tr, jobs, **options)
        where = str(output)
    else:
        with console.progress_bar() as bar, _nothing_written_if_interrupted(output), atomic_dir(output) as tmp:
            task = bar.add_task(f"translating into {output}", total=len(jobs))
            written = apply.translate_files(tr, jobs, tmp, progress=lambda done: bar.update(task, completed=done),
                                            **options)
        where = f"{output}/"

    def out_path(rel: Path) -> Path:
        return rel if single else output / rel

    what = f"{source.run_id or source.path.name} step {tr.step}, {'EMA' if tr.uses_ema else 'raw'} G, {tr.task}"
    tiled = sum(w.tiled for w in written)
    means = apply.describe(written)
    notes = [what]
    if tiled:
        notes.append(f"{tiled} in {tile}-px tiles")
    if corrupt:
        figures = ", ".join(f"{k.upper()} {v:.4g}" + (" dB" if k == "psnr" else "") for k, v in means.items()
                            if v is not None)
        notes.append(f"--corrupt seed {seed}" + (f": mean {figures} against the clean inputs" if figures else ""))
    if single:
        w = written[0]
        console.info(f"wrote {output} ({w.output_size[0]}x{w.output_size[1]} from {w.job.source}, "
                     f"{w.input_size[0]}x{w.input_size[1]}; {'; '.join(notes)})")
    else:
        console.info(f"wrote {len(written)} image{'s' if len(written) != 1 else ''} to {where} ({'; '.join(notes)})")
    if compare:
        console.info(f"  with input | output{' | target' if corrupt else ''} strips: <name>-compare.png")
    if as_json:
        files = []
        for w in written:
            rec = {"input": str(w.job.source), "output": str(out_path(w.job.output)),
                   "input_size": list(w.input_size), "output_size": list(w.output_size), "tiled": w.tiled}
            if w.job.compare is not None:
                rec["compare"] = str(out_path(w.job.compare))
            rec.update(w.quality)
            files.append(rec)
        console.emit_json({"run": source.run_id, "checkpoint": str(source.path), "step": tr.step,
                           "ema": bool(tr.uses_ema), "task": tr.task, "direction": direction,
                           "output": str(output), "corrupt": corrupt, "seed": seed if corrupt else None,
                           "mask": str(mask) if mask is not None else None, "tile": tile, "overlap": overlap,
                           "files": files, "mean": means if corrupt else None})
