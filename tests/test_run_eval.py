"""``gan evaluate`` as library functions (gancli.metrics.run_eval, run_cas), called from Python: settings
checks, the reports and records they return, and the metrics' directions (gancli.metrics.catalog).
A 4-step conditional run on real MNIST, 256 images, CPU."""

from __future__ import annotations

import pytest
import torch

from gancli.errors import GancliError, UsageError
from gancli.metrics.catalog import CATALOG, headline_metric, higher_is_better, lower_is_better, metric_names, reading
from gancli.metrics.evaluate import EvalResult
from gancli.metrics.extractors import PROTOCOLS
from gancli.metrics.run_cas import CAS_DATASETS, CasSettings, evaluate_cas
from gancli.metrics.run_eval import EvalSettings, evaluate_folder, evaluate_generator
from gancli.runs import RunStore


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """``(run, MNIST root)``: 4 steps of a tiny class-conditional DCGAN on 256 MNIST images."""
    from conftest import require_mnist

    from gancli.engine.launch import train
    from gancli.resolve import build_config

    root = require_mnist()
    cfg = build_config(dict(conditional=True, limit=256, batch_size=32, nz=16, ngf=8, ndf=8, steps=4, device="cpu",
                            sample_every=0, log_every=2, keep=0))
    run, _ = train(cfg, RunStore(tmp_path_factory.mktemp("evalhome")), root)
    return run, root


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "--batch-size must be >= 1, got 0"),
    (dict(seed=-1), "--seed must be in [0, 2^63 - 1], got -1"),
    (dict(protocol="fancy"), "unknown protocol 'fancy'; valid choices: lenet, inception"),
    (dict(metrics=("fid", "sharpness")), "sharpness"),
])
def test_eval_settings_refuse_bad_values(kwargs, message):
    with pytest.raises(GancliError) as e:
        EvalSettings(**kwargs)
    assert message in str(e.value)
    EvalSettings(metrics=("fid", "kid", "is", "pr"), protocol="inception", batch_size=1, seed=0)  # all valid


@pytest.mark.parametrize("kwargs,message", [
    (dict(num=127), "valid choices: -n >= 128"),
    (dict(epochs=0), "--cas-epochs must be >= 1"),
    (dict(mix=1.0), "valid choices: 0 <= R < 1"),
    (dict(real_limit=100), "--cas-real-limit goes with --cas-mix"),
    (dict(mix=0.5, real_limit=0), "--cas-real-limit must be >= 1"),
    (dict(batch_size=0), "--batch-size must be >= 1"),
])
def test_cas_settings_refuse_bad_values(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        CasSettings(**kwargs)
    CasSettings(num=128, epochs=1, mix=0.0, real_limit=1)  # the bounds themselves are valid


# -- metric directions ------------------------------------------------------------------------
def test_every_reported_metric_declares_its_direction_once():
    reported = {name for p in PROTOCOLS for name in metric_names(p).values()}
    reported |= {"classes_covered", "kl_to_uniform", "class_accuracy", "cas", "cas_real", "cas_ratio", "cas_mix",
                 "cas_real_only", "cas_mix_gain", "diversity", "duplicates"}
    assert reported <= set(CATALOG), reported - set(CATALOG)
    for name, info in CATALOG.items():
        assert lower_is_better(name) is not higher_is_better(name)
        said = reading(name)
        if info.states_direction:  # the words come from the flag, so they cannot disagree with it
            assert said.startswith("higher is better" if info.higher_is_better else "lower is better"), name
        else:
            assert "is better" not in said and said, name
    assert not higher_is_better("fd_lenet") and not higher_is_better("fid") and not higher_is_better("kid_lenet")
    assert higher_is_better("is_lenet") and higher_is_better("precision") and higher_is_better("cas_mix_gain")
    assert lower_is_better("a metric gancli never wrote") and reading("a metric gancli never wrote") == ""
    for p in PROTOCOLS:  # --eval-every keeps the checkpoint with the smallest headline value
        assert lower_is_better(headline_metric(p))


# -- evaluate_generator / evaluate_folder -------------------------------------------------------
def test_evaluate_generator_returns_the_report_and_appends_the_record(conditional_run, tmp_path):
    run, root = conditional_run
    settings = EvalSettings(metrics=("is",), num_samples=256, seed=5)
    warned = []
    before = len(run.read_metrics())
    report = evaluate_generator(run.checkpoint_path(), settings, data_root=root, device="cpu", real="mnist:test",
                                run=run, home=tmp_path, warn=warned.append)
    assert isinstance(report.result, EvalResult)
    doc = report.doc
    assert list(doc)[0] == "step" and doc["step"] == 4
    assert {"is_lenet", "classes_covered", "kl_to_uniform", "class_accuracy"} <= set(doc)  # conditional G: accuracy too
    assert "fd_lenet" not in doc and 1.0 <= doc["is_lenet"] <= 10.0
    assert doc["reference_cache"] == "miss" and doc["seconds"] == round(report.seconds, 2)
    assert doc["metrics_file"] == str(run.metrics_path)
    p = doc["results"][0]["protocol"]
    assert p["protocol"] == "lenet" and p["num_generated"] == 256 and p["seed"] == 5
    assert p["generated"]["run"] == run.id and p["generated"]["weights"] == "ema"
    assert warned == report.notes and "only 256 generated images" in warned[0]
    records = run.read_metrics()
    assert len(records) == before + 1 and records[-1]["kind"] == "eval" and records[-1]["step"] == 4
    assert records[-1]["is_lenet"] == round(doc["is_lenet"], 6)
    # the same generator again: cached reference, the same number; without a run nothing is recorded
    again = evaluate_generator(run.checkpoint_path(), settings, data_root=root, device="cpu", real="mnist:test",
                               home=tmp_path)
    assert again.doc["reference_cache"] == "hit" and again.doc["is_lenet"] == doc["is_lenet"]
    assert "metrics_file" not in again.doc and len(run.read_metrics()) == before + 1
    assert again.doc["results"][0]["protocol"]["generated"]["run"] is None
    with pytest.raises(UsageError, match="2,048"):  # refused before anything is loaded
        evaluate_generator(tmp_path / "missing.safetensors", EvalSettings(metrics=("fid",), num_samples=1000),
                           data_root=root)


def test_evaluate_folder_scores_every_image_of_it(conditional_run, tmp_path):
    from PIL import Image

    from gancli.config import DataConfig
    from gancli.data import load_split

    _, root = conditional_run
    test = load_split(DataConfig(split="test"), root)
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(300):
        Image.fromarray(test.images[i, 0].numpy()).save(folder / f"{i:03d}.png")
    report = evaluate_folder(folder, "mnist:test", EvalSettings(metrics=("is",)), data_root=root, device="cpu",
                             home=tmp_path)
    doc = report.doc
    assert doc["step"] is None and "metrics_file" not in doc
    p = doc["results"][0]["protocol"]
    assert p["generated"] == {"folder": str(folder.resolve())} and p["num_generated"] == 300
    assert p["reference"] == {"dataset": "mnist", "split": "test"}
    assert doc["classes_covered"] == 10 and doc["is_lenet"] > 5  # real digits
    assert "class_accuracy" not in doc  # images of a folder were asked for no class
    with pytest.raises(UsageError, match="--fake DIR needs --real"):
        evaluate_folder(folder, None, EvalSettings(), data_root=root)


# -- evaluate_cas ---------------------------------------------------------------------------------
def test_evaluate_cas_draws_one_latent_stream_in_batches(conditional_run, monkeypatch):
    """The images CAS trains on: row i of ``latents(n, nz, derive_seed(seed, "cas"))`` with the
    class asked for, whatever the chunks and batches they are generated in."""
    import gancli.metrics.cas as cas
    from gancli.checkpoint import generator_from_checkpoint, load_checkpoint
    from gancli.seeding import derive_seed, latents

    run, root = conditional_run
    seen = {}

    def fake_score(generate, real_train, real_test, **kw):
        labels = torch.arange(300) % 10
        seen["images"] = torch.cat([generate(labels[:128]), generate(labels[128:])])
        seen["kw"] = kw
        return cas.CasResult({"cas": 0.5, "cas_real": 0.9, "cas_ratio": 0.5 / 0.9}, [], {"generate": 0.1}, None)

    monkeypatch.setattr(cas, "classification_accuracy_score", fake_score)
    report = evaluate_cas(run.checkpoint_path(), CasSettings(num=300, seed=9, batch_size=7), data_root=root,
                          device="cpu", run_id="run-x")
    G = generator_from_checkpoint(load_checkpoint(run.checkpoint_path()), device="cpu")
    with torch.no_grad():
        want = G(latents(300, G.nz, derive_seed(9, "cas")), torch.arange(300) % 10).clamp(-1, 1)
    torch.testing.assert_close(seen["images"], want, rtol=0, atol=1e-5)
    assert seen["kw"]["num"] == 300 and seen["kw"]["seed"] == 9 and seen["kw"]["home"] is None
    assert seen["kw"]["generated_info"]["run"] == "run-x" and seen["kw"]["generated_info"]["step"] == 4
    assert report.doc["baseline_cache"] == "off" and report.doc["cas"] == 0.5 and "metrics_file" not in report.doc


def test_evaluate_cas_returns_the_report_and_appends_the_record(conditional_run, tmp_path):
    run, root = conditional_run
    phases = set()
    report = evaluate_cas(run.checkpoint_path(), CasSettings(num=256, epochs=1), data_root=root, device="cpu",
                          run=run, home=tmp_path, progress=lambda phase, done, total: phases.add(phase))
    doc = report.doc
    assert set(doc) >= {"step", "cas", "cas_real", "cas_ratio", "results", "seconds", "phase_seconds", "baseline_cache",
                        "metrics_file"}
    assert doc["baseline_cache"] == "miss" and 0 <= doc["cas"] <= 1 and doc["step"] == 4
    assert phases == {"generate", "train generated", "train real"}
    assert doc["results"][0]["protocol"]["generated"]["run"] == run.id
    assert run.read_metrics()[-1]["cas"] == round(doc["cas"], 6)
    with pytest.raises(UsageError, match="not the bundle"):
        evaluate_cas(tmp_path, CasSettings(), data_root=root)
    assert CAS_DATASETS == ("mnist", "fashion-mnist")
