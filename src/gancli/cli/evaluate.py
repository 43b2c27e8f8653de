"""``gan evaluate``: FID / KID / IS / precision-recall, the offline MNIST protocol, or CAS; on an
image-to-image run, its repair figures beside the baselines.

Parses the options, calls :mod:`gancli.metrics.run_eval` (or :mod:`gancli.metrics.run_cas`, or
:mod:`gancli.metrics.translation_eval` for a translation run), prints the report.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source, state
from gancli.errors import UsageError
from gancli.units import fmt_duration


@handles_errors
def evaluate(
    ctx: typer.Context,
    run: str = typer.Argument("latest", metavar="RUN", autocompletion=complete_run,
                              help="run-N, N, latest, a run directory, a checkpoint .safetensors file or a bundle folder."),
    fid: bool = typer.Option(False, "--fid", help="Fréchet distance (FID; FD-LeNet under --protocol lenet)."),
    kid: bool = typer.Option(False, "--kid", help="Kernel Inception Distance (unbiased MMD², 100 subsets x 1000)."),
    is_: bool = typer.Option(False, "--is", help="Inception Score (classifier IS under --protocol lenet), 10 splits."),
    pr: bool = typer.Option(False, "--pr", help="Precision and recall, k = 3 nearest neighbours."),
    protocol: str = typer.Option(None, "--protocol", show_default=False,
                                 help="lenet (offline, MNIST) or inception. \\[default: lenet for mnist runs, else inception]"),
    real: str = typer.Option(None, "--real", show_default=False,
                             help="Reference images: DATASET[:split] or an image folder. "
                             "\\[default: the run's dataset, train split]"),
    fake: str = typer.Option(None, "--fake", show_default=False,
                             help="Generated images: a run (as RUN) or an image folder; overrides RUN."),
    num_samples: int = typer.Option(None, "--num-samples", "-n", show_default=False,
                                    help="Images to generate (folders: all images). \\[default: 50,000; --fast: 10,000]"),
    fast: bool = typer.Option(False, "--fast", help="10,000 generated images: about 5x quicker, and Fréchet distances "
                              "biased upward (compare only values of the same N)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Images per forward pass (Inception: at most 64)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents (as gan sample) and of KID / IS subsets."),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", help="'latest', 'best', a step number or damaged/step-N (set aside by a resume).",
                                   autocompletion=complete_checkpoint),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Use the EMA generator when the run has one."),
    inception_weights: str = typer.Option(None, "--inception-weights", show_default=False,
                                          help="InceptionV3 weights file (weights-inception-2015-12-05-6726825d.pth). "
                                          "\\[default: $GANCLI_INCEPTION_WEIGHTS, the torch hub cache, or download]"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the reference statistics instead of using the cache."),
    cas: bool = typer.Option(False, "--cas", help="Classification Accuracy Score (conditional MNIST-family runs): a "
                             "LeNet trained on -n generated images (default 10,000), tested on the real test split, "
                             "next to the same LeNet trained on as many real images."),
    cas_epochs: int = typer.Option(10, "--cas-epochs", help="--cas: passes over the classifier's training images."),
    cas_mix: float = typer.Option(None, "--cas-mix", show_default=False,
                                  help="--cas: train on real + generated images, this fraction generated (0 <= R < 1), "
                                  "against the real images alone for as many steps."),
    cas_real_limit: int = typer.Option(None, "--cas-real-limit", show_default=False,
                                       help="--cas-mix: the real labelled images M. \\[default: -n]"),
    baseline: str = typer.Option(None, "--baseline", show_default=False, autocompletion=complete_run,
                                 help="Image-to-image runs: another run of the same task, options and dataset "
                                 "(e.g. trained with --adv-weight 0) scored beside RUN on the same inputs."),
    pairs: Path = typer.Option(None, "--pairs", metavar="DIR", show_default=False,
                               help="Paired and unpaired runs: test pairs, inputs in DIR/A and targets in DIR/B "
                               "(or testA/ testB/) matched by file name. \\[default: the test split of the run's "
                               "dataset folder: testA/ + testB/, test/]"),
    direction: str = typer.Option(None, "--direction", metavar="a2b|b2a", show_default=False,
                                  help="Unpaired (CycleGAN) runs: score A -> B (inputs A, targets B) or B -> A. "
                                  "\\[default: a2b]"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else."),
) -> None:
    """Score a generator: FD-LeNet + IS + mode coverage (MNIST), or FID / KID / IS / PR.

    Every number is printed with its protocol (feature extractor, weights sha256,
    resize, N generated / reference, reference split, EMA or raw weights, step,
    seed) and appended to the run's metrics.jsonl.

    Examples:

      gan evaluate latest --json

      gan evaluate run-3 --fid --kid --protocol inception -n 50000

      gan evaluate --fake samples/ --real cifar10:train --fid

      gan evaluate run-5 --cas                          (conditional MNIST runs)

      gan evaluate run-5 --cas --cas-mix 0.9 --cas-real-limit 1000

      gan evaluate run-7 --baseline run-8               (image-to-image runs: PSNR, SSIM, L1, FD)

      gan evaluate run-9 --direction b2a                (unpaired runs: on testB/ -> testA/)
    """
    from gancli.engine.device import resolve_device
    from gancli.metrics import run_cas, run_eval
    from gancli.metrics.evaluate import DEFAULT_METRICS, METRICS
    from gancli.metrics.translation_eval import TranslationEvalSettings, evaluate_translation
    from gancli.translate.load import translation_task

    from gancli.seeding import check_seed

    console.json_mode(as_json)
    check_seed(seed)  # before RUN is resolved: a bad value is named first, as in gan sample
    st = state(ctx)
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="generator") if fake is None else None
    if source is not None and translation_task(source.path) is not None:  # a checkpoint or a bundle
        _refuse_generation_options(ctx, source.run_id or source.label)
        settings = TranslationEvalSettings(num=num_samples, batch_size=batch_size, seed=seed, ema=ema,
                                           protocol=protocol, inception_weights=inception_weights)
        base = resolve_generator_source(ctx, baseline, "latest", fallback_label="baseline") if baseline else None
        with console.phase(f"evaluating {source.run_id or source.label}"):
            report = evaluate_translation(source.path, settings, data_root=st.data_path, device=device, real=real,
                                          baseline=None if base is None else base.path, run=_run_of(ctx, source),
                                          run_id=source.run_id or source.label,
                                          baseline_id=None if base is None else base.label, pairs=pairs,
                                          direction=direction, warn=console.warn,
                                          on_download=lambda url, dst: console.err.print(f"downloading {url} -> {dst}",
                                                                                         soft_wrap=True))
        if as_json:
            console.emit_json(report.doc)
        else:
            _print_translation(report)
        return
    for flag, value in (("--pairs", pairs), ("--direction", direction), ("--baseline", baseline)):
        if value is not None:
            raise UsageError(f"{flag} applies to image-to-image runs (gan train --task inpaint|superres|...); "
                             f"{source.label if source is not None else fake} draws images from noise")
    if cas or cas_mix is not None or cas_real_limit is not None:
        if not cas:
            raise UsageError("--cas-mix and --cas-real-limit go with --cas")
        if fid or kid or is_ or pr or fast or real is not None or fake is not None or protocol is not None:
            raise UsageError("--cas runs alone: give --fid / --kid / --is / --pr / --fast / --real / --fake / --protocol "
                             "in another gan evaluate command")
        cas_settings = run_cas.CasSettings(num=run_cas.CAS_SAMPLES if num_samples is None else num_samples,
                                           epochs=cas_epochs, mix=cas_mix, real_limit=cas_real_limit, seed=seed,
                                           batch_size=batch_size, ema=ema, use_cache=not no_cache)
        with console.progress_bar(transient=True) as bar:
            report = run_cas.evaluate_cas(source.path, cas_settings, data_root=st.data_path, device=device,
                                          run=_run_of(ctx, source), run_id=source.run_id, label=source.label,
                                          home=st.home_path, progress=_progress(bar, "CAS: "))
        if as_json:
            console.emit_json(report.doc)
        else:
            _print_cas(report, source.label, cas_settings)
        return
    if fast and num_samples is not None:
        raise UsageError("give --fast or -n, not both (--fast is -n 10000)")
    chosen = tuple(m for m, on in zip(METRICS.names(), (fid, kid, is_, pr)) if on)
    if num_samples is None:
        num_samples = run_eval.FAST_SAMPLES if fast else run_eval.DEFAULT_SAMPLES
    settings = run_eval.EvalSettings(metrics=chosen or DEFAULT_METRICS, protocol=protocol, num_samples=num_samples,
                                     batch_size=batch_size, seed=seed, ema=ema, use_cache=not no_cache,
                                     inception_weights=inception_weights)
    common = dict(data_root=st.data_path, device=resolve_device(device), home=st.home_path, warn=console.warn,
                  on_download=lambda url, dst: console.err.print(f"downloading {url} -> {dst}", soft_wrap=True))
    with console.progress_bar(transient=True) as bar:
        common["progress"] = _progress(bar)
        if fake is not None and Path(fake).is_dir() and not (Path(fake) / "config.json").exists():
            report = run_eval.evaluate_folder(fake, real, settings, **common)
        else:
            if source is None:
                source = resolve_generator_source(ctx, fake, checkpoint, fallback_label="generator")
            report = run_eval.evaluate_generator(source.path, settings, real=real, run=_run_of(ctx, source),
                                                 run_id=source.run_id, **common)
    if as_json:
        console.emit_json(report.doc)
    else:
        _print_table(report)


#: Options of generation evaluation that an image-to-image run does not take (parameter -> flag).
_GENERATION_ONLY = {"kid": "--kid", "is_": "--is", "pr": "--pr", "fake": "--fake", "fast": "--fast",
                    "no_cache": "--no-cache", "cas": "--cas", "cas_epochs": "--cas-epochs", "cas_mix": "--cas-mix",
                    "cas_real_limit": "--cas-real-limit"}


def _refuse_generation_options(ctx: typer.Context, label: str) -> None:
    """UsageError naming the options given (set to other than their defaults) that only generation runs take."""
    defaults = {p.name: p.default for p in ctx.command.params}
    given = [flag for name, flag in _GENERATION_ONLY.items() if ctx.params.get(name) != defaults.get(name)]
    if given:
        raise UsageError(f"{label} is an image-to-image run: {', '.join(given)} apply to generation runs only; "
                         "it takes --baseline, --real, --pairs, --direction, -n, --protocol, --seed, --batch-size, --checkpoint, "
                         "--ema/--no-ema, --inception-weights, --device and --json (FD is always computed)")


def _print_translation(report) -> None:
    """The rows (run, identity, baseline, real) x figures table and the protocol line."""
    from rich.table import Table

    from gancli.metrics.catalog import higher_is_better

    doc, p = report.doc, report.doc["protocol"]
    rows = doc["rows"]
    names = list(dict.fromkeys(k for r in rows.values() for k in r))
    run = doc["run"]
    table = Table(title=f"{run['run']} step {run['step']}, {run['weights']} G: {doc['task']} "
                  f"({', '.join(f'{k} {v}' for k, v in doc['options'].items()) or 'no options'})",
                  title_justify="left", box=None, pad_edge=False, header_style="bold")
    table.add_column("row", no_wrap=True)
    for name in names:
        table.add_column(f"{name} {'↑' if higher_is_better(name) else '↓'}", justify="right", no_wrap=True)
    pairs = p.get("pairs") is not None
    what = {"run": "G's output", "identity": "the input" if pairs else "the corrupted input",
            "real": "the targets" if pairs else "the clean targets",
            "baseline": f"--baseline {doc['baseline']['run']}" if doc["baseline"] else ""}
    for row, figures in rows.items():
        cells = ["" if name not in figures else ("inf" if figures[name] is None else f"{figures[name]:.4f}")
                 for name in names]
        table.add_row(f"{row} ({what[row]})", *cells)
    console.out.print(table)
    images = p["images"]
    where = (f"{images['dataset']}:{images['split']}" if "dataset" in images else f"folder {images.get('folder')}")
    fd = p["fd"]
    if pairs:
        images_s = (f"{p['num']:,} test pairs of {p['pairs']}" + (f", {p['direction']}" if p["direction"] else "")
                    + f": {images['inputs']} -> {images['targets']}")
    else:
        images_s = (f"{p['num']:,} clean images of {where}, corrupted as in training at seed {p['corruption_seed']} "
                    f"(derive_seed({p['seed']}, \"eval-corrupt\")), {p['corrupt_chunk']} per chunk")
    console.info(f"protocol: {images_s}"
                 + (f"; {fd['metric']}: {fd['feature_extractor']}, weights sha256 {fd['weights_sha256'][:12]}..."
                    if fd else "") + f"; {fmt_duration(report.seconds)}")
    if doc.get("metrics_file"):
        console.info(f"appended to {doc['metrics_file']}")


def _run_of(ctx: typer.Context, source):
    """The run a generator source belongs to (its metrics.jsonl gets the record); None when none."""
    if source.run is not None or source.run_id is None:
        return source.run
    try:
        return state(ctx).store().resolve(source.run_id)
    except UsageError:
        return None


def _progress(bar, prefix: str = ""):
    """``progress(phase, done, total)`` drawing one bar per phase on ``bar``, named ``prefix + phase``."""
    tasks: dict[str, object] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(prefix + phase, total=total)
        bar.update(tasks[phase], completed=done)

    return progress


def _table(title: str, rows):
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("how to read it")
    for row in rows:
        table.add_row(*row)
    console.out.print(table)


def _print_cas(report, label: str, settings) -> None:
    from gancli.metrics.catalog import reading

    doc, p = report.doc, report.result.results[0]["protocol"]
    _table(f"{label} step {doc['step']}, {p['generated']['weights']} G",
           [(name, f"{value:.4f}", reading(name)) for name, value in report.result.values.items()])
    tr, mix = p["train"], settings.mix
    what = f"{tr['generated']:,} generated" if mix is None else f"{tr['real']:,} real + {tr['generated']:,} generated (R = {mix})"
    console.info(f"protocol cas (Ravuri & Vinyals 2019): LeNet-MNIST recipe, {what}, {tr['steps']} steps "
                 f"({settings.epochs} epochs), tested on {p['test']['num']:,} real {p['test']['dataset']} test images; "
                 f"seed {settings.seed}; real baseline {doc['baseline_cache']}; {fmt_duration(report.seconds)}")
    if doc.get("metrics_file"):
        console.info(f"appended to {doc['metrics_file']}")


def _print_table(report) -> None:
    from gancli.metrics.catalog import reading

    p = report.result.protocol
    gen = p["generated"]
    title = (f"{gen.get('run') or gen.get('folder')}" + (f" step {gen['step']}" if gen.get("step") is not None else "")
             + (f", {gen['weights']} G" if gen.get("weights") else ""))
    rows = []
    for r in report.result.results:
        v, detail = r["value"], reading(r["metric"])
        if "std" in r:
            detail = f"± {r['std']:.4g}; {detail}"
        if r["metric"] == "classes_covered":
            detail = (f"of {len(r['histogram'])}; KL(gen || uniform) {r['kl_to_uniform']:.4f} nats; {detail}; "
                      f"histogram {' '.join(map(str, r['histogram']))}")
        rows.append((r["metric"], f"{v:.4f}" if isinstance(v, float) else str(v), detail))
    _table(title, rows)
    ref = p["reference"]
    ref_s = f"{ref['dataset']}:{ref['split']}" if "dataset" in ref else ref.get("folder", "?")
    console.info(f"protocol {p['protocol']}: {p['feature_extractor']}, weights sha256 {p['weights_sha256'][:12]}..., "
                 f"resize {p['resize']}; {p['num_generated']:,} generated vs {p['num_reference']:,} reference "
                 f"({ref_s}); seed {p['seed']}; {fmt_duration(report.seconds)}")
    if report.doc.get("metrics_file"):
        console.info(f"appended to {report.doc['metrics_file']}")
