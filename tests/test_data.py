"""Dataset registry, image folders, --image-size / --channels. Tiny synthetic files, no network."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancli.config import DataConfig
from gancli.data import (
    MNIST,
    DatasetInfo,
    ImageFolder,
    describe,
    get_source,
    load_split,
)
from gancli.data.transforms import rgb_to_gray
from gancli.errors import GancliError, UnknownNameError, UsageError

# -- helpers ---------------------------------------------------------------


def save(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    """Write an (H, W) or (H, W, 3) uint8 array as an image file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An MNIST idx file: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_cifar(base: Path, per_batch: int = 2) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny cifar-10-batches-py in the official layout; returns split -> (NCHW images, labels)."""
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    splits: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = [int(y) for y in rng.integers(0, 10, per_batch)]
        with open(base / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels,
                         b"data": images.reshape(per_batch, 3072), b"filenames": []}, f, protocol=2)
        split = "test" if name == "test_batch" else "train"
        splits[split][0].append(images)
        splits[split][1].extend(labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return {k: (np.concatenate(v[0]), v[1]) for k, v in splits.items()}


def assert_one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg
    return msg


# -- registry, MNIST ---------------------------------------------------------


def test_mnist_info_and_describe():
    assert describe(DataConfig()) == DatasetInfo(1, 28, 10, {"train": 60000, "test": 10000})
    info = describe(DataConfig(image_size=32, channels=3, split="test"))
    assert (info.channels, info.resolution, info.num_classes) == (3, 32, 10)
    assert get_source("mnist") is MNIST


def test_mnist_loads_unchanged(mnist_dir):
    data = load_split(DataConfig(split="test", limit=8), mnist_dir)
    assert data.images.shape == (8, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert len(data.classes) == 10 and data.skipped == []


def test_mnist_image_size_and_channels(mnist_dir):
    native = load_split(DataConfig(split="test", limit=4), mnist_dir).images
    big = load_split(DataConfig(split="test", limit=4, image_size=32), mnist_dir).images
    assert big.shape == (4, 1, 32, 32) and big.dtype == torch.uint8
    # the digit stays where it was: bright pixels in the middle, dark border
    assert big[:, :, 12:20, 12:20].float().mean() > big[:, :, :3, :].float().mean() + 50
    rgb = load_split(DataConfig(split="test", limit=4, channels=3), mnist_dir).images
    assert rgb.shape == (4, 3, 28, 28)
    assert torch.equal(rgb[:, 0], native[:, 0]) and torch.equal(rgb[:, 2], native[:, 0])


def test_unknown_dataset_message():
    with pytest.raises(UnknownNameError) as e:
        describe(DataConfig(dataset="x"))
    assert str(e.value) == ("unknown dataset 'x'; valid choices: mnist, fashion-mnist, cifar10, celeba, "
                            "or a folder of images")
    assert e.value.exit_code == 2 and e.value.choices == ["mnist", "fashion-mnist", "cifar10", "celeba"]


def test_bad_split():
    with pytest.raises(UsageError, match=r"^unknown split 'valid' for mnist; valid choices: train, test$"):
        describe(DataConfig(split="valid"))
    assert set(describe(DataConfig(dataset="celeba", split="valid")).sizes) == {"train", "valid", "test"}


@pytest.mark.parametrize("field,value,flag", [
    ("channels", 2, "--channels 2"), ("channels", -1, "--channels -1"),
    ("image_size", 4, "--image-size 4"), ("image_size", -8, "--image-size -8"),
])
def test_bad_shape_options(field, value, flag):
    with pytest.raises(UsageError) as e:
        describe(DataConfig(**{field: value}))
    assert str(e.value).startswith(flag + " is not valid; valid choices:")


@pytest.mark.parametrize("name,info", [
    ("fashion-mnist", DatasetInfo(1, 28, 10, {"train": 60000, "test": 10000})),
    ("cifar10", DatasetInfo(3, 32, 10, {"train": 50000, "test": 10000})),
    ("celeba", DatasetInfo(3, 64, 0, {"train": 162770, "valid": 19867, "test": 19962})),
])
def test_named_info(name, info):
    assert describe(DataConfig(dataset=name)) == info
    assert describe(DataConfig(dataset=name, channels=1, image_size=48)).resolution == 48


MISSING = {
    "fashion-mnist": ("FashionMNIST/raw", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], "FashionMNIST/raw/"),
    "cifar10": ("cifar-10-batches-py", ["data_batch_1", "data_batch_5", "test_batch", "batches.meta"],
                "cifar-10-batches-py/"),
    "celeba": ("celeba", ["img_align_celeba/", "list_eval_partition.txt"], "celeba/"),
}


@pytest.mark.parametrize("download", [False, True], ids=["no-download", "download-fails"])
@pytest.mark.parametrize("name", list(MISSING))
def test_named_missing_is_one_line(tmp_path, name, download):
    subdir, files, hint = MISSING[name]
    with pytest.raises(GancliError) as e:
        load_split(DataConfig(dataset=name, download=download), tmp_path / "data")
    msg = assert_one_line(e.value)
    assert type(e.value) is GancliError
    assert f" not found in {tmp_path / 'data' / subdir} and " in msg
    assert ("could not be downloaded" if download else "--no-download was given") in msg
    for f in files:
        assert f in msg
    assert msg.endswith(f"point --data-dir / GANCLI_DATA_DIR at a folder with {hint}")


# -- Fashion-MNIST, CIFAR-10, CelebA from tiny files ------------------------------


def test_fashion_mnist_from_idx_files(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    rng = np.random.default_rng(1)
    test_images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for prefix, images in (("train", test_images[:1]), ("t10k", test_images)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(len(images), dtype=np.uint8) + 4)
    data = load_split(DataConfig(dataset="fashion-mnist", split="test", download=False), tmp_path)
    assert torch.equal(data.images, torch.from_numpy(test_images)[:, None])
    assert data.labels.tolist() == [4, 5, 6] and data.classes[0] == "T-shirt/top"


def test_cifar10_from_batches(tmp_path):
    expected = write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_split(DataConfig(dataset="cifar10", download=False), tmp_path)
    assert data.images.shape == (10, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.from_numpy(expected["train"][0]))
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == expected["train"][1]
    assert data.classes[:2] == ["airplane", "automobile"] and len(data.classes) == 10
    test = load_split(DataConfig(dataset="cifar10", split="test", channels=1, image_size=16, limit=1), tmp_path)
    assert test.images.shape == (1, 1, 16, 16) and test.labels.tolist() == expected["test"][1][:1]


def test_cifar10_row_layout_is_rgb_planes(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=1)
    red = np.zeros((1, 3072), dtype=np.uint8)
    red[0, :1024] = 255  # the first 1024 bytes of a row are the red plane
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": red, "labels": [3]}, f, protocol=2)  # str keys, as the official files
    img = load_split(DataConfig(dataset="cifar10", split="test", download=False), tmp_path).images[0]
    assert img[0].min() == 255 and img[1:].max() == 0


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_cifar10_refuses_pickled_code(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=1)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": [0]}, f)
    with pytest.raises(GancliError, match=r"cannot read CIFAR-10 batch .*test_batch \(unexpected object builtins\.print"):
        load_split(DataConfig(dataset="cifar10", split="test", download=False), tmp_path)


def test_celeba_from_tiny_folder(tmp_path):
    base = tmp_path / "celeba"
    for i in range(1, 5):
        photo = solid(218, 178, (0, 0, 255))
        photo[20:198] = (0, 200, 0)  # the centered 178x178 square is green, the bands cropped away blue
        save(base / "img_align_celeba" / f"{i:06d}.jpg", photo)
    (base / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    data = load_split(DataConfig(dataset="celeba", download=False), tmp_path)
    assert data.images.shape == (2, 3, 64, 64) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 0] and data.classes == []
    mean = data.images.float().mean(dim=(0, 2, 3))
    assert mean[1] > 190 and mean[0] < 10 and mean[2] < 10  # JPEG: nearly exact
    assert load_split(DataConfig(dataset="celeba", split="valid", download=False, image_size=32, channels=1),
                      tmp_path).images.shape == (1, 1, 32, 32)


# -- image folders ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["./imgs", "../imgs", "/abs/imgs", "~/imgs", "some/imgs"])
def test_path_like_names_are_folders(name):
    assert get_source(name) is ImageFolder


def test_existing_dir_is_a_folder_but_names_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").mkdir()
    (tmp_path / "mnist").mkdir()
    assert get_source("faces") is ImageFolder
    assert get_source("mnist") is MNIST
    with pytest.raises(UnknownNameError):
        get_source("fashion")


def test_flat_folder_is_unlabelled_and_recursive(tmp_path):
    root = tmp_path / "flat"
    save(root / "a.png", solid(10, 10, (255, 0, 0)))
    save(root / "b.JPG", solid(12, 12, (255, 0, 0)), fmt="JPEG")
    save(root / "deeper" / "c.webp", solid(8, 8, (255, 0, 0)))
    (root / "notes.txt").write_text("not an image")
    save(root / ".hidden.png", solid(8, 8, (0, 0, 0)))
    cfg = DataConfig(dataset=str(root), image_size=16)
    assert describe(cfg) == DatasetInfo(3, 16, 0, {"train": 3})
    data = load_split(cfg, "/nonexistent-data-dir")
    assert data.images.shape == (3, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 0, 0] and data.classes == [] and data.skipped == []
    assert data.images[:, 0].float().mean() > 245 and data.images[:, 1:].float().mean() < 10


def test_class_subfolders_give_sorted_labels(tmp_path):
    root = tmp_path / "pets"
    save(root / "dog" / "nested" / "d1.png", solid(8, 8, (0, 0, 0)))
    save(root / "cat" / "c2.png", solid(8, 8, (0, 0, 0)))
    save(root / "cat" / "c1.gif", solid(8, 8, (0, 0, 0)))
    save(root / ".cache" / "x.png", solid(8, 8, (0, 0, 0)))
    (root / "empty").mkdir()
    cfg = DataConfig(dataset=str(root))
    assert describe(cfg) == DatasetInfo(3, 64, 2, {"train": 3})
    data = load_split(cfg, tmp_path)
    assert data.classes == ["cat", "dog"] and data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 3, 64, 64)


def test_single_subfolder_is_unlabelled(tmp_path):
    save(tmp_path / "celeba" / "img_align_celeba" / "1.png", solid(8, 8, (0, 0, 0)))
    assert describe(DataConfig(dataset=str(tmp_path / "celeba"))).num_classes == 0


def test_folder_channel_conversion(tmp_path):
    rgb = (200, 100, 50)
    save(tmp_path / "color" / "a.png", solid(8, 8, rgb))
    gray = load_split(DataConfig(dataset=str(tmp_path / "color"), channels=1, image_size=8), tmp_path)
    assert gray.images.shape == (1, 1, 8, 8)
    assert int(gray.images.unique()) == Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0)) == 124
    save(tmp_path / "gray" / "b.png", np.full((8, 8), 77, dtype=np.uint8))
    as_rgb = load_split(DataConfig(dataset=str(tmp_path / "gray"), image_size=8), tmp_path)
    assert as_rgb.images.shape == (1, 3, 8, 8) and as_rgb.images.unique().tolist() == [77]


def test_folder_center_crops_non_square(tmp_path):
    bands = solid(20, 40, (255, 0, 0))  # 40 wide, 20 high: red | green | blue columns
    bands[:, 10:30] = (0, 255, 0)
    bands[:, 30:] = (0, 0, 255)
    save(tmp_path / "wide" / "w.png", bands)
    for size in (20, 10):
        img = load_split(DataConfig(dataset=str(tmp_path / "wide"), image_size=size), tmp_path).images[0]
        assert img.shape == (3, size, size)
        assert img[1].min() == 255 and img[0].max() == 0 and img[2].max() == 0


def test_unreadable_image_fails_naming_it(tmp_path):
    root = tmp_path / "mixed"
    save(root / "a.png", solid(8, 8, (1, 2, 3)))
    bad = root / "b.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes())
    cfg = DataConfig(dataset=str(root), image_size=8)
    assert describe(cfg).sizes == {"train": 2}  # info lists names, decodes nothing
    with pytest.raises(GancliError) as e:
        load_split(cfg, tmp_path)
    msg = assert_one_line(e.value)
    assert msg.startswith(f"cannot read image {bad} (") and "--skip-bad-images" in msg


def test_skip_bad_images_reports_them(tmp_path):
    root = tmp_path / "mixed"
    save(root / "a.png", solid(8, 8, (1, 2, 3)))
    (root / "b.png").write_bytes(b"\x89PNG not really")
    save(root / "c.bmp", solid(8, 8, (1, 2, 3)))
    data = load_split(DataConfig(dataset=str(root), image_size=8, skip_bad_images=True), tmp_path)
    assert data.images.shape == (2, 3, 8, 8) and data.labels.tolist() == [0, 0]
    assert data.skipped == [str(root / "b.png")]
    (root / "a.png").write_bytes(b"")
    (root / "c.bmp").write_bytes(b"")
    with pytest.raises(GancliError, match="none of the 3 image files could be read"):
        load_split(DataConfig(dataset=str(root), skip_bad_images=True), tmp_path)


def test_limit_stops_decoding_early(tmp_path):
    root = tmp_path / "imgs"
    for i in range(3):
        save(root / f"{i}.png", solid(8, 8, (i, i, i)))
    (root / "9.png").write_bytes(b"broken, but after the limit")
    data = load_split(DataConfig(dataset=str(root), image_size=8, limit=2), tmp_path)
    assert data.images[:, 0, 0, 0].tolist() == [0, 1]


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(GancliError) as e:
        describe(DataConfig(dataset=str(tmp_path / "nope")))
    assert f"image folder {tmp_path / 'nope'} not found" in assert_one_line(e.value)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(GancliError) as e:
        describe(DataConfig(dataset=str(tmp_path / "text")))
    msg = assert_one_line(e.value)
    assert f"no images in {tmp_path / 'text'}" in msg and ".png, .jpg, .jpeg, .bmp, .webp, .gif" in msg


def test_folder_has_only_a_train_split(tmp_path):
    save(tmp_path / "imgs" / "a.png", solid(8, 8, (0, 0, 0)))
    with pytest.raises(UsageError, match=r"unknown split 'test' for .*imgs; valid choices: train$"):
        describe(DataConfig(dataset=str(tmp_path / "imgs"), split="test"))


def test_rgb_to_gray_matches_pil():
    x = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ours = rgb_to_gray(torch.from_numpy(x).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.array_equal(ours, np.array(Image.fromarray(x).convert("L")))


def test_labels_outside_the_classes_are_refused_at_load_naming_the_file(tmp_path, mnist_dir, home):
    """Issue #26: a labels file with 254 in a 10-class set trained a conditional G silently; now
    loading the split fails with one line naming the file, before a run directory exists."""
    import shutil

    from typer.testing import CliRunner

    from gancli.cli import app

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        shutil.copy(mnist_dir / "MNIST" / "raw" / name, raw / name)
    labels = bytearray((raw / "train-labels-idx1-ubyte").read_bytes())
    labels[8 + 17] = 254  # the 18th label (after the 8-byte idx header)
    (raw / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    r = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "train", "--conditional", "--arch", "mlp",
                                 "--limit", "64", "-b", "32", "--steps", "1", "--no-download"])
    assert r.exit_code == 1, r.output
    assert (f"MNIST labels in {raw / 'train-labels-idx1-ubyte'} are damaged: label 254 at index 17 (1 such) is "
            "outside the 10 classes 0-9") in r.output
    assert not (home / "runs").exists() or not list((home / "runs").glob("run-*"))
