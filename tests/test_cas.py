"""Classification Accuracy Score (gancli.metrics.cas) and ``gan evaluate --cas`` on real MNIST."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gancli.cli import app
from gancli.metrics.cas import balanced_labels, classification_accuracy_score, label_counts, real_subset

runner = CliRunner()
TINY = ["--limit", "256", "--batch-size", "32", "--nz", "16", "--ngf", "8", "--ndf", "8", "--device", "cpu"]
NUM, EPOCHS = 2560, 3  # 60 classifier steps: ~97% on real MNIST, seconds on a CPU


def gan(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def mnist():
    from conftest import require_mnist

    from gancli.config import DataConfig
    from gancli.data import load_split

    root = require_mnist()
    out = {}
    for split in ("train", "test"):
        d = load_split(DataConfig(split=split, download=False), root)
        out[split] = (d.images.to(torch.float32).div_(127.5).sub_(1.0), d.labels.long())
    return out


def real_images_generator(x: torch.Tensor, y: torch.Tensor, seed: int, wrong: str | None = None):
    """A stand-in generator drawing real images of the asked class (``wrong``: "random" =
    a class independent of the label, "next" = always class label + 1)."""
    gen = torch.Generator().manual_seed(seed)
    by_class = [torch.nonzero(y == c).squeeze(1) for c in range(10)]

    def generate(labels: torch.Tensor) -> torch.Tensor:
        if wrong == "random":
            labels = torch.randint(0, 10, labels.shape, generator=gen)
        elif wrong == "next":
            labels = (labels + 1) % 10
        idx = torch.stack([by_class[c][torch.randint(len(by_class[c]), (1,), generator=gen)][0] for c in labels.tolist()])
        return x[idx]

    return generate


def test_balanced_labels_and_subset_counts():
    labels = balanced_labels(25)
    assert label_counts(labels) == [3] * 5 + [2] * 5
    pool = torch.arange(1000) % 10
    idx = real_subset(pool, [3, 0, 5, 1, 1, 1, 1, 1, 1, 1], seed=4)
    assert label_counts(pool[idx]) == [3, 0, 5, 1, 1, 1, 1, 1, 1, 1]
    assert len(set(idx.tolist())) == len(idx)
    assert torch.equal(idx, real_subset(pool, [3, 0, 5, 1, 1, 1, 1, 1, 1, 1], seed=4))
    assert not torch.equal(idx, real_subset(pool, [3, 0, 5, 1, 1, 1, 1, 1, 1, 1], seed=5))
    with pytest.raises(ValueError, match="class 1 has 100 real images, 101 asked for"):
        real_subset(pool, [0, 101] + [0] * 8, seed=0)


@pytest.mark.slow  # ~20 s: two classifiers on real MNIST
def test_real_images_as_generator_score_close_to_the_baseline(mnist, tmp_path):
    """A "generator" that returns real (training) images of the asked class teaches the classifier
    as much as the baseline's real images: CAS ~ baseline, ratio ~ 1."""
    r = classification_accuracy_score(real_images_generator(*mnist["train"], seed=1), mnist["train"], mnist["test"],
                                      num=NUM, epochs=EPOCHS, seed=0, home=tmp_path)
    assert r.values["cas_real"] > 0.9
    assert abs(r.values["cas"] - r.values["cas_real"]) < 0.03, r.values
    assert 0.96 < r.values["cas_ratio"] < 1.04
    assert {x["metric"] for x in r.results} == {"cas", "cas_real", "cas_ratio"}
    p = r.results[0]["protocol"]
    assert p["protocol"] == "cas" and "1905.10887" in p["paper"]
    assert p["train"] == {"generated": NUM, "real": 0, "steps": EPOCHS * (NUM // 128), "per_class": [NUM // 10] * 10}
    assert p["test"] == {"dataset": "mnist", "split": "test", "num": 10000}
    assert r.cache_hit is False


@pytest.mark.slow  # a classifier trained twice: CI runs it with -m slow
def test_label_blind_generator_scores_near_chance_and_wrong_labels_near_zero(mnist, tmp_path):
    test = (mnist["test"][0][:2000], mnist["test"][1][:2000])
    blind = classification_accuracy_score(real_images_generator(*mnist["train"], seed=1, wrong="random"),
                                          mnist["train"], test, num=1280, epochs=EPOCHS, seed=0, home=tmp_path)
    assert 0.03 < blind.values["cas"] < 0.25, blind.values  # images independent of the label: ~10%
    assert blind.values["cas_ratio"] < 0.25 and blind.values["cas_real"] > 0.8
    shifted = classification_accuracy_score(real_images_generator(*mnist["train"], seed=1, wrong="next"),
                                            mnist["train"], test, num=1280, epochs=EPOCHS, seed=0, home=tmp_path)
    assert shifted.cache_hit is True  # the same baseline: read back, not trained again
    assert shifted.values["cas"] < 0.05, shifted.values  # a consistently wrong class: the classifier learns the shift


def test_reproducible_and_baseline_cached(mnist, tmp_path):
    gen = lambda: real_images_generator(*mnist["train"], seed=3)  # noqa: E731
    test = (mnist["test"][0][:2000], mnist["test"][1][:2000])
    first = classification_accuracy_score(gen(), mnist["train"], test, num=1280, epochs=2, seed=7, home=tmp_path)
    cached = sorted((tmp_path / "stats").glob("cas-real-mnist-n1280-s20-seed7-*.json"))
    assert len(cached) == 1 and first.cache_hit is False
    second = classification_accuracy_score(gen(), mnist["train"], test, num=1280, epochs=2, seed=7, home=tmp_path)
    assert second.cache_hit is True and "train real" not in second.seconds
    assert second.values == first.values  # same seed: same classifier, bit for bit
    cached[0].write_text("{not json")  # a damaged cache entry is a miss, then rewritten
    third = classification_accuracy_score(gen(), mnist["train"], test, num=1280, epochs=2, seed=7, home=tmp_path)
    assert third.cache_hit is False and third.values == first.values
    assert json.loads(cached[0].read_text())["accuracy"] == first.values["cas_real"]


@pytest.mark.slow  # a classifier trained twice: CI runs it with -m slow
def test_mix_trains_on_real_plus_generated_against_real_alone_for_as_many_steps(mnist):
    r = classification_accuracy_score(real_images_generator(*mnist["train"], seed=1), mnist["train"], mnist["test"],
                                      epochs=4, seed=0, mix=0.75, real_limit=256)
    assert set(r.values) == {"cas_mix", "cas_real_only", "cas_mix_gain"}
    mix, alone = r.results[0]["protocol"]["train"], r.results[1]["protocol"]["train"]
    assert (mix["real"], mix["generated"], mix["steps"]) == (256, 768, 4 * (1024 // 128))
    assert alone == {"generated": 0, "real": 256, "steps": mix["steps"]}
    assert r.values["cas_mix_gain"] == pytest.approx(r.values["cas_mix"] - r.values["cas_real_only"])
    assert r.values["cas_mix_gain"] > 0  # 4x more (real) images of the same kind help a 256-image set
    with pytest.raises(ValueError, match="mix must be in"):
        classification_accuracy_score(real_images_generator(*mnist["train"], seed=1), mnist["train"], mnist["test"],
                                      mix=1.0)


@pytest.mark.slow  # ~20 s; the API path stays in the default suite (test_run_eval)
def test_cli_cas_on_a_conditional_run_appends_its_protocol(home, mnist_dir):
    assert gan("train", "--conditional", "--steps", "4", *TINY).exit_code == 0
    r = gan("evaluate", "latest", "--cas", "-n", "256", "--cas-epochs", "1", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= {"cas", "cas_real", "cas_ratio", "results", "baseline_cache", "metrics_file"}
    assert doc["baseline_cache"] == "miss" and 0 <= doc["cas"] <= 1
    assert doc["results"][0]["protocol"]["generated"]["run"] == "run-1"
    records = [json.loads(x) for x in (home / "runs" / "run-1" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "eval" and records[-1]["cas"] == round(doc["cas"], 6)
    again = json.loads(gan("evaluate", "latest", "--cas", "-n", "256", "--cas-epochs", "1", "--json").stdout)
    assert again["baseline_cache"] == "hit" and again["cas"] == doc["cas"]  # same seed: same score
    r = gan("evaluate", "latest", "--cas", "-n", "256", "--cas-epochs", "1")
    assert r.exit_code == 0 and "cas_ratio" in r.output and "protocol cas" in r.output


def _one_error_line(result):
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_cli_cas_refuses_unconditional_runs_and_bad_options(home, mnist_dir):
    assert gan("train", "--steps", "2", "--clusters", "0", *TINY).exit_code == 0
    r = gan("evaluate", "latest", "--cas")
    assert r.exit_code == 2 and "--cas needs labels: run-1 is unconditional" in _one_error_line(r)
    for args, message in ((["--cas", "--fid"], "--cas runs alone"), (["--cas-mix", "0.5"], "go with --cas"),
                          (["--cas", "--cas-mix", "1.5"], "--cas-mix 1.5 is out of range; valid choices: 0 <= R < 1"),
                          (["--cas", "-n", "10"], "valid choices: -n >= 128"),
                          (["--cas", "--cas-real-limit", "100"], "--cas-real-limit goes with --cas-mix")):
        r = gan("evaluate", "latest", *args)
        assert r.exit_code == 2 and message in _one_error_line(r), (args, r.output)
