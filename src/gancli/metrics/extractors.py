"""Evaluation protocols and their feature extractors: images -> features and logits.

* ``lenet`` (default for MNIST): gancli's shipped LeNet-MNIST classifier
  (:mod:`gancli.metrics.lenet`), 128-d penultimate features and 10 logits.
* ``inception`` (default elsewhere): torch-fidelity's InceptionV3 (TF-exact resize to
  299x299, uint8 input, grayscale repeated to RGB), 2048-d pool features and 1008 logits
  (:mod:`gancli.metrics.inception`).

Torch-free at import; no Typer, no Rich.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gancli.errors import UsageError

PROTOCOLS = ("lenet", "inception")
#: Datasets whose default protocol is ``lenet`` (the shipped classifier is trained on MNIST).
LENET_DATASETS = frozenset({"mnist"})


def default_protocol(dataset: str) -> str:
    """``lenet`` for MNIST, ``inception`` for every other dataset."""
    return "lenet" if dataset in LENET_DATASETS else "inception"


class Extractor:
    """Images ``(n, C, H, W)`` float in [-1, 1] -> ``(features (n, F), logits (n, K))`` float64 CPU."""

    name: str
    weights_sha256: str
    resize: str
    feature_dim: int

    def outputs(self, images) -> tuple[Any, Any]:  # pragma: no cover - interface
        raise NotImplementedError


class LeNetExtractor(Extractor):
    """The shipped LeNet-MNIST classifier (penultimate 128-d features, 10 logits)."""

    resize = "none (1x28x28 input, as trained)"

    def __init__(self, device, batch_size: int = 500):
        from gancli.metrics.lenet import FEATURE_DIM, lenet_info, load_lenet

        info = lenet_info()
        self.model = load_lenet(device)
        self.batch_size = batch_size
        self.weights_sha256 = info["weights_sha256"]
        acc = info.get("test_accuracy")
        self.name = "gancli LeNet-MNIST" + (f" (MNIST test accuracy {float(acc):.2%})" if acc is not None else "")
        self.feature_dim = FEATURE_DIM

    @staticmethod
    def check_shape(channels: int, resolution: int) -> None:
        if (channels, resolution) != (1, 28):
            raise UsageError(f"--protocol lenet needs 1x28x28 images (MNIST), got {channels}x{resolution}x{resolution}; "
                             "use --protocol inception")

    def outputs(self, images):
        from gancli.metrics.lenet import lenet_outputs

        return lenet_outputs(self.model, images, self.batch_size)


class InceptionProtocolExtractor(Extractor):
    """torch-fidelity's InceptionV3: 2048-d pool features and 1008 unbiased logits."""

    def __init__(self, weights: str | None, device, batch_size: int = 64,
                 on_download: Callable[[str, Path], None] | None = None):
        from gancli.metrics.inception import InceptionExtractor, resolve_inception_weights

        self.net = InceptionExtractor(resolve_inception_weights(weights, on_download=on_download), device)
        self.batch_size = batch_size
        self.name = self.net.name
        self.resize = self.net.resize
        self.weights_sha256 = self.net.weights_sha256
        self.feature_dim = self.net.feature_dims["pool"]

    def outputs(self, images):
        out = self.net.features(images, batch_size=self.batch_size)
        return out["pool"], out["logits"]


def build_extractor(protocol: str, device, batch_size: int, inception_weights: str | None = None,
                    on_download: Callable[[str, Path], None] | None = None) -> Extractor:
    """Raises UsageError (unknown protocol, bad weights path) / GancliError (weights unavailable)."""
    if protocol == "lenet":
        return LeNetExtractor(device, batch_size=max(batch_size, 1))
    if protocol == "inception":
        return InceptionProtocolExtractor(inception_weights, device, batch_size=min(batch_size, 64),
                                          on_download=on_download)
    raise UsageError(f"unknown protocol {protocol!r}; valid choices: {', '.join(PROTOCOLS)}")
