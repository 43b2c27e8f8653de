"""``gan export``: write a run's generator as ONNX, TorchScript, an ExportedProgram or a
safetensors bundle, and verify the result."""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_names, complete_run, handles_errors, resolve_generator_source
from gancli.export import FORMATS, check_options, check_output, default_output, format_for, require_packages


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


@handles_errors
def export(
    ctx: typer.Context,
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file, "
                              "or a bundle folder."),
    format_: str = typer.Option(None, "--format", "-f", show_default=False,
                                autocompletion=complete_names(lambda: FORMATS.names()), help="Export format: " + ", ".join(
        f"{e.name} ({e.obj.suffix or 'a folder'})" for e in FORMATS) + ". \\[default: from -o's suffix, else onnx]"),
    output: Path = typer.Option(None, "-o", "--output", show_default=False,
                                help="Output file (.onnx, .pt, .pt2) or, for safetensors, folder. "
                                "\\[default: <run>-step<S> + the format's suffix]"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c",
                                   help="'latest', 'best' (kept by gan train --eval-every), a step number or damaged/step-N (set aside by a resume).",
                                   autocompletion=complete_checkpoint),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Export the EMA generator when the run has one."),
    uint8: bool = typer.Option(False, "--uint8",
                               help="Graph formats: output uint8 images in [0, 255] (converted in the graph, "
                               "rounded as `gan sample` does) instead of float32 in [-1, 1]."),
    verify: bool = typer.Option(True, "--verify/--no-verify",
                                help="Reload the artifact and compare it with the PyTorch generator at batch "
                                "sizes 1 and 7 (max abs difference <= 1e-4, or 1 level with --uint8); a "
                                "translator at batch size 1 at the training size and 3 at an odd larger size."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file or non-empty folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (files written with their "
                                 "sha256, metadata, verification) and nothing else there."),
) -> None:
    """Export a run's generator for inference without gancli, and verify the export.

    Every graph format maps z (N, nz) float32 [+ labels (N,) int64 for conditional
    runs] to images (N, C, H, W) with a dynamic batch N, and carries metadata (nz,
    classes, image shape, value range, source run and step, EMA).

    An image-to-image run (gan train --task inpaint ...) exports its translator:
    source (N, in_channels, H, W) -> images (N, C, H, W) in [-1, 1] at any H and W,
    verified at the training size and at an odd larger one; its safetensors bundle
    keeps the task and its options (gancli.translate.load.load_translator reads it).

    Examples:

      gan export latest --format onnx -o mnist.onnx

      gan export run-3 --format onnx --uint8 -o mnist-u8.onnx

      gan export run-3 --format exported-program --checkpoint 2000 -o g.pt2

      gan export run-3 --format safetensors -o mnist-g/      (then: gan sample mnist-g/)
    """
    console.json_mode(as_json)
    format_ = format_ or format_for(output)
    check_options(format_, uint8)
    if output is not None:
        check_output(format_, output, force)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="generator")
    require_packages(format_, verify)

    from gancli.translate.load import translation_task

    provenance = {"source_run": source.run_id, "source_checkpoint": source.path.name}
    if translation_task(source.path) is not None:
        with console.phase(f"exporting {format_}" + (" and verifying" if verify else "")):
            result = _export_translator(source, format_, output, ema=ema, uint8=uint8, verify=verify, force=force,
                                        provenance=provenance)
    else:
        from gancli.export.core import export_generator

        g = source.load(device="cpu", ema=ema)
        if output is None:
            output = default_output(format_, source.label, g.step)
            check_output(format_, output, force)
        with console.phase(f"exporting {format_}" + (" and verifying" if verify else "")):
            result = export_generator(g, format_, output, uint8=uint8, verify=verify, force=force, source=provenance)

    m = result.metadata
    what = f"{source.run_id or source.path.name}" + (f" step {m['step']}" if m["step"] is not None else "")
    shape = ", ".join(map(str, m["image_shape"])) if "image_shape" in m else f"{m['img_channels']}, H, W"
    images = f"images (N, {shape}) {m['dtype']} in [{m['value_range'][0]}, {m['value_range'][1]}]"
    if m.get("kind") == "translator":
        inputs = (f"--task {m['task']} source (N, {m['in_channels']}, H, W) float32 in [-1, 1], any H and W"
                  + (" (its known pixels kept)" if m["keeps_known"] else ""))
    else:
        inputs = f"z (N, {m['nz']}) float32" + (f", labels (N,) int64 in [0, {m['num_classes']})" if m["num_classes"] else "")
    console.info(f"wrote {result.path} ({format_}, {_human_bytes(result.bytes)}, exported in {result.export_seconds:.2f}s"
                 f" with {'; '.join(result.notes)})")
    console.info(f"  from {what}, {'EMA' if m['ema'] else 'raw'} G: {inputs} -> {images}")
    if result.max_abs_diff is None:
        console.info("  not verified (--no-verify)")
    else:
        sizes = " and ".join(map(str, result.batch_sizes))
        if result.sizes:
            sizes += " (" + " and ".join(f"{h} x {w}" for h, w in result.sizes) + " px)"
        if uint8:
            diff, limit = f"{result.max_abs_diff:.0f} levels", f"{result.tolerance:.0f} level"
        else:
            diff, limit = f"{result.max_abs_diff:.2g}", f"{result.tolerance:.0e}".replace("e-0", "e-")
        console.info(f"  verified with {result.verified_with} at batch sizes {sizes}: max abs difference {diff} "
                     f"(limit {limit})")
    if as_json:
        path = Path(result.path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        console.emit_json({"path": str(path), "format": format_, "bytes": result.bytes,
                           "files": [console.file_record(p) for p in files], "metadata": m,
                           "export_seconds": result.export_seconds, "verified_with": result.verified_with,
                           "max_abs_diff": result.max_abs_diff, "tolerance": result.tolerance,
                           "batch_sizes": list(result.batch_sizes), "sizes": [list(s) for s in result.sizes]})


def _export_translator(source, format_: str, output: Path | None, *, ema: bool, uint8: bool, verify: bool,
                       force: bool, provenance: dict):
    """Export the translator of an image-to-image run's checkpoint or bundle."""
    from gancli.export.core import export_translator
    from gancli.translate.load import load_translator

    t = load_translator(source.path, device="cpu", ema=ema)
    if output is None:
        output = default_output(format_, source.label, t.step)
        check_output(format_, output, force)
    result = export_translator(t, format_, output, uint8=uint8, verify=verify, force=force, source=provenance)
    return result
