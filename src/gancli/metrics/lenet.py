"""LeNet-MNIST: the small digit classifier behind the offline MNIST evaluation protocol.

gancli ships a LeNet-5-style network (LeCun et al. 1998, "Gradient-based learning
applied to document recognition") trained on MNIST train by
``scripts/train_lenet.py`` as ``weights/lenet-mnist.safetensors`` next to this
module. Its penultimate 128-d features give *FD-LeNet* (the Fréchet distance of
Heusel et al. 2017, arXiv 1706.08500, computed in LeNet features instead of
Inception ones, so it is not "FID" and not comparable with published FIDs), its
logits give the classifier Inception Score (Salimans et al. 2016, arXiv
1606.03498) and the predicted labels give the mode-coverage report
(:mod:`gancli.metrics.coverage`).

Input contract, identical to what gancli feeds its discriminators:
``(N, 1, 28, 28)`` float in [-1, 1], i.e. ``uint8 / 127.5 - 1``. The weights are
for MNIST digits only; Fashion-MNIST would need a classifier of its own.

Weights file format ``gancli-lenet`` version 1: safetensors ``state_dict()``
tensors (float32) and string metadata ``format``, ``format_version``,
``feature_dim``, ``test_accuracy`` (fraction of the 10000 MNIST test images),
``test_correct``, ``data_sha256`` (JSON: raw MNIST file name -> sha256),
``seed``, ``epochs``, ``torch_version``, ``script``, ``tensors_sha256`` (sha256
of the tensors' bytes, checked on load) and a few training details.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancli.errors import GancliError
from gancli.fsutil import file_sha256

FORMAT = "gancli-lenet"
FORMAT_VERSION = 1
FEATURE_DIM = 128  # width of the penultimate layer = dimension of the FD-LeNet features
NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W) of the inputs
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "lenet-mnist.safetensors"
_FIXED_KEYS = ("format", "format_version", "feature_dim", "tensors_sha256")  # plain strings; other metadata: JSON


class LeNet(nn.Module):
    """A LeNet-5-style conv net for 28x28 digits, ~90k parameters.

    conv5x5(1->32) BN ReLU maxpool -> conv3x3(32->64) BN ReLU maxpool ->
    conv3x3(64->64, no padding) BN ReLU maxpool -> flatten 256 -> linear 128 ReLU
    (the features) -> dropout -> linear 10 (the logits).

    Args:
        feature_dim: width of the penultimate layer (the FD-LeNet feature dimension).
        dropout: drop probability before the last layer while training; 0 = off.
    """

    def __init__(self, feature_dim: int = FEATURE_DIM, dropout: float = 0.3):
        super().__init__()
        self.feature_dim = feature_dim
        self.convs = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 64 x 2 x 2
        )
        self.fc = nn.Linear(64 * 2 * 2, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 28, 28) in [-1, 1] -> (N, feature_dim) penultimate activations (>= 0)."""
        return torch.relu(self.fc(self.convs(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 28, 28) in [-1, 1] -> (N, 10) logits."""
        return self.head(self.dropout(self.features(x)))


# -- weights file --------------------------------------------------------------
def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and raw bytes of ``tensors`` in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(key.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_lenet(model: LeNet, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s weights atomically (temp file + fsync + rename) in the format above.

    Args:
        metadata: training facts (test accuracy, data hashes...), JSON-able; each value
            is stored as JSON.
    """
    from safetensors.torch import save_file

    from gancli.fsutil import atomic_path

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in metadata.items() if k not in _FIXED_KEYS}
    meta.update(format=FORMAT, format_version=str(FORMAT_VERSION), feature_dim=str(model.feature_dim),
                tensors_sha256=tensors_digest(tensors))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)  # shipped in the package: readable by everyone
    return path


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise GancliError(f"LeNet-MNIST weights {path} are missing; reinstall gancli or run scripts/train_lenet.py")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GancliError(f"LeNet-MNIST weights {path} are damaged ({first}); reinstall gancli") from None
    if meta.get("format") != FORMAT:
        raise GancliError(f"{path} is not a LeNet-MNIST weights file (format {meta.get('format')!r})")
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise GancliError(f"LeNet-MNIST weights {path} have format version {meta['format_version']}, newer than this "
                          f"gancli understands ({FORMAT_VERSION}); upgrade gancli")
    if tensors_digest(tensors) != meta.get("tensors_sha256"):
        raise GancliError(f"LeNet-MNIST weights {path} are damaged (checksum mismatch); reinstall gancli")
    return meta, tensors


def lenet_info(path: str | os.PathLike = WEIGHTS_PATH) -> dict[str, Any]:
    """The metadata of the shipped weights, JSON values decoded, plus ``path`` and
    ``weights_sha256`` (sha256 of the whole file).

    Raises:
        GancliError: the file is missing or damaged.
    """
    path = Path(path)
    meta, _ = _read(path)
    info: dict[str, Any] = {}
    for k, v in meta.items():
        if k in _FIXED_KEYS:
            info[k] = int(v) if k in ("format_version", "feature_dim") else v
        else:
            try:
                info[k] = json.loads(v)
            except ValueError:
                raise GancliError(f"LeNet-MNIST weights {path} are damaged (metadata {k!r} is not JSON)") from None
    info["path"] = str(path)
    info["weights_sha256"] = file_sha256(path)
    return info


def load_lenet(device: str | torch.device = "cpu", path: str | os.PathLike = WEIGHTS_PATH) -> LeNet:
    """The shipped LeNet-MNIST classifier in eval mode on ``device`` (strict load).

    Raises:
        GancliError: the weights file is missing, damaged or does not fit :class:`LeNet`.
    """
    path = Path(path)
    meta, tensors = _read(path)
    model = LeNet(feature_dim=int(meta.get("feature_dim", FEATURE_DIM)))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise GancliError(f"LeNet-MNIST weights {path} do not fit the model ({str(e).splitlines()[0]})") from None
    return model.to(device).eval()


# -- inference -----------------------------------------------------------------
def check_images(images: torch.Tensor) -> None:
    """Raises ValueError unless ``images`` is a float tensor (N, 1, 28, 28) with values in [-1, 1]
    (checked loosely: a 1% margin is allowed)."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"LeNet-MNIST expects a torch.Tensor of images, got {type(images).__name__}")
    shape = tuple(images.shape)
    if images.ndim != 4 or shape[1:] != IMAGE_SHAPE:
        hint = ""
        if images.ndim == 4 and shape[1] == 3:
            hint = "; RGB images are not digits of MNIST's kind (convert to 1 channel only if they are)"
        elif images.ndim == 4 and shape[1] in (1, 3) and shape[2:] != IMAGE_SHAPE[1:]:
            hint = f"; {shape[2]}x{shape[3]} images would need resizing to 28x28, which changes the metric"
        raise ValueError(f"LeNet-MNIST expects images of shape (N, 1, 28, 28) in [-1, 1], got {shape}{hint} "
                         "(the shipped classifier is for MNIST digits only)")
    if not images.is_floating_point():
        raise ValueError(f"LeNet-MNIST expects float images in [-1, 1], got dtype {images.dtype} "
                         "(convert uint8 with x / 127.5 - 1)")
    if images.numel():
        lo, hi = images.min().item(), images.max().item()
        if not (lo >= -1.01 and hi <= 1.01):  # also catches NaN
            raise ValueError(f"LeNet-MNIST expects images in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")


@torch.no_grad()
def lenet_outputs(model: LeNet, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features and logits of ``images``, computed in eval mode in batches.

    Args:
        model: from :func:`load_lenet`; its device is used.
        images: (N, 1, 28, 28) float in [-1, 1], on any device.
        batch_size: images per forward pass.

    Returns:
        ``features`` (N, 128) float64 and ``logits`` (N, 10) float64, both on the CPU.

    Raises:
        ValueError: wrong shape, dtype or value range (the message names what was given).
    """
    check_images(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, logits = [], []
    try:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device, torch.float32)
            f = model.features(x)
            feats.append(f.double().cpu())
            logits.append(model.head(f).double().cpu())
    finally:
        model.train(was_training)
    if not feats:
        return torch.zeros(0, model.feature_dim, dtype=torch.float64), torch.zeros(0, NUM_CLASSES, dtype=torch.float64)
    return torch.cat(feats), torch.cat(logits)
