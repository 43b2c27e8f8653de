"""``gan evaluate``: FID / KID / IS / precision-recall, or the offline MNIST protocol."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import typer

from gancli import console
from gancli.cli.common import complete_checkpoint, complete_run, handles_errors, resolve_generator_source, state
from gancli.config import MAX_SEED
from gancli.errors import UsageError


def _split_ref(value: str) -> tuple[str, str | None]:
    """``mnist:test`` -> ("mnist", "test"); ``mnist`` -> ("mnist", None)."""
    name, _, split = value.partition(":")
    return name, (split or None)


def _real_source(ctx: typer.Context, real: str | None, train_data, channels: int, resolution: int):
    """The reference images: ``--real`` (a folder, or DATASET[:split]) or the run's training
    dataset (``train`` split, all of it). Returns ``(source, dataset name or None)``."""
    from dataclasses import replace

    from gancli.config import DataConfig
    from gancli.data import load_split
    from gancli.metrics.evaluate import data_source

    data_root = state(ctx).data_path
    if real is not None and Path(real).is_dir():
        cfg = DataConfig(dataset=str(Path(real).resolve()), image_size=resolution, channels=channels)
        data = load_split(cfg, data_root)
        return data_source(data.images, {"folder": cfg.dataset}), None
    if real is not None:
        name, split = _split_ref(real)
        cfg = DataConfig(dataset=name, split=split or "train", image_size=resolution, channels=channels)
    elif train_data is not None:
        cfg = replace(train_data, split="train", limit=0, skip_bad_images=train_data.skip_bad_images)
    else:
        raise UsageError("this generator does not say what it was trained on; pass --real DATASET[:split] or --real DIR")
    data = load_split(cfg, data_root)
    if Path(cfg.dataset).is_dir():  # the run trained on an image folder
        return data_source(data.images, {"folder": cfg.dataset}), None
    return data_source(data.images, {"dataset": cfg.dataset, "split": cfg.split}, (cfg.dataset, cfg.split)), cfg.dataset


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
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", help="'latest', 'best' or a step number.",
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
    """
    import time

    from gancli.engine.device import resolve_device
    from gancli.metrics.evaluate import (
        METRICS,
        PROTOCOLS,
        EvalOptions,
        build_extractor,
        check_num_samples,
        data_source,
        default_protocol,
        generator_source,
    )
    from gancli.metrics.evaluate import (
        evaluate as run_evaluation,
    )

    t0 = time.perf_counter()
    if cas or cas_mix is not None or cas_real_limit is not None:
        if not cas:
            raise UsageError("--cas-mix and --cas-real-limit go with --cas")
        if fid or kid or is_ or pr or fast or real is not None or fake is not None or protocol is not None:
            raise UsageError("--cas runs alone: give --fid / --kid / --is / --pr / --fast / --real / --fake / --protocol "
                             "in another gan evaluate command")
        _evaluate_cas(ctx, run, checkpoint, num_samples, cas_epochs, cas_mix, cas_real_limit, seed, device, batch_size,
                      ema, no_cache, as_json)
        return
    if fast and num_samples is not None:
        raise UsageError("give --fast or -n, not both (--fast is -n 10000)")
    num_samples = num_samples if num_samples is not None else (FAST_SAMPLES if fast else DEFAULT_SAMPLES)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be in [0, 2^63 - 1], got {seed}")
    if protocol is not None and protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; valid choices: {', '.join(PROTOCOLS)}")
    chosen = tuple(m for m, on in zip(METRICS.names(), (fid, kid, is_, pr)) if on)
    metrics = chosen or ("fid", "is")
    dev = resolve_device(device)
    notes: list[str] = []

    # the generated side
    run_obj = None
    train_data = None
    reference = None  # (source, dataset name): loaded once
    if fake is not None and Path(fake).is_dir() and not (Path(fake) / "config.json").exists():
        from gancli.config import DataConfig
        from gancli.data import load_split

        if real is None:
            raise UsageError("--fake DIR needs --real DATASET[:split] or --real DIR to compare against")
        reference = _real_source(ctx, real, None, 0, 0)
        probe = reference[0]
        data = load_split(DataConfig(dataset=str(Path(fake).resolve()), image_size=probe.resolution,
                                     channels=probe.channels), state(ctx).data_path)
        fake_src = data_source(data.images, {"folder": str(Path(fake).resolve())})
        step = None
    else:
        from gancli.bundle import load_bundle
        from gancli.checkpoint import GENERATOR_PARTS, generator_from_checkpoint, load_checkpoint

        ref = fake if fake is not None else run
        source = resolve_generator_source(ctx, ref, checkpoint, fallback_label="generator")
        source_path, run_id = source.path, source.run_id
        check_num_samples(num_samples, metrics)  # before loading anything heavy
        if source_path.is_dir():  # a bundle: no training config inside
            G = load_bundle(source_path, device=dev, ema=ema)
        else:  # one read of the checkpoint: the generator and what it was trained on
            ckpt = load_checkpoint(source_path, device="cpu", prefixes=GENERATOR_PARTS)
            G = generator_from_checkpoint(ckpt, device=dev, ema=ema)
            train_data = ckpt.config.data
        step = G.step
        if run_id is not None:
            try:
                run_obj = state(ctx).store().resolve(run_id)
            except UsageError:
                run_obj = None
        if train_data is None and run_obj is not None:
            train_data = run_obj.read_config().data
        describe = {"run": run_id, "checkpoint": str(source_path), "step": step,
                    "weights": "ema" if G.uses_ema else "raw"}
        fake_src = generator_source(G, num_samples, seed, dev, describe)

    if reference is None:
        reference = _real_source(ctx, real, train_data, fake_src.channels, fake_src.resolution)
    real_src, ref_dataset = reference
    protocol = protocol or default_protocol(ref_dataset or "")
    warning = check_num_samples(fake_src.num, metrics)
    if warning:
        notes.append(warning)
    if protocol == "lenet":
        from gancli.metrics.evaluate import LeNetExtractor

        LeNetExtractor.check_shape(fake_src.channels, fake_src.resolution)
    extractor = build_extractor(protocol, dev, batch_size, inception_weights,
                                on_download=lambda url, dst: console.err.print(f"downloading {url} -> {dst}", soft_wrap=True))
    for n in notes:
        console.warn(n)
    result = run_evaluation(fake_src, real_src, extractor,
                            EvalOptions(protocol=protocol, metrics=metrics, batch_size=batch_size, seed=seed,
                                        use_cache=not no_cache, home=state(ctx).home_path))
    seconds = time.perf_counter() - t0
    doc = {"step": step, **result.values, "results": result.results, "seconds": round(seconds, 2),
           "reference_cache": {True: "hit", False: "miss", None: "off"}[result.cache_hit]}
    if run_obj is not None:
        record = {"kind": "eval", "step": step if step is not None else 0,
                  **{k: round(v, 6) for k, v in result.values.items()},
                  "results": result.results,
                  "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        run_obj.append_metrics(record)
        doc["metrics_file"] = str(run_obj.metrics_path)
    if as_json:
        print(json.dumps(doc))
        return
    _print_table(result, seconds, doc.get("metrics_file"))


#: ``-n`` of ``gan evaluate``, and of ``--fast``.
DEFAULT_SAMPLES, FAST_SAMPLES = 50_000, 10_000
#: ``-n`` of ``gan evaluate --cas``: generated images the classifier trains on.
CAS_SAMPLES = 10_000

#: How to read each metric: direction and reference points (docs/metrics.md), by metric name.
READING = {
    "fd_lenet": "lower is better; real MNIST ~0.5, README job ~5.9, dcgan-classic ~72, noise ~620",
    "is_lenet": "higher is better, at most 10; real MNIST 9.77",
    "kid_lenet": "lower is better; 0 = same distribution",
    "precision_lenet": "higher is better, in [0, 1]: share of samples that look real",
    "recall_lenet": "higher is better, in [0, 1]: share of real data covered",
    "fid": "lower is better; 0 = same distribution (e.g. StyleGAN2 CIFAR-10 ~3, DCGAN ~30-40)",
    "kid": "lower is better; 0 = same distribution",
    "is": "higher is better (CIFAR-10 real data ~11.2)",
    "precision": "higher is better, in [0, 1]: share of samples that look real",
    "recall": "higher is better, in [0, 1]: share of real data covered",
    "classes_covered": "higher is better; KL 0 = as even as uniform",
    "class_accuracy": "higher is better: the class asked for is the class seen",
    "cas": "higher is better: real test accuracy of a LeNet trained on generated images only",
    "cas_real": "the same LeNet trained on as many real images (the ceiling CAS is read against)",
    "cas_ratio": "cas / cas_real: 1 = generated data teaches as much as real, ~0.1 = labels ignored",
    "cas_mix": "real test accuracy of a LeNet trained on real + generated images",
    "cas_real_only": "the same LeNet, same steps, on the real images alone",
    "cas_mix_gain": "cas_mix - cas_real_only: > 0 = the generated images helped",
}

#: Datasets --cas knows the test split of (1x28x28, 10 classes: the LeNet's input and output).
CAS_DATASETS = ("mnist", "fashion-mnist")


def _evaluate_cas(ctx: typer.Context, run: str, checkpoint: str, num: int | None, epochs: int, mix: float | None,
                  real_limit: int | None, seed: int, device: str, batch_size: int, ema: bool, no_cache: bool,
                  as_json: bool) -> None:
    """``gan evaluate --cas``: see :mod:`gancli.metrics.cas`."""
    import time
    from dataclasses import replace

    import torch

    from gancli.checkpoint import GENERATOR_PARTS, generator_from_checkpoint, load_checkpoint
    from gancli.data import load_split
    from gancli.engine.device import resolve_device
    from gancli.metrics.cas import classification_accuracy_score
    from gancli.seeding import derive_seed, latents

    t0 = time.perf_counter()
    num = CAS_SAMPLES if num is None else num
    if num < 128:
        raise UsageError(f"-n {num} is too few for --cas; valid choices: -n >= 128 (one classifier batch)")
    if epochs < 1:
        raise UsageError(f"--cas-epochs must be >= 1, got {epochs}")
    if mix is not None and not 0 <= mix < 1:
        raise UsageError(f"--cas-mix {mix} is out of range; valid choices: 0 <= R < 1 (the generated fraction)")
    if real_limit is not None and mix is None:
        raise UsageError("--cas-real-limit goes with --cas-mix (plain --cas uses -n real images for its baseline)")
    if real_limit is not None and real_limit < 1:
        raise UsageError(f"--cas-real-limit must be >= 1, got {real_limit}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    source = resolve_generator_source(ctx, run, checkpoint, fallback_label="generator")
    if source.path.is_dir():
        raise UsageError(f"--cas needs a run or checkpoint (it reads the training dataset from it), not the bundle {source.path}")
    dev = resolve_device(device)
    ckpt = load_checkpoint(source.path, device="cpu", prefixes=GENERATOR_PARTS)
    G = generator_from_checkpoint(ckpt, device=dev, ema=ema)
    data_cfg = ckpt.config.data
    if not G.num_classes:
        raise UsageError(f"--cas needs labels: {source.label} is unconditional; train a conditional run "
                         "(gan train --conditional) and evaluate that")
    if data_cfg.dataset not in CAS_DATASETS or G.num_classes != 10 or (G.img_channels, G.img_resolution) != (1, 28):
        raise UsageError(f"--cas trains a LeNet on 1x28x28 images of 10 classes; {source.label} was trained on "
                         f"{data_cfg.dataset!r} ({G.img_channels}x{G.img_resolution}x{G.img_resolution}, {G.num_classes} "
                         f"classes); valid datasets: {', '.join(CAS_DATASETS)}")
    root = state(ctx).data_path
    train = load_split(replace(data_cfg, split="train", limit=0), root)
    test = load_split(replace(data_cfg, split="test", limit=0), root)
    as_float = lambda d: (d.images.to(torch.float32).div_(127.5).sub_(1.0), d.labels.long())  # noqa: E731

    z_seed = derive_seed(seed, "cas")
    drawn = {"n": 0}

    def generate(labels: torch.Tensor) -> torch.Tensor:
        # one latent stream for all chunks: image i gets row i of latents(total, nz, z_seed)
        start = drawn["n"]
        z = latents(start + len(labels), G.nz, z_seed)[start:]
        drawn["n"] += len(labels)
        with torch.no_grad():
            out = [G(z[i:i + batch_size].to(dev), labels[i:i + batch_size].to(dev)).float().cpu()
                   for i in range(0, len(labels), batch_size)]
        return torch.cat(out).clamp_(-1, 1)

    generated_info = {"run": source.run_id, "checkpoint": str(source.path), "step": G.step,
                      "weights": "ema" if G.uses_ema else "raw", "latent_seed": z_seed,
                      "labels": "balanced: image i has class i % 10"}
    with console.progress_bar(transient=True) as bar:
        tasks: dict[str, object] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            result = classification_accuracy_score(
                generate, as_float(train), as_float(test), num=num, epochs=epochs, seed=seed, mix=mix,
                real_limit=real_limit, dataset=data_cfg.dataset, generated_info=generated_info,
                home=state(ctx).home_path, use_cache=not no_cache, progress=progress)
        except ValueError as e:
            raise UsageError(str(e)) from None
    seconds = time.perf_counter() - t0
    doc = {"step": G.step, **result.values, "results": result.results, "seconds": round(seconds, 2),
           "phase_seconds": result.seconds,
           "baseline_cache": {True: "hit", False: "miss", None: "off"}[result.cache_hit]}
    run_obj = source.run
    if run_obj is None and source.run_id is not None:
        try:
            run_obj = state(ctx).store().resolve(source.run_id)
        except UsageError:
            run_obj = None
    if run_obj is not None:
        run_obj.append_metrics({"kind": "eval", "step": G.step if G.step is not None else 0,
                                **{k: round(v, 6) for k, v in result.values.items()}, "results": result.results,
                                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        doc["metrics_file"] = str(run_obj.metrics_path)
    if as_json:
        print(json.dumps(doc))
        return
    from rich.table import Table

    table = Table(title=f"{source.label} step {G.step}, {generated_info['weights']} G", title_justify="left", box=None,
                  pad_edge=False, header_style="bold")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("how to read it")
    for name, value in result.values.items():
        table.add_row(name, f"{value:.4f}", READING.get(name, ""))
    console.out.print(table)
    tr = result.results[0]["protocol"]["train"]
    what = (f"{tr['generated']:,} generated" if mix is None
            else f"{tr['real']:,} real + {tr['generated']:,} generated (R = {mix})")
    console.info(f"protocol cas (Ravuri & Vinyals 2019): LeNet-MNIST recipe, {what}, {tr['steps']} steps "
                 f"({epochs} epochs), tested on {len(test.labels):,} real {data_cfg.dataset} test images; seed {seed}; "
                 f"real baseline {doc['baseline_cache']}; {console.fmt_duration(seconds)}")
    if doc.get("metrics_file"):
        console.info(f"appended to {doc['metrics_file']}")


def _print_table(result, seconds: float, metrics_file: str | None) -> None:
    from rich.table import Table

    p = result.protocol
    gen = p["generated"]
    title = (f"{gen.get('run') or gen.get('folder')}" + (f" step {gen['step']}" if gen.get("step") is not None else "")
             + (f", {gen['weights']} G" if gen.get("weights") else ""))
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("how to read it")
    for r in result.results:
        v = r["value"]
        detail = READING.get(r["metric"], "")
        if "std" in r:
            detail = f"± {r['std']:.4g}; {detail}"
        if r["metric"] == "classes_covered":
            detail = (f"of {len(r['histogram'])}; KL(gen || uniform) {r['kl_to_uniform']:.4f} nats; {detail}; "
                      f"histogram {' '.join(map(str, r['histogram']))}")
        table.add_row(r["metric"], f"{v:.4f}" if isinstance(v, float) else str(v), detail)
    console.out.print(table)
    ref = p["reference"]
    ref_s = f"{ref['dataset']}:{ref['split']}" if "dataset" in ref else ref.get("folder", "?")
    console.info(f"protocol {p['protocol']}: {p['feature_extractor']}, weights sha256 {p['weights_sha256'][:12]}..., "
                 f"resize {p['resize']}; {p['num_generated']:,} generated vs {p['num_reference']:,} reference "
                 f"({ref_s}); seed {p['seed']}; {console.fmt_duration(seconds)}")
    if metrics_file:
        console.info(f"appended to {metrics_file}")
