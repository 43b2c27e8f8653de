"""A self-conditioned run's cluster assignment, found once and stored.

The k-means clusters of the training images (:mod:`gancli.conditioning.clusters`)
are computed for a new run only. Before step 1 they are written to
``<run>/clusters.safetensors``: the cluster of every training image, the cluster
sizes (what G's cluster frequencies are set from), the clustering settings, the
sha256 of the training images and the versions of the libraries that found them. A
resume, and every rank of a multi-process run, reads that file: labels that no
longer match the frequencies saved with G (another scikit-learn, umap-learn or
numba version, another CPU) cannot happen. A resume on other data (an image added,
removed or changed) is refused.

New runs also share a cache, ``<home>/clusters/<key>.safetensors``, keyed by the
settings and the images' sha256: a second new run on MNIST with the same
``--clusters``, ``--cluster-features`` and ``--seed`` starts without clustering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancli.errors import GancliError, UsageError
from gancli.fsutil import atomic_path

#: The file of a run directory that holds its clusters.
RUN_FILE = "clusters.safetensors"
FORMAT = "gancli-clusters"
#: Bumped when the clustering algorithm changes what it returns for the same inputs
#: (a cached assignment of another version is not reused).
ALGORITHM_VERSION = 2  # 2: k-means into 5k fine clusters, merged by Ward (issue #25)
_LIBRARIES = ("numpy", "scikit-learn", "umap-learn", "numba", "torch")


def images_sha256(images: torch.Tensor) -> str:
    """Hex sha256 of ``(N, C, H, W)`` uint8 images (their shape and bytes, in order)."""
    h = hashlib.sha256(repr(tuple(images.shape)).encode())
    flat = images.detach().to("cpu").contiguous().reshape(-1)
    step = 1 << 24
    for i in range(0, flat.numel(), step):
        h.update(flat[i:i + step].numpy().tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@dataclass(frozen=True)
class ClusterAssignment:
    """The clusters of one run's training images.

    Attributes:
        labels: ``(N,)`` int64 cluster of each training image, in [0, K), clusters
            numbered by decreasing size.
        counts: ``(K,)`` int64 images per cluster (G's cluster frequencies).
        settings: ``clusters`` (K), ``features`` (``pixels``/``umap``), ``seed`` (the
            clustering's seed), ``images`` (N), ``algorithm`` (:data:`ALGORITHM_VERSION`).
        images_sha256: :func:`images_sha256` of the images clustered.
        versions: library versions that found them (information only).
    """

    labels: torch.Tensor
    counts: torch.Tensor
    settings: dict[str, Any]
    images_sha256: str
    versions: dict[str, str]

    def cache_key(self) -> str:
        return cache_key(self.settings, self.images_sha256)

    def save(self, path: str | Path) -> None:
        """Write to ``path`` atomically (safetensors; settings in its metadata)."""
        from safetensors.torch import save_file

        meta = {"format": FORMAT, "settings": json.dumps(self.settings, sort_keys=True),
                "images_sha256": self.images_sha256, "versions": json.dumps(self.versions, sort_keys=True)}
        with atomic_path(path, keep_suffix=True) as tmp:
            save_file({"labels": self.labels.contiguous(), "counts": self.counts.contiguous()}, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> ClusterAssignment:
        """Read a file :meth:`save` wrote.

        Raises:
            GancliError: unreadable, not a cluster file, or inconsistent.
        """
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open has no __iter__
            if meta.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            a = cls(tensors["labels"], tensors["counts"], json.loads(meta["settings"]), meta["images_sha256"],
                    json.loads(meta.get("versions", "{}")))
        except Exception as e:  # noqa: BLE001 -- any damage reads as one clear error
            raise GancliError(f"cannot read the clusters in {path}: {e}") from None
        k = int(a.settings.get("clusters", 0))
        if a.labels.dim() != 1 or a.counts.shape != (k,) or int(a.counts.sum()) != a.labels.numel():
            raise GancliError(f"cannot read the clusters in {path}: labels and cluster sizes disagree")
        return a


def cache_key(settings: dict[str, Any], images_digest: str) -> str:
    """A file-name-safe key of the settings and the images: ``k<K>-<features>-<sha256[:24]>``."""
    blob = json.dumps({"settings": settings, "images": images_digest}, sort_keys=True).encode()
    return f"k{settings['clusters']}-{settings['features']}-{hashlib.sha256(blob).hexdigest()[:24]}"


def cache_dir(home: str | Path) -> Path:
    """``<home>/clusters``: assignments shared by new runs (not created here)."""
    return Path(home).expanduser() / "clusters"


def find_clusters(images: torch.Tensor, clusters: int, features: str, seed: int) -> ClusterAssignment:
    """Cluster ``images`` ``(N, C, H, W)`` uint8 into ``clusters`` k-means clusters in
    ``features`` space, seeded with ``seed`` (:func:`~gancli.conditioning.clusters.kmeans_labels`).

    Raises:
        ValueError, GancliError: as :func:`~gancli.conditioning.clusters.kmeans_labels`.
    """
    from gancli.conditioning.clusters import kmeans_labels

    labels = kmeans_labels(images, clusters, seed, features)
    return ClusterAssignment(labels, torch.bincount(labels, minlength=clusters), settings(clusters, features, seed,
                             len(images)), images_sha256(images), _versions())


def settings(clusters: int, features: str, seed: int, num_images: int) -> dict[str, Any]:
    """The settings that decide a clustering (what a stored one must match)."""
    return {"algorithm": ALGORITHM_VERSION, "clusters": clusters, "features": features, "seed": seed,
            "images": num_images}


def run_clusters(run_path: str | Path, images: torch.Tensor, clusters: int, features: str, seed: int, *,
                 resumed: bool, home: str | Path | None = None,
                 note: Callable[[str], None] = lambda _t: None) -> ClusterAssignment:
    """The cluster assignment of a run: read from the run directory when there, else
    from the cache (new runs), else found now and stored in both.

    Args:
        run_path: the run directory (its :data:`RUN_FILE` is read or written).
        images: the training images ``(N, C, H, W)`` uint8, as the run trains on them.
        clusters, features, seed: the clustering's settings (``--clusters``,
            ``--cluster-features``, the seed derived from ``--seed``).
        resumed: a resumed run (one without a stored assignment, from before gancli
            stored them, is clustered again, and the result stored).
        home: the gancli home of the cache (None = no cache).
        note: progress lines.

    Raises:
        UsageError: the stored assignment was found on other images or settings.
        GancliError: a damaged cluster file.
    """
    path = Path(run_path) / RUN_FILE
    want = settings(clusters, features, seed, len(images))
    digest = images_sha256(images)
    if path.exists():
        stored = ClusterAssignment.load(path)
        if stored.images_sha256 != digest:
            raise UsageError(
                f"the training images differ from those {Path(run_path).name} was clustered on (sha256 "
                f"{stored.images_sha256[:12]} then, {digest[:12]} now: an image added, removed or changed?); resume it "
                "on the same data, or start a new run")
        if stored.settings != want:
            raise UsageError(f"{path} holds clusters for other settings ({stored.settings}, this run needs {want}); "
                             "it was changed by hand: restore it or start a new run")
        return stored
    if resumed:
        note(f"{Path(run_path).name} has no stored clusters (a run from before gancli stored them): clustering again")
    cached = cache_dir(home) / f"{cache_key(want, digest)}.safetensors" if home is not None else None
    if cached is not None and not resumed and cached.exists():
        try:
            found = ClusterAssignment.load(cached)
        except GancliError:
            found = None  # a damaged cache entry is found again and rewritten below
        if found is not None and found.settings == want and found.images_sha256 == digest:
            note(f"self-conditioning: {clusters} k-means clusters of {len(images):,} images from the cache ({cached})")
            found.save(path)
            return found
    where = "a UMAP embedding of their pixels" if features == "umap" else "pixel space"
    note(f"self-conditioning: clustering {len(images):,} images into {clusters} k-means clusters in {where} "
         "(--clusters 0 = off)")
    from gancli import console

    with console.phase("clustering", note):
        found = find_clusters(images, clusters, features, seed)
    found.save(path)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            found.save(cached)
        except OSError:  # a read-only cache only costs the next run the clustering
            pass
    return found
