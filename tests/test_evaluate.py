"""`gan evaluate` and `gan train --eval-every`: the offline LeNet protocol end to end on
real MNIST, protocol records, metrics.jsonl, the statistics cache, refusals, and
evaluation during training (which must not change the training itself)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import mnist_root, require_mnist
from typer.testing import CliRunner

from gancli.cli import app
from gancli.config import DataConfig
from gancli.data import load_split
from gancli.errors import UsageError
from gancli.metrics.evaluate import EvalOptions, evaluate
from gancli.metrics.extractors import LeNetExtractor
from gancli.metrics.sources import data_source, generator_source

PROTOCOL_KEYS = {"protocol", "feature_extractor", "weights_sha256", "resize", "num_generated", "num_reference",
                 "reference", "generated", "seed", "gancli_version"}


def _cli(*args, home):
    r = CliRunner().invoke(app, ["--home", str(home), *args], catch_exceptions=False)
    return r


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny mlp run on real MNIST (shared by the CLI tests; its home keeps the stats cache)."""
    require_mnist()
    home = tmp_path_factory.mktemp("evalhome")
    r = CliRunner().invoke(app, ["--home", str(home), "--data-dir", str(mnist_root()), "train", "--arch", "mlp",
                                 "--limit", "1024", "--steps", "40", "--device", "cpu", "--log-every", "20"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return home


def test_evaluate_json_lenet_protocol(trained, mnist_dir):
    r = _cli("evaluate", "latest", "-n", "2048", "--real", "mnist:test", "--json", "--device", "cpu", home=trained)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout is exactly one JSON object
    assert doc["step"] == 40
    for key in ("fd_lenet", "is_lenet", "classes_covered", "kl_to_uniform"):
        assert key in doc, doc.keys()
    assert "fid" not in doc  # FD-LeNet is never called FID
    assert doc["fd_lenet"] > 1.0  # 40 steps of training: far from the real-vs-real floor (~0.5)
    assert 1.0 <= doc["is_lenet"] <= 10.0
    assert 0 <= doc["classes_covered"] <= 10
    for res in doc["results"]:
        p = res["protocol"]
        assert PROTOCOL_KEYS <= set(p), set(p) ^ PROTOCOL_KEYS
        assert p["num_generated"] == 2048 and p["num_reference"] == 10000
        assert p["reference"] == {"dataset": "mnist", "split": "test"}
        assert p["generated"]["weights"] == "ema" and p["generated"]["step"] == 40
        assert len(p["weights_sha256"]) == 64
    cov = next(x for x in doc["results"] if x["metric"] == "classes_covered")
    assert sum(cov["histogram"]) == 2048
    # the same numbers were appended to the run's metrics.jsonl
    rows = [json.loads(line) for line in (trained / "runs" / "run-1" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in rows if x.get("kind") == "eval"]
    assert evals and evals[-1]["fd_lenet"] == pytest.approx(doc["fd_lenet"], rel=1e-5)
    assert evals[-1]["step"] == 40


def test_evaluate_reproducible_and_cached(trained, mnist_dir):
    args = ("evaluate", "latest", "-n", "2048", "--real", "mnist:test", "--json", "--device", "cpu")
    a = json.loads(_cli(*args, home=trained).stdout)
    b = json.loads(_cli(*args, home=trained).stdout)
    assert b["reference_cache"] == "hit"
    assert a["fd_lenet"] == pytest.approx(b["fd_lenet"], rel=1e-9)
    c = json.loads(_cli(*args, "--no-cache", home=trained).stdout)
    assert c["reference_cache"] == "off" and c["fd_lenet"] == pytest.approx(a["fd_lenet"], rel=1e-6)
    d = json.loads(_cli(*args, "--seed", "1", home=trained).stdout)
    assert d["fd_lenet"] != a["fd_lenet"]  # other latents, other number


def test_evaluate_all_metrics_and_table(trained, mnist_dir):
    r = _cli("evaluate", "latest", "-n", "2048", "--real", "mnist:test", "--fid", "--kid", "--is", "--pr",
             "--device", "cpu", home=trained)
    assert r.exit_code == 0, r.output
    for name in ("fd_lenet", "kid_lenet", "is_lenet", "precision_lenet", "recall_lenet", "classes_covered"):
        assert name in r.stdout
    assert "2,048 generated vs 10,000 reference (mnist:test)" in r.stdout
    assert "warning" in r.stderr and "biased" in r.stderr  # 2048 < 10k
    from gancli.metrics.catalog import reading

    text = " ".join(r.stdout.split())  # wrapped lines joined
    for name in ("fd_lenet", "kid_lenet", "is_lenet", "precision_lenet", "recall_lenet", "classes_covered"):
        assert reading(name) and reading(name) in text, name  # direction and reference points beside each number
    assert "lower is better; real MNIST ~0.5" in text and "higher is better, at most 10" in text


def test_evaluate_says_how_far_it_is(trained, mnist_dir, monkeypatch):
    """Issue #27 item 3: off a terminal, ``gan evaluate`` prints where each pass over the images
    is (here every 0.05 s, with each batch slowed down), on stderr with --json so stdout stays
    one JSON object; a cached reference says nothing about it."""
    import time

    from gancli import console

    slow = LeNetExtractor.outputs
    monkeypatch.setattr(LeNetExtractor, "outputs", lambda self, x: (time.sleep(0.03), slow(self, x))[1])
    monkeypatch.setattr(console, "PHASE_TICK_S", 0.05)
    args = ("evaluate", "latest", "-n", "2048", "--real", "mnist:test", "--batch-size", "256", "--device", "cpu")
    r = _cli(*args, "--no-cache", "--json", home=trained)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("{"), r.stdout[:300]
    json.loads(r.stdout)
    scoring = [x for x in r.stderr.splitlines() if x.startswith("generating and scoring images: ")]
    reference = [x for x in r.stderr.splitlines() if x.startswith("reference statistics (mnist test): ")]
    assert scoring and all("/2,048 (" in x for x in scoring), r.stderr
    assert reference and all("/10,000 (" in x for x in reference), r.stderr
    assert any("ETA" in x for x in reference), r.stderr
    _cli(*args, "--json", home=trained)  # fills the cache
    r = _cli(*args, home=trained)
    assert "generating and scoring images: " in r.stdout and "reference statistics" not in r.stdout


def test_evaluate_fast_is_10k_samples(trained):
    r = _cli("evaluate", "latest", "--fast", "--real", "mnist:test", "--json", "--device", "cpu", home=trained)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["protocol"]["num_generated"] == 10_000
    r = _cli("evaluate", "latest", "--fast", "-n", "2048", home=trained)
    assert r.exit_code == 2 and "--fast or -n, not both" in r.stderr


def test_evaluate_refuses_too_few_samples(trained):
    r = _cli("evaluate", "latest", "-n", "1000", "--json", home=trained)
    assert r.exit_code == 2
    error = json.loads(r.stdout)["error"]  # --json: the error object, nothing else (issue #26)
    assert error["exit_code"] == 2 and error["kind"] == "usage" and "2,048" in error["message"]
    assert "2,048" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,needle", [
    (("--protocol", "fancy"), "valid choices: lenet, inception"),
    (("--checkpoint", "best"), "no best checkpoint"),
    (("--real", "nosuchset"), "nosuchset"),
])
def test_evaluate_bad_values(trained, args, needle):
    r = _cli("evaluate", "latest", "-n", "2048", *args, home=trained)
    assert r.exit_code != 0
    assert needle in r.stderr and "Traceback" not in r.output


def test_inception_without_weights_is_a_short_line_then_the_fix(trained, monkeypatch, tmp_path):
    import gancli.metrics.inception as inc

    monkeypatch.delenv("GANCLI_INCEPTION_WEIGHTS", raising=False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(inc, "_download", offline)
    try:
        r = _cli("evaluate", "latest", "-n", "2048", "--protocol", "inception", "--real", "mnist:test",
                 home=trained)
    finally:
        torch.hub.set_dir(old)
    assert r.exit_code == 1
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert errors == ["error: Inception weights not found (download failed: offline)"], r.stderr
    fix = r.stderr.split(errors[0], 1)[1]  # issue #27: the fix on the lines after the short one
    for needle in ("--inception-weights", "GANCLI_INCEPTION_WEIGHTS", "weights-inception-2015-12-05-6726825d.pth",
                   "curl -L -o"):
        assert needle in fix


def _mnist(split):
    root = require_mnist()
    return load_split(DataConfig(split=split), root)


def test_one_digit_generator_covers_one_class(tmp_path):
    test = _mnist("test")
    threes = test.images[test.labels == 3][:800]
    real = data_source(test.images, {"dataset": "mnist", "split": "test"})
    ev = evaluate(data_source(threes, {"folder": "threes"}), real, LeNetExtractor("cpu"),
                  EvalOptions(protocol="lenet", metrics=("fid", "is"), use_cache=False))
    assert ev.values["classes_covered"] == 1
    assert ev.values["kl_to_uniform"] == pytest.approx(torch.log(torch.tensor(10.0)).item(), abs=0.05)
    assert ev.values["is_lenet"] < 1.2
    # all ten digits: ten classes, FD far smaller than for one digit
    mixed = evaluate(data_source(test.images[:800], {"folder": "mixed"}), real, LeNetExtractor("cpu"),
                     EvalOptions(protocol="lenet", metrics=("fid",), use_cache=False))
    assert mixed.values["classes_covered"] == 10
    assert mixed.values["fd_lenet"] * 20 < ev.values["fd_lenet"]


def test_conditional_generator_class_accuracy():
    """A conditional "generator" that returns real images of the asked class scores ~1."""
    test = _mnist("test")
    by_class = [test.images[test.labels == k][:300].float() / 127.5 - 1 for k in range(10)]

    class Oracle(torch.nn.Module):
        nz, num_classes, img_channels, img_resolution = 4, 10, 1, 28

        def forward(self, z, y):
            idx = (z[:, 0].abs() * 1000).long() % 300
            return torch.stack([by_class[int(k)][int(i)] for k, i in zip(y, idx)])

    src = generator_source(Oracle(), 500, 0, "cpu", {"run": "oracle"})
    real = data_source(test.images, {"dataset": "mnist", "split": "test"})
    ev = evaluate(src, real, LeNetExtractor("cpu"), EvalOptions(protocol="lenet", metrics=("is",), use_cache=False))
    assert ev.values["class_accuracy"] > 0.97


def test_lenet_protocol_refuses_other_shapes():
    with pytest.raises(UsageError, match="--protocol inception"):
        LeNetExtractor.check_shape(3, 32)


@pytest.mark.slow  # ~27 s: three trainings with evaluations
def test_eval_every_keeps_best_and_does_not_change_training(home, mnist_dir, tmp_path):
    common = ["train", "--arch", "mlp", "--limit", "512", "--steps", "30", "--device", "cpu", "--log-every", "10",
              "--seed", "3"]
    r = CliRunner().invoke(app, [*common, "--eval-every", "15", "--eval-samples", "2048"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, common, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    from safetensors.torch import load_file

    with_eval = home / "runs" / "run-1"
    without = home / "runs" / "run-2"
    a = load_file(with_eval / "checkpoints" / "step-30.safetensors")
    b = load_file(without / "checkpoints" / "step-30.safetensors")
    for k in a:
        if k.startswith(("generator", "discriminator")):
            assert torch.equal(a[k], b[k]), k  # evaluation used no RNG and restored G's mode
    rows = [json.loads(x) for x in (with_eval / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in rows if x.get("kind") == "eval"]
    assert [x["step"] for x in evals] == [15, 30]
    best = min(evals, key=lambda x: x["fd_lenet"])
    best_file = with_eval / "checkpoints" / "best.safetensors"
    assert best_file.is_file()
    from gancli.checkpoint import load_checkpoint

    assert load_checkpoint(best_file).step == best["step"]
    # --checkpoint best works for sample and evaluate
    out = tmp_path / "best.png"
    r = CliRunner().invoke(app, ["sample", "run-1", "--checkpoint", "best", "-n", "4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file()
    # resuming keeps the best value and keeps scoring
    r = CliRunner().invoke(app, ["train", "--resume", "run-1", "--steps", "45"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (with_eval / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if x.get("kind") == "eval"] == [15, 30, 45]


def test_eval_every_refuses_few_samples(home):
    r = CliRunner().invoke(app, ["train", "--arch", "mlp", "--steps", "5", "--eval-every", "5", "--eval-samples", "100"])
    assert r.exit_code == 2
    assert "--eval-samples 100" in r.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


@pytest.mark.slow  # ~12 s
def test_evaluate_image_folder_matches_the_run(trained, tmp_path, mnist_dir):
    """`--fake DIR` of the PNGs `gan sample --individual` wrote scores like the run itself
    (same latents; only the 8-bit rounding of the PNGs differs)."""
    out = tmp_path / "pngs"
    r = _cli("sample", "latest", "-n", "2048", "-o", str(out), "--individual", home=trained)
    assert r.exit_code == 0, r.output
    folder = json.loads(_cli("evaluate", "--fake", str(out), "--real", "mnist:test", "-n", "2048", "--json",
                             "--device", "cpu", home=trained).stdout)
    run = json.loads(_cli("evaluate", "latest", "--real", "mnist:test", "-n", "2048", "--json", "--device", "cpu",
                          home=trained).stdout)
    assert folder["results"][0]["protocol"]["generated"]["folder"] == str(out.resolve())
    assert folder["fd_lenet"] == pytest.approx(run["fd_lenet"], rel=0.05)
    assert "metrics_file" not in folder  # a folder has no run to append to
