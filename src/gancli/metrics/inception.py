"""The Inception feature extractor behind FID and IS: torch-fidelity's InceptionV3, our weights loading.

Protocol (as torch-fidelity's ``fid`` / ``isc``, Obukhov et al., "High-fidelity performance
metrics for generative models in PyTorch", doi 10.5281/zenodo.4957738): the network is
torch-fidelity's ``FeatureExtractorInceptionV3``, a port of the TensorFlow InceptionV3 graph of
2015-12-05 used by the original FID code (Heusel et al. 2017, arXiv 1706.08500) and IS code
(Salimans et al. 2016, arXiv 1606.03498). It takes uint8 ``(N, 3, H, W)`` images of any size
and resizes them to 299x299 with its TensorFlow-1.x-exact bilinear interpolation
(``align_corners=False``). Grayscale images are repeated to 3 channels first; float images in
[-1, 1] are quantised to uint8 exactly as gancli writes PNGs (:func:`to_uint8`).

Weights: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (a plain state dict
of float32 tensors). pytorch-fid publishes the same file as
``pt_inception-2015-12-05-6726825d.pth``; both names carry the same sha256 prefix and the
same full sha256 (:data:`WEIGHTS_SHA256`). :func:`resolve_inception_weights` finds them
(``--inception-weights``, ``GANCLI_INCEPTION_WEIGHTS``, the torch hub cache, then a
hash-checked download), and :class:`InceptionExtractor` loads them with
``torch.load(weights_only=True)`` and a strict key match: torch-fidelity's own loader
would unpickle a user-given file with ``weights_only=False``, which can run code.

Features: ``pool`` is the 2048-d average pool (torch-fidelity ``'2048'``, used by FID and
KID); ``logits`` are the 1008 *unbiased* logits, the pool times the final weight matrix
without its bias (torch-fidelity ``'logits_unbiased'``, which its IS uses).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from gancli.errors import GancliError, UsageError
from gancli.fsutil import atomic_path

WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
"""torch-fidelity's name for the weights (its ``URL_INCEPTION_V3``)."""

PYTORCH_FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
"""pytorch-fid's name for the same file."""

WEIGHTS_FILENAMES = (WEIGHTS_FILENAME, PYTORCH_FID_WEIGHTS_FILENAME)

WEIGHTS_URLS = (
    # torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (torch-fidelity 0.4.0)
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILENAME,
    # pytorch_fid.inception.FID_WEIGHTS_URL, the same bytes under pytorch-fid's name
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PYTORCH_FID_WEIGHTS_FILENAME,
)

WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
"""sha256 of the official weights file (95,628,359 bytes).

torch-fidelity itself states only the prefix ``6726825d`` (torch hub's convention: the file
name ends with the first hex digits of the sha256). The full value is the one that several
independent projects record for both file names; a download is accepted only if it matches.
"""

WEIGHTS_ENV = "GANCLI_INCEPTION_WEIGHTS"
WEIGHTS_FLAG = "--inception-weights"

EXTRACTOR_NAME = "torch-fidelity FeatureExtractorInceptionV3"
RESIZE = "torch-fidelity TF1-exact bilinear to 299x299"
FEATURE_DIMS = {"pool": 2048, "logits": 1008}
"""Width of each feature :meth:`InceptionExtractor.features` returns."""

_TORCH_FIDELITY_FEATURES = {"pool": "2048", "logits": "logits_unbiased"}
_DOWNLOAD_TIMEOUT_SECONDS = 30.0
_CHUNK_BYTES = 1 << 20


def hub_checkpoints_dir() -> Path:
    """torch hub's download cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _in_dir(directory: Path) -> Path | None:
    for name in WEIGHTS_FILENAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def _given_path(value: str | os.PathLike, source: str) -> Path:
    """The weights file named by ``source`` (the flag or the env var); a folder is searched for the known names."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        found = _in_dir(path)
        if found is None:
            raise UsageError(f"{source} {path}: folder holds neither {WEIGHTS_FILENAME} nor {PYTORCH_FID_WEIGHTS_FILENAME}")
        return found
    raise UsageError(f"{source} {path}: no such file")


def _download(url: str, dst: Path, sha256: str, timeout_seconds: float = _DOWNLOAD_TIMEOUT_SECONDS) -> None:
    """Fetch ``url`` to ``dst`` atomically; raises OSError on network failure, GancliError on a hash mismatch."""
    import urllib.request

    h = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "gancli"})
    with atomic_path(dst) as tmp:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response, open(tmp, "wb") as out:
            while chunk := response.read(_CHUNK_BYTES):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise GancliError(f"download of {url} has sha256 {h.hexdigest()}, expected {sha256}; not kept")


def resolve_inception_weights(path: str | os.PathLike | None = None, *, allow_download: bool = True,
                              on_download: Callable[[str, Path], None] | None = None) -> Path:
    """Find the Inception weights file, in this order:

    1. ``path`` (the ``--inception-weights`` value): a file, or a folder holding one of
       :data:`WEIGHTS_FILENAMES`;
    2. the ``GANCLI_INCEPTION_WEIGHTS`` environment variable (same forms; empty = unset);
    3. the torch hub cache, :func:`hub_checkpoints_dir` / :data:`WEIGHTS_FILENAMES`;
    4. with ``allow_download``, a download of :data:`WEIGHTS_URLS` (in turn) into the torch
       hub cache, kept only when its sha256 is :data:`WEIGHTS_SHA256`.

    Files found in 1-3 are not hash-checked here (a custom conversion is allowed); their
    hash is part of every cached statistic (:attr:`InceptionExtractor.weights_sha256`).

    Args:
        on_download: called as ``on_download(url, destination)`` before each download
            attempt, e.g. to tell the user about a ~92 MiB transfer.

    Returns:
        The path of an existing weights file.

    Raises:
        UsageError: ``path`` or the env var names something that does not exist.
        GancliError: nothing found and no download possible (``$GANCLI_OFFLINE`` set, or the
            downloads failed: after a failure that says the network is down no other URL is
            tried); a short first line, then the command that fetches the file into the
            folder gancli looks in, the flag and the env var.
    """
    if path is not None and str(path) != "":
        return _given_path(path, WEIGHTS_FLAG)
    env = os.environ.get(WEIGHTS_ENV, "")
    if env:
        return _given_path(env, WEIGHTS_ENV)
    cache = hub_checkpoints_dir()
    found = _in_dir(cache)
    if found is not None:
        return found

    failure = "downloads disabled"
    if allow_download and os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        failure = f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV].strip()}: no download tried"
    elif allow_download:
        failures: list[str] = []
        for url in WEIGHTS_URLS:
            dst = cache / url.rsplit("/", 1)[-1]
            if on_download is not None:
                on_download(url, dst)
            try:
                cache.mkdir(parents=True, exist_ok=True)
                _download(url, dst, WEIGHTS_SHA256)
                return dst
            except (OSError, GancliError) as e:  # URLError, timeouts and HTTP errors are OSErrors
                reason = _short_reason(e)
                if reason not in failures:
                    failures.append(reason)
                if _network_down(e):  # no route, no DNS, refused, timed out: the next URL would fail alike
                    break
        failure = "download failed: " + "; ".join(failures)
    raise GancliError(
        f"Inception weights not found ({failure})\n"
        f"  get them once (92 MiB, sha256 {WEIGHTS_SHA256[:16]}...) where gancli looks:\n"
        f"    mkdir -p {cache} && curl -L -o {cache / WEIGHTS_FILENAME} {WEIGHTS_URLS[0]}\n"
        f"  or pass {WEIGHTS_FLAG} PATH / set {WEIGHTS_ENV}=PATH"
    )


#: Set to 1 to never download (the Inception weights): offline machines fail at once.
OFFLINE_ENV = "GANCLI_OFFLINE"


def _short_reason(error: BaseException) -> str:
    """``<urlopen error [Errno -3] Temporary failure in name resolution>`` -> ``Temporary
    failure in name resolution``: the words a user needs, on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = re.sub(r"^<urlopen error (.*)>$", r"\1", text)
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


def _network_down(error: BaseException) -> bool:
    """Whether a failed download says the network (not the server) is unreachable: a URLError
    that is not an HTTP status, a timeout, a refused or reset connection."""
    import socket
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return False
    if isinstance(error, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError)):
        return True
    text = str(error).lower()
    return any(w in text for w in ("name resolution", "network is unreachable", "timed out", "connection refused",
                                   "no route to host", "name or service not known"))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``images`` as uint8, quantised as gancli's PNG writer does (``torchvision.utils.save_image``
    with ``normalize=True, value_range=(-1, 1)``, used by :mod:`gancli.generate.sampling`).

    Args:
        images: ``(N, C, H, W)`` uint8 in [0, 255] (returned as is), or float in [-1, 1]
            (clamped to [-1, 1], then ``(x + 1) / 2 * 255 + 0.5`` truncated to uint8, i.e.
            rounded half up; computed in the input's dtype on its device).

    Raises:
        ValueError: another dtype, or float values outside [-1, 1] by more than 1% (also NaN).
    """
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(f"Inception expects uint8 images in [0, 255] or float images in [-1, 1], got dtype {images.dtype}")
    if images.numel():
        lo, hi = images.min().item(), images.max().item()
        if not (lo >= -1.01 and hi <= 1.01):  # also catches NaN
            raise ValueError(f"Inception expects float images in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
    # torchvision.utils: make_grid(normalize=True) clamps and rescales, save_image rounds.
    return images.clamp(-1, 1).sub(-1).div(2).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def _load_error_reason(e: Exception) -> str:
    """The informative line of a ``torch.load`` error (for weights_only refusals, the unpickler's)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(e).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0]
    return lines[0] if lines else type(e).__name__


def _check_batch(images: object) -> torch.Tensor:
    if isinstance(images, (tuple, list)) and images and isinstance(images[0], torch.Tensor):
        images = images[0]  # a DataLoader's (images, labels)
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"Inception expects a torch.Tensor of images, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception expects images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    return images


class InceptionExtractor:
    """torch-fidelity's InceptionV3 with weights from ``weights``, in eval mode on ``device``.

    Args:
        weights: a state-dict file, usually from :func:`resolve_inception_weights`; loaded
            with ``torch.load(map_location="cpu", weights_only=True)`` and matched strictly
            (every key, every shape) against torch-fidelity's network.
        device: where the forward passes run.

    Attributes:
        weights_path: the file loaded.
        weights_sha256: hex sha256 of its bytes (the bytes that were loaded).
        official: whether that is :data:`WEIGHTS_SHA256`.
        name, resize: the protocol, for reports and cache keys (:data:`EXTRACTOR_NAME`, :data:`RESIZE`).

    Raises:
        GancliError: the file cannot be read, is not a plain state dict (``weights_only``
            refuses pickled code), or does not fit the network (missing, unexpected or
            mis-shaped keys); one line naming the file.
    """

    name = EXTRACTOR_NAME
    resize = RESIZE
    feature_dims = FEATURE_DIMS

    def __init__(self, weights: str | os.PathLike, device: str | torch.device = "cpu"):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.weights_path = Path(weights)
        self.device = torch.device(device)
        try:
            data = self.weights_path.read_bytes()
        except OSError as e:
            raise GancliError(f"cannot read Inception weights {self.weights_path} ({e.strerror or e})") from None
        self.weights_sha256 = hashlib.sha256(data).hexdigest()
        self.official = self.weights_sha256 == WEIGHTS_SHA256
        try:
            state_dict = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError from weights_only, RuntimeError / EOFError for damaged zips
            raise GancliError(f"Inception weights {self.weights_path} are not a plain state dict "
                              f"(torch.load with weights_only=True: {_load_error_reason(e)})") from None
        del data
        if not isinstance(state_dict, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
            raise GancliError(f"Inception weights {self.weights_path} are not a state dict (a mapping of names to "
                              f"tensors), found {type(state_dict).__name__}")
        # torch-fidelity's constructor always loads weights itself, with weights_only=False on a
        # path. It gets an in-memory copy of the tensors we have just loaded safely instead, so
        # its own strict load_state_dict does the key matching and nothing of the file is unpickled
        # unrestricted.
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        buffer.seek(0)
        del state_dict
        try:
            net = FeatureExtractorInceptionV3(
                "gancli-inception-v3", [_TORCH_FIDELITY_FEATURES[k] for k in FEATURE_DIMS],
                feature_extractor_weights_path=buffer,
            )
        except RuntimeError as e:  # load_state_dict(strict=True): missing / unexpected keys, size mismatch
            detail = "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip()) or str(e)
            if len(detail) > 300:
                detail = detail[:300] + "..."
            raise GancliError(f"Inception weights {self.weights_path} do not fit torch-fidelity's InceptionV3 "
                              f"({detail})") from None
        self.net = net.to(self.device).eval()

    def __repr__(self) -> str:
        return f"InceptionExtractor({str(self.weights_path)!r}, sha256={self.weights_sha256[:12]}, device={self.device})"

    @torch.inference_mode()
    def _forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = to_uint8(images).to(self.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale -> RGB, as PNG readers do
        out = self.net(x.contiguous())
        return {k: v.to("cpu", torch.float64) for k, v in zip(FEATURE_DIMS, out)}

    def features_from_batches(self, batches: Iterable[torch.Tensor], batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Features of a stream of image batches, never holding more than one batch of images.

        Args:
            batches: tensors ``(n, C, H, W)`` with C in {1, 3} (1 is repeated to 3) and any
                H, W, uint8 in [0, 255] or float in [-1, 1] (see :func:`to_uint8`); on any
                device. A ``(images, labels)`` tuple, as a DataLoader yields, is taken for its
                images. Larger batches are split into forward passes of ``batch_size``.
            batch_size: images per forward pass (the results do not depend on it beyond
                float32 rounding).

        Returns:
            ``{"pool": (N, 2048), "logits": (N, 1008)}`` float64 CPU tensors, in input order;
            ``logits`` are unbiased (no final bias; torch-fidelity's ``logits_unbiased``).

        Raises:
            ValueError: a batch of the wrong type, shape, dtype or value range.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in FEATURE_DIMS}
        for batch in batches:
            images = _check_batch(batch)
            for chunk in images.split(batch_size):
                for k, v in self._forward(chunk).items():
                    parts[k].append(v)
        return {k: torch.cat(v) if v else torch.zeros(0, FEATURE_DIMS[k], dtype=torch.float64) for k, v in parts.items()}

    def features(self, images: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Features of ``images`` ``(N, C, H, W)``; as :meth:`features_from_batches` for one batch."""
        return self.features_from_batches([_check_batch(images)], batch_size=batch_size)
