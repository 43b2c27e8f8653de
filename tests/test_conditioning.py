"""The conditioning object and the stored cluster assignment (issue #23)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gancli.cli import app
from gancli.conditioning import Conditioning, effective_clusters, resolve_new
from gancli.conditioning import store as cstore
from gancli.config import ModelConfig
from gancli.errors import GancliError, UsageError


def test_conditioning_of_each_kind():
    none = Conditioning.of(ModelConfig())
    classes = Conditioning.of(ModelConfig(num_classes=10, clusters=20))  # class labels win over clusters
    clusters = Conditioning.of(ModelConfig(clusters=20, cluster_features="umap"))
    assert (none.kind, classes.kind, clusters.kind) == ("none", "classes", "clusters")
    assert [c.labelled for c in (none, classes, clusters)] == [False, True, True]
    assert [c.generator_classes for c in (none, classes, clusters)] == [0, 10, 0]
    assert [c.label_source for c in (none, classes, clusters)] == ["none", "dataset", "clusters"]
    assert clusters.network_config(ModelConfig(clusters=20)).num_classes == 20
    assert classes.network_config(ModelConfig(num_classes=10)).num_classes == 10
    assert none.network_config(ModelConfig()).num_classes == 0
    assert clusters.describe() == "self-conditioned (20 clusters, umap)"
    assert classes.listing() == {"conditional": True, "clusters": 0}
    assert clusters.listing() == {"conditional": False, "clusters": 20}


def test_check_class_names_the_valid_choices_or_why_there_are_none():
    assert Conditioning("classes", 10).check_class(9) == 9
    with pytest.raises(UsageError, match=r"--class 10 is out of range; valid choices: 0\.\.9"):
        Conditioning("classes", 10).check_class(10)
    with pytest.raises(UsageError, match="self-conditioned G draws its cluster from z"):
        Conditioning("clusters", 20, "umap").check_class(0)
    with pytest.raises(UsageError, match="unconditional"):
        Conditioning().check_class(0)


def test_resolve_new_picks_classes_clusters_or_none():
    assert resolve_new(True, 10, 60000, {}, "mnist") == {"num_classes": 10, "clusters": 0,
                                                          "cluster_features": "pixels"}
    assert resolve_new(None, 10, 100, {}, "mnist")["clusters"] == effective_clusters(20, 100) == 5
    assert resolve_new(None, 0, 30, {}, "folder")["clusters"] == 0  # under 2 clusters of 20 images: off
    with pytest.raises(UsageError, match="exclude each other"):
        resolve_new(True, 10, 60000, {"clusters": 5}, "mnist")
    with pytest.raises(UsageError, match="has no labels"):
        resolve_new(True, 0, 60000, {}, "folder")


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)


def _fail(*_a, **_k):
    raise AssertionError("clustered again")


def test_run_clusters_stores_reads_caches_and_refuses_other_images(tmp_path, monkeypatch):
    images = _images()
    run_a, run_b, home = tmp_path / "run-1", tmp_path / "run-2", tmp_path / "home"
    run_a.mkdir(), run_b.mkdir()
    notes: list[str] = []
    first = cstore.run_clusters(run_a, images, 3, "pixels", 5, resumed=False, home=home, note=notes.append)
    assert (run_a / cstore.RUN_FILE).exists() and "clustering 64 images into 3" in notes[-1]
    assert first.counts.tolist() == torch.bincount(first.labels, minlength=3).tolist()
    assert first.settings == {"algorithm": cstore.ALGORITHM_VERSION, "clusters": 3, "features": "pixels", "seed": 5,
                              "images": 64}
    assert set(first.versions) >= {"scikit-learn", "numpy", "torch"}
    assert len(list((home / "clusters").glob("*.safetensors"))) == 1

    monkeypatch.setattr("gancli.conditioning.clusters.kmeans_labels", _fail)
    resumed = cstore.run_clusters(run_a, images, 3, "pixels", 5, resumed=True, home=home)  # read, not found again
    assert torch.equal(resumed.labels, first.labels) and resumed.images_sha256 == first.images_sha256
    cached = cstore.run_clusters(run_b, images, 3, "pixels", 5, resumed=False, home=home, note=notes.append)
    assert torch.equal(cached.labels, first.labels) and "from the cache" in notes[-1]
    assert (run_b / cstore.RUN_FILE).exists()

    changed = images.clone()
    changed[7, 0, 3, 3] ^= 1  # one pixel of one image
    with pytest.raises(UsageError, match="training images differ from those run-1 was clustered on"):
        cstore.run_clusters(run_a, changed, 3, "pixels", 5, resumed=True, home=home)
    with pytest.raises(UsageError, match="other settings"):
        cstore.run_clusters(run_a, images, 3, "pixels", 6, resumed=True, home=home)


def test_other_settings_or_a_damaged_cache_entry_are_clustered_again(tmp_path, monkeypatch):
    images, home = _images(), tmp_path / "home"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    cstore.run_clusters(tmp_path / "a", images, 3, "pixels", 5, resumed=False, home=home)
    calls = []
    real = cstore.find_clusters
    monkeypatch.setattr(cstore, "find_clusters", lambda *a: calls.append(a) or real(*a))
    cstore.run_clusters(tmp_path / "b", images, 4, "pixels", 5, resumed=False, home=home)  # another K: a miss
    assert len(calls) == 1
    for entry in (home / "clusters").glob("*.safetensors"):
        entry.write_bytes(b"not safetensors")
    again = cstore.run_clusters(tmp_path / "c", images, 3, "pixels", 5, resumed=False, home=home)
    assert len(calls) == 2 and again.counts.sum() == 64


def test_a_damaged_run_file_is_one_clear_error(tmp_path):
    (tmp_path / cstore.RUN_FILE).write_bytes(b"\x00" * 20)
    with pytest.raises(GancliError, match="cannot read the clusters in"):
        cstore.run_clusters(tmp_path, _images(), 3, "pixels", 5, resumed=True)


def _folder(root, n=64, seed=0):
    from PIL import Image

    root.mkdir()
    for i, img in enumerate(_images(n, seed)):
        Image.fromarray(img[0].numpy(), mode="L").save(root / f"{i}.png")
    return root


def test_cli_resume_reads_the_stored_clusters_and_refuses_changed_data(home, tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")
    args = ["train", "--dataset", str(folder), "--image-size", "8", "--channels", "1", "--arch", "mlp", "--nz", "4",
            "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--clusters", "3", "--device", "cpu",
            "--sample-every", "0", "--monitor-every", "0"]
    r = CliRunner().invoke(app, [*args, "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert "clustering 64 images into 3 k-means clusters" in r.output
    stored = home / "runs" / "run-1" / cstore.RUN_FILE
    assert stored.exists()
    labels = cstore.ClusterAssignment.load(stored).labels

    monkeypatch.setattr("gancli.conditioning.clusters.kmeans_labels", _fail)
    r = CliRunner().invoke(app, ["train", "--resume", "run-1", "--steps", "4"])
    assert r.exit_code == 0, r.output
    assert "clustering" not in r.output
    assert torch.equal(cstore.ClusterAssignment.load(stored).labels, labels)

    r = CliRunner().invoke(app, [*args, "--steps", "2"])  # a second new run on the same data: from the cache
    assert r.exit_code == 0, r.output
    assert "3 k-means clusters of 64 images from the cache" in r.output
    assert torch.equal(cstore.ClusterAssignment.load(home / "runs" / "run-2" / cstore.RUN_FILE).labels, labels)

    from PIL import Image

    Image.fromarray(_images(1, seed=9)[0, 0].numpy(), mode="L").save(folder / "5.png")  # one image changed
    r = CliRunner().invoke(app, ["train", "--resume", "run-1", "--steps", "6"])
    assert r.exit_code == 2, r.output
    assert "training images differ from those run-1 was clustered on" in r.output
    assert "Traceback" not in r.output
    records = [json.loads(x) for x in (home / "runs" / "run-1" / "metrics.jsonl").read_text().splitlines()]
    assert max(x.get("step", 0) for x in records) == 4  # nothing trained, nothing lost
