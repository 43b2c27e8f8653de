"""What G and D are conditioned on: the one home of conditioning.

A run is one of three kinds, decided once from its model config by
:meth:`Conditioning.of`:

* ``none``: an unconditional GAN (``G(z)``, ``D(x)``);
* ``classes``: a class-conditional GAN (Mirza & Osindero 2014, arXiv 1411.1784)
  on the dataset's labels (``--conditional``): ``G(z, y)``, ``D(x, y)``, ``gan
  sample --class`` picks the class;
* ``clusters``: a self-conditioned GAN (Liu et al. 2020, arXiv 2006.10728): G and D
  are conditioned on k-means clusters of the training images
  (:mod:`gancli.conditioning.clusters`), found once for a new run and stored with
  it (:mod:`gancli.conditioning.store`); G draws its cluster from ``z``, so it
  keeps an unconditional interface (``G(z)``, no ``--class``).

Orthogonal to the labels, G's input is either ``z`` (a GAN) or an image of
``image_channels`` channels (an image-to-image ``--task``, issue #24: ``G(x)``, D
judging (input, image) pairs; such runs have no labels for now).

Every other module asks the :class:`Conditioning` object: how many classes G and
D are built over, where the training labels come from, whether G takes labels,
``z`` or an image, what ``gan sample --class`` accepts and what ``gan runs list`` shows.

Torch-free and a leaf (it imports nothing of gancli but :mod:`gancli.errors`), so
the resolver and the CLI use it without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gancli.errors import UsageError

#: ``--clusters`` of a new unconditional ``gan train`` run; ModelConfig's default is 0
#: (a model built in Python, or a config written before the option, is a plain GAN).
DEFAULT_CLUSTERS = 20
#: A new run keeps at least this many images per cluster: ``--clusters`` is lowered to
#: ``num_images // 20`` on small datasets, and off below 2 clusters.
MIN_IMAGES_PER_CLUSTER = 20
#: New runs on at least this many images find their clusters in a UMAP embedding
#: (``--cluster-features umap``); smaller ones, and configs written before the option, in pixels.
UMAP_MIN_IMAGES = 10_000
#: The one line a run with --cluster-features umap fails with when umap-learn is missing.
UMAP_MISSING = "--cluster-features umap needs the umap-learn package (a gancli dependency): pip install umap-learn"

KINDS = ("none", "classes", "clusters")
#: Feature spaces the k-means clusters are found in (:mod:`gancli.conditioning.clusters`).
CLUSTER_FEATURES = ("pixels", "umap")


def umap_available() -> bool:
    """Whether umap-learn is installed (looked up, not imported: importing it takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


@dataclass(frozen=True)
class Conditioning:
    """The conditioning of one run (or one generator).

    Attributes:
        kind: ``"none"``, ``"classes"`` or ``"clusters"`` (:data:`KINDS`).
        num_labels: K, the labels G and D are built over: the dataset's classes, or
            the clusters; 0 for ``none``.
        cluster_features: ``pixels`` or ``umap``, where the clusters are found
            (``clusters`` only; ``""`` otherwise).
        image_channels: C of the image G translates (``G(x)``: an image-to-image task's
            input, :attr:`~gancli.config.ModelConfig.in_channels`); 0 = G draws from ``z``.
    """

    kind: str = "none"
    num_labels: int = 0
    cluster_features: str = ""
    image_channels: int = 0

    @classmethod
    def of(cls, model: Any) -> Conditioning:
        """The conditioning a :class:`~gancli.config.ModelConfig` describes (class labels
        win: ``num_classes > 0`` is class-conditional whatever ``clusters`` says)."""
        image = int(getattr(model, "in_channels", 0) or 0)
        if model.num_classes:
            return cls("classes", int(model.num_classes), image_channels=image)
        if model.clusters:
            return cls("clusters", int(model.clusters), model.cluster_features, image)
        return cls(image_channels=image)

    @classmethod
    def of_generator(cls, generator: Any) -> Conditioning:
        """The conditioning of a built or loaded generator: from the model config it carries
        (``generator.config``), else from its interface (``num_classes``)."""
        model = getattr(generator, "config", None)
        if model is not None:
            return cls.of(model)
        k = int(getattr(generator, "num_classes", 0) or 0)
        return cls("classes", k) if k else cls()

    # -- what the networks see ----------------------------------------------------------
    @property
    def takes_image(self) -> bool:
        """G translates an image of :attr:`image_channels` channels (``G(x)``), taking no ``z``
        (pix2pix's noise is its dropout) and D judges (input, image) pairs."""
        return self.image_channels > 0

    @property
    def self_conditioned(self) -> bool:
        """G and D conditioned on k-means clusters, G drawing its cluster from ``z``."""
        return self.kind == "clusters"

    @property
    def labelled(self) -> bool:
        """Whether D (and the training batches) carry labels: classes or clusters."""
        return self.kind != "none"

    @property
    def generator_classes(self) -> int:
        """The classes G takes as its input ``y`` (``G(z, y)``): K for ``classes``, 0 for the
        others (a self-conditioned G takes ``z`` alone). Also what ``gan sample
        --class/--class-grid`` accept: ``0 .. generator_classes - 1``."""
        return self.num_labels if self.kind == "classes" else 0

    def network_config(self, model: Any) -> Any:
        """``model`` as the networks are built from it: a self-conditioned model is built as a
        conditional one over its clusters (``num_classes = clusters``)."""
        if self.self_conditioned:
            return dataclasses.replace(model, num_classes=self.num_labels)
        return model

    @property
    def label_source(self) -> str:
        """Where the training labels come from: ``dataset``, ``clusters`` or ``none``."""
        return {"classes": "dataset", "clusters": "clusters"}.get(self.kind, "none")

    # -- what users see -------------------------------------------------------------------
    def describe(self) -> str:
        """A few words for banners and listings: ``unconditional``, ``conditional (10
        classes)``, ``self-conditioned (20 clusters, umap)``, ``image-to-image (2-channel input)``."""
        if self.takes_image:
            return f"image-to-image ({self.image_channels}-channel input)"
        if self.kind == "classes":
            return f"conditional ({self.num_labels} classes)"
        if self.kind == "clusters":
            return f"self-conditioned ({self.num_labels} clusters, {self.cluster_features})"
        return "unconditional"

    def listing(self) -> dict[str, Any]:
        """The fields ``gan runs list --json`` shows: ``conditional`` (bool) and ``clusters`` (int, 0 = none)."""
        return {"conditional": self.kind == "classes", "clusters": self.num_labels if self.self_conditioned else 0}

    def check_class(self, value: int, flag: str = "--class") -> int:
        """``value`` if G can be asked for that class, else :class:`UsageError` naming the
        valid choices (or why there are none)."""
        k = self.generator_classes
        if not k:
            why = ("a self-conditioned G draws its cluster from z" if self.self_conditioned
                   else "the generator translates images" if self.takes_image else "the generator is unconditional")
            raise UsageError(f"{flag} {value}: {why}; only a run trained with --conditional takes a class")
        if not 0 <= value < k:
            raise UsageError(f"{flag} {value} is out of range; valid choices: 0..{k - 1}")
        return value


def effective_clusters(requested: int, num_images: int) -> int:
    """The ``--clusters`` a dataset of ``num_images`` supports: ``min(requested,
    num_images // MIN_IMAGES_PER_CLUSTER)``, and 0 (off) below 2 clusters."""
    k = min(requested, num_images // MIN_IMAGES_PER_CLUSTER)
    return k if k >= 2 else 0


def default_cluster_features(num_images: int) -> str:
    """``--cluster-features`` of a new run on ``num_images`` images: ``umap`` from
    :data:`UMAP_MIN_IMAGES` on (when umap-learn is installed), else ``pixels``."""
    return "umap" if num_images >= UMAP_MIN_IMAGES and umap_available() else "pixels"


def resolve_new(conditional: bool | None, dataset_classes: int, num_images: int, given: dict[str, Any],
                dataset: str, translating: str = "") -> dict[str, Any]:
    """The conditioning fields of a new run's ModelConfig: ``num_classes``, ``clusters``
    and ``cluster_features``.

    Args:
        conditional: ``--conditional`` (None = not given: unconditional).
        dataset_classes: the dataset's classes (0 = unlabelled).
        num_images: images the run trains on (after ``--limit``).
        given: the options given explicitly (``clusters``, ``cluster_features``).
        dataset: its name, for messages.
        translating: the image-to-image ``--task`` of the run (its G takes an image, and no
            labels for now); ``""`` = a GAN.

    Raises:
        UsageError: ``--conditional`` on an unlabelled dataset; ``--clusters`` < 0 or
            with ``--conditional``; either with an image-to-image task. (umap-learn's
            presence is checked with the other options, :func:`gancli.resolve.validate`.)
    """
    if translating:
        for flag, on in (("--conditional", conditional), (f"--clusters {given.get('clusters')}", given.get("clusters"))):
            if on:
                raise UsageError(f"{flag} is not available with --task {translating} (its G is conditioned on "
                                 "an image, not on labels); leave it off")
        return {"num_classes": 0, "clusters": 0, "cluster_features": given.get("cluster_features", "pixels")}
    if conditional and not dataset_classes:
        raise UsageError(f"--conditional needs a labelled dataset; {dataset!r} has no labels")
    num_classes = dataset_classes if conditional else 0
    requested = given.get("clusters", DEFAULT_CLUSTERS)
    if requested < 0:
        raise UsageError(f"--clusters must be >= 0, got {requested}")
    if num_classes and given.get("clusters"):
        raise UsageError(f"--clusters {given['clusters']} and --conditional exclude each other (a conditional "
                         "run is conditioned on the dataset's classes); give one")
    clusters = 0 if num_classes else effective_clusters(requested, num_images)
    features = given.get("cluster_features")
    if features is None:  # unused without clusters: left at pixels
        features = default_cluster_features(num_images) if clusters else "pixels"
    return {"num_classes": num_classes, "clusters": clusters, "cluster_features": features}
