"""The offline MNIST evaluation protocol: the shipped LeNet-MNIST classifier, FD-LeNet,
the classifier Inception Score and the mode-coverage report.

Real-data tests skip when MNIST is absent (GANCLI_DATA_DIR, else ../shared/data).
"""

from __future__ import annotations

import hashlib
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO, load_script, require_mnist

from gancli.errors import GancliError
from gancli.metrics.coverage import class_coverage
from gancli.metrics.frechet import feature_stats, frechet_distance
from gancli.metrics.inception_score import inception_score
from gancli.metrics.lenet import FEATURE_DIM, WEIGHTS_PATH, LeNet, lenet_info, lenet_outputs, load_lenet

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _fd(f1: torch.Tensor, f2: torch.Tensor) -> float:
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def model() -> LeNet:
    return load_lenet()


@pytest.fixture(scope="module")
def mnist():
    """LeNet features / logits of MNIST test (10k) and of the first 10k of MNIST train."""
    root = require_mnist()
    from gancli.config import DataConfig
    from gancli.data import load_split

    net = load_lenet()
    out = {"root": root}
    for split, limit in (("test", 0), ("train", 10000)):
        data = load_split(DataConfig(split=split, limit=limit, download=False), root)
        x = data.images.to(torch.float32).div_(127.5).sub_(1.0)  # as gancli feeds D
        feats, logits = lenet_outputs(net, x)
        out[split] = {"labels": data.labels, "features": feats, "logits": logits}
    return out


# -- the shipped weights -------------------------------------------------------
def test_weights_file_is_small_and_documented():
    info = lenet_info()
    assert WEIGHTS_PATH.stat().st_size < 600 * 1024
    assert info["format"] == "gancli-lenet" and info["feature_dim"] == FEATURE_DIM
    assert info["test_accuracy"] >= 0.99 and info["test_total"] == 10000
    assert info["test_correct"] == round(info["test_accuracy"] * 10000)
    assert sorted(info["data_sha256"]) == sorted(RAW_FILES)
    assert all(len(h) == 64 for h in info["data_sha256"].values())
    assert (REPO / info["script"]).is_file() and isinstance(info["seed"], int) and info["epochs"] >= 1
    assert info["torch_version"] and len(info["weights_sha256"]) == 64
    assert info["weights_sha256"] == hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()


def test_training_script_uses_the_package_model():
    script = load_script("scripts/train_lenet.py")
    from gancli.metrics import classifier

    assert script.train_lenet is classifier.train_lenet  # single source of the recipe (CAS trains with it too)
    assert classifier.LeNet is LeNet  # and of the architecture
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(classifier.random_shift(x, 0, gen), x)
    shifted = classifier.random_shift(x, 2, gen)
    for a, b in zip(shifted, x):  # each output is a translated copy, background -1
        padded = torch.nn.functional.pad(b, (2, 2, 2, 2), value=-1.0)
        assert any(torch.equal(a, padded[:, dy:dy + 28, dx:dx + 28]) for dy in range(5) for dx in range(5))


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(GancliError, match="missing") as e:
        load_lenet(path=tmp_path / "nope.safetensors")
    assert "\n" not in str(e.value)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(WEIGHTS_PATH.read_bytes()[:1000])
    with pytest.raises(GancliError, match="damaged") as e:
        load_lenet(path=truncated)
    assert "\n" not in str(e.value)
    flipped = tmp_path / "flipped.safetensors"
    shutil.copy(WEIGHTS_PATH, flipped)
    data = bytearray(flipped.read_bytes())
    data[-100] ^= 0xFF  # inside the tensor data: only the checksum notices
    flipped.write_bytes(bytes(data))
    with pytest.raises(GancliError, match="checksum"):
        load_lenet(path=flipped)
    with pytest.raises(GancliError, match="checksum"):
        lenet_info(flipped)


def test_outputs_shapes_and_input_checks(model):
    x = torch.rand(7, 1, 28, 28) * 2 - 1
    feats, logits = lenet_outputs(model, x, batch_size=3)
    assert feats.shape == (7, FEATURE_DIM) and logits.shape == (7, 10)
    assert feats.dtype == torch.float64 and (feats >= 0).all()
    feats_one_batch, logits_one_batch = lenet_outputs(model, x)
    torch.testing.assert_close(feats, feats_one_batch, rtol=1e-4, atol=1e-4)  # eval mode: batches do not interact
    torch.testing.assert_close(logits, logits_one_batch, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*\(2, 1, 32, 32\)"):
        lenet_outputs(model, torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(2, 3, 28, 28\).*RGB"):
        lenet_outputs(model, torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\(28, 28\)"):
        lenet_outputs(model, torch.zeros(28, 28))
    with pytest.raises(ValueError, match="uint8"):
        lenet_outputs(model, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        lenet_outputs(model, torch.linspace(0, 255, 2 * 784).reshape(2, 1, 28, 28))


# -- real MNIST ------------------------------------------------------------------
def test_raw_mnist_is_the_data_it_was_trained_on(mnist):
    raw = mnist["root"] / "MNIST" / "raw"
    stated = lenet_info()["data_sha256"]
    assert {name: hashlib.sha256((raw / name).read_bytes()).hexdigest() for name in RAW_FILES} == stated


def test_shipped_weights_reproduce_the_stated_accuracy(mnist):
    test = mnist["test"]
    correct = int((test["logits"].argmax(1) == test["labels"]).sum())
    stated = lenet_info()["test_correct"]
    print(f"LeNet-MNIST test accuracy {correct / 100:.2f}% (stated {stated / 100:.2f}%)")
    assert correct >= 9900
    assert abs(correct - stated) <= 3  # exact on the machine that trained it; BLAS may move a borderline image


def test_fd_lenet_real_vs_real_floor_and_noise(mnist, model):
    fd_real = _fd(mnist["train"]["features"], mnist["test"]["features"])
    noise = torch.rand(5000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fd_noise = _fd(lenet_outputs(model, noise)[0], mnist["test"]["features"])
    print(f"FD-LeNet train[:10k] vs test: {fd_real:.4g}; uniform noise vs test: {fd_noise:.4g}")
    assert fd_real < 2.0  # measured 0.556 (torch 2.14 CPU)
    assert fd_noise > 200 * fd_real  # measured ~1100x


def test_classifier_inception_score_of_real_digits(mnist):
    mean, std = inception_score(mnist["test"]["logits"], splits=10, from_logits=True)
    print(f"classifier IS of MNIST test: {mean:.3f} +- {std:.3f}")
    assert 9.0 < mean <= 10.0  # measured 9.77


def test_coverage_of_real_test_set_and_of_a_one_digit_generator(mnist):
    test = mnist["test"]
    pred = test["logits"].argmax(1)
    full = class_coverage(pred)
    assert full["classes_covered"] == 10 and full["num_samples"] == 10000
    assert full["kl_to_uniform"] < 0.01  # MNIST test has 892..1135 images per class
    one = class_coverage(pred[test["labels"] == 3])  # real images of one digit: a collapsed generator
    assert one["classes_covered"] == 1 and one["covered"] == [3]
    assert abs(one["kl_to_uniform"] - math.log(10)) < 0.1


# -- coverage closed forms -------------------------------------------------------
def test_coverage_closed_forms():
    uniform = class_coverage(list(range(10)) * 30)
    assert uniform["histogram"] == [30] * 10 and uniform["classes_covered"] == 10
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12) and uniform["num_samples"] == 300
    collapsed = class_coverage(np.full(50, 7))
    assert collapsed["classes_covered"] == 1 and collapsed["covered"] == [7]
    assert collapsed["kl_to_uniform"] == pytest.approx(math.log(10))
    halves = class_coverage(torch.tensor([2, 5] * 20))  # two of ten classes, evenly: log(10 / 2)
    assert halves["kl_to_uniform"] == pytest.approx(math.log(5)) and halves["classes_covered"] == 2
    skew = class_coverage([0, 0, 0, 1], num_classes=2)  # 3/4 log(3/2) + 1/4 log(1/2)
    assert skew["kl_to_uniform"] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))


def test_coverage_threshold_is_a_share_of_the_expected_count():
    # N = 100, K = 10: expected 10 per class; min_share 0.1 -> at least 1, 0.5 -> at least 5
    labels = [0] * 46 + [1] * 5 + [2] * 4 + [3] * 1 + [4] * 44  # classes 5..9 empty
    r = class_coverage(labels)
    assert r["min_count"] == pytest.approx(1.0) and r["covered"] == [0, 1, 2, 3, 4]
    r = class_coverage(labels, min_share=0.5)
    assert r["covered"] == [0, 1, 4] and r["classes_covered"] == 3
    assert class_coverage(labels, min_share=0.0)["classes_covered"] == 5  # empty classes never count


@pytest.mark.parametrize("bad,match", [
    ([], "empty"), ([[0, 1]], r"\(N,\)"), ([0.0, 1.0], "integer"), ([0, 10], r"\[0, 9\]"), ([-1], r"\[0, 9\]"),
])
def test_coverage_rejects_bad_labels(bad, match):
    with pytest.raises(ValueError, match=match):
        class_coverage(np.asarray(bad))
