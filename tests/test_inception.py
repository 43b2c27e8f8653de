"""Inception plumbing through the real offline path, with randomly initialised weights.

No pretrained weights exist on the test machines: a fixture writes a random state dict of
torch-fidelity's InceptionV3 under the official file name, and everything else (resolution,
weights_only + strict loading, uint8 conversion, grayscale -> RGB, resize to 299, batching,
FID, the statistics cache) runs as in `gan evaluate`. A 299x299 forward is slow on a small
CPU, so each test feeds a few images and the main feature sets are computed once per module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gancli.errors import GancliError, UsageError
from gancli.fsutil import file_sha256
from gancli.metrics import inception as inc
from gancli.metrics.cache import load_stats, save_stats, stats_cache_dir, stats_key, stats_path
from gancli.metrics.frechet import feature_stats, frechet_distance
from gancli.metrics.inception import (
    PYTORCH_FID_WEIGHTS_FILENAME,
    WEIGHTS_ENV,
    WEIGHTS_FILENAME,
    WEIGHTS_FLAG,
    InceptionExtractor,
    resolve_inception_weights,
    to_uint8,
)

N = 4  # images per feature set
FID_DIMS = 256  # FID on the first 256 pool dims: a 2048-d eigendecomposition takes ~15 s on a 2-core CPU


def _random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """torch-fidelity's InceptionV3 built without weights, convolutions re-initialised (He normal,
    arXiv 1502.01852) so that activations keep their scale through ~40 layers."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    class _Unloaded(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if state_dict is None:  # the constructor's download, stubbed out below
                return None
            return super().load_state_dict(state_dict, strict, assign)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fe, "load_state_dict_from_url", lambda *args, **kwargs: None)
        torch.manual_seed(seed)
        net = _Unloaded("random", ["2048"])
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.state_dict()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A folder holding a random-weights file under the official name."""
    d = tmp_path_factory.mktemp("inception-weights")
    torch.save(_random_state_dict(seed=0), d / WEIGHTS_FILENAME)
    return d


@pytest.fixture(scope="module")
def weights_file(weights_dir) -> Path:
    return weights_dir / WEIGHTS_FILENAME


@pytest.fixture(scope="module")
def extractor(weights_file) -> InceptionExtractor:
    """Loaded through the env-var path with downloads off, as an offline `gan evaluate` would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(WEIGHTS_ENV, str(weights_file))
        path = resolve_inception_weights(None, allow_download=False)
    assert path == weights_file
    return InceptionExtractor(path, device="cpu")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """(N, 1, 28, 28) uint8: blurred random blobs, so that pixel noise is a real change."""
    g = torch.Generator().manual_seed(1)
    low = torch.rand(N, 1, 7, 7, generator=g)
    x = torch.nn.functional.interpolate(low, size=(28, 28), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def feats(extractor, images) -> dict[str, torch.Tensor]:
    return extractor.features(images, batch_size=N)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch hub dir for this test; the original setting comes back afterwards."""
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # recorded for the undo only
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    return tmp_path / "hub"


def _offline(url, dst, sha256, *args, **kwargs):
    raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")


# -- resolution ----------------------------------------------------------------
def test_resolution_order_explicit_env_hub(hub_dir, weights_file, tmp_path, monkeypatch):
    monkeypatch.setattr(inc, "_download", _offline)
    (hub_dir / "checkpoints").mkdir(parents=True)
    hub_file = hub_dir / "checkpoints" / PYTORCH_FID_WEIGHTS_FILENAME  # pytorch-fid's name is found too
    hub_file.write_bytes(b"hub")
    assert resolve_inception_weights() == hub_file

    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"env")
    monkeypatch.setenv(WEIGHTS_ENV, str(env_file))
    assert resolve_inception_weights() == env_file
    assert resolve_inception_weights(weights_file) == weights_file  # the flag beats the env var
    assert resolve_inception_weights(str(weights_file.parent)) == weights_file  # a folder holding the file

    monkeypatch.setenv(WEIGHTS_ENV, "")  # empty = unset
    assert resolve_inception_weights() == hub_file


def test_given_paths_must_exist(hub_dir, tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(UsageError, match=f"{WEIGHTS_FLAG} .*nope.pth: no such file"):
        resolve_inception_weights(missing)
    monkeypatch.setenv(WEIGHTS_ENV, str(missing))
    with pytest.raises(UsageError, match=f"{WEIGHTS_ENV} .*nope.pth: no such file"):
        resolve_inception_weights()
    with pytest.raises(UsageError, match=f"folder holds neither {WEIGHTS_FILENAME}"):
        resolve_inception_weights(tmp_path)


@pytest.mark.parametrize("allow_download", [True, False])
def test_missing_weights_offline_is_a_short_line_then_the_fix(hub_dir, monkeypatch, allow_download):
    """Issue #27: a short first line (under 100 characters), then how to get the file; a
    network that is down is tried once, not once per URL."""
    calls = []
    monkeypatch.setattr(inc, "_download", lambda *a, **k: (calls.append(a[0]), _offline(*a, **k)))
    with pytest.raises(GancliError) as err:
        resolve_inception_weights(allow_download=allow_download)
    first, *fix = str(err.value).splitlines()
    assert len(first) < 100 and fix and not isinstance(err.value, UsageError), first
    for part in (WEIGHTS_FLAG, WEIGHTS_ENV, WEIGHTS_FILENAME, str(hub_dir / "checkpoints"), "curl -L -o"):
        assert part in "\n".join(fix)
    assert ("name resolution" in first) == allow_download
    assert calls == ([inc.WEIGHTS_URLS[0]] if allow_download else [])


def test_offline_env_means_no_download_attempt(hub_dir, monkeypatch):
    monkeypatch.setattr(inc, "_download", lambda *a, **k: pytest.fail("a download was tried"))
    monkeypatch.setenv(inc.OFFLINE_ENV, "1")
    with pytest.raises(GancliError, match="GANCLI_OFFLINE=1: no download tried"):
        resolve_inception_weights()


def test_download_goes_to_hub_cache_with_hash_check(hub_dir, monkeypatch):
    calls = []

    def fake_download(url, dst, sha256, *args, **kwargs):
        calls.append((url, dst, sha256))
        if url != inc.WEIGHTS_URLS[-1]:
            raise OSError("HTTP Error 503")
        dst.write_bytes(b"weights")

    monkeypatch.setattr(inc, "_download", fake_download)
    seen = []
    path = resolve_inception_weights(on_download=lambda url, dst: seen.append(url))
    assert path == hub_dir / "checkpoints" / PYTORCH_FID_WEIGHTS_FILENAME and path.read_bytes() == b"weights"
    assert [c[0] for c in calls] == list(inc.WEIGHTS_URLS) == seen
    assert all(c[2] == inc.WEIGHTS_SHA256 for c in calls)
    assert inc.WEIGHTS_SHA256.startswith(WEIGHTS_FILENAME.rsplit("-", 1)[1].split(".")[0])  # torch hub's prefix


def test_download_keeps_only_a_matching_hash(tmp_path):
    import hashlib

    src = tmp_path / "src.bin"
    src.write_bytes(b"inception" * 1000)
    dst = tmp_path / "cache" / WEIGHTS_FILENAME
    dst.parent.mkdir()
    with pytest.raises(GancliError, match="expected 00"):
        inc._download(src.as_uri(), dst, "00" * 32)
    assert list(dst.parent.iterdir()) == []  # nothing half-written or unverified is left
    inc._download(src.as_uri(), dst, hashlib.sha256(src.read_bytes()).hexdigest())
    assert dst.read_bytes() == src.read_bytes()


def test_file_sha256_streams(tmp_path):
    import hashlib

    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


# -- loading -----------------------------------------------------------------
def test_extractor_identity(extractor, weights_file):
    assert extractor.weights_sha256 == file_sha256(weights_file)
    assert not extractor.official
    assert "FeatureExtractorInceptionV3" in extractor.name and "299" in extractor.resize
    assert not extractor.net.training


def test_strict_keys_renamed_key_is_refused(tmp_path):
    sd = _random_state_dict(seed=1)
    sd["fc.bias_renamed"] = sd.pop("fc.bias")
    bad = tmp_path / WEIGHTS_FILENAME
    torch.save(sd, bad)
    with pytest.raises(GancliError, match="do not fit torch-fidelity's InceptionV3") as err:
        InceptionExtractor(bad)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and "fc.bias" in msg


def test_pickled_code_is_refused_by_weights_only(tmp_path):
    bad = tmp_path / WEIGHTS_FILENAME
    torch.save({"model": torch.nn.Linear(2, 2)}, bad)  # a pickled module, not a state dict
    with pytest.raises(GancliError, match="weights_only=True: Unsupported global") as err:
        InceptionExtractor(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a torch file"])
def test_damaged_file_is_refused(tmp_path, content):
    bad = tmp_path / WEIGHTS_FILENAME
    bad.write_bytes(content)
    with pytest.raises(GancliError, match="not a plain state dict"):
        InceptionExtractor(bad)


def test_non_dict_payload_is_refused(tmp_path):
    bad = tmp_path / WEIGHTS_FILENAME
    torch.save([torch.zeros(2)], bad)
    with pytest.raises(GancliError, match="not a state dict"):
        InceptionExtractor(bad)


# -- inputs --------------------------------------------------------------------
def test_float_to_uint8_matches_gancli_pngs(tmp_path):
    from PIL import Image

    from gancli.generate.sampling import save_individual

    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 9, 11, generator=g) * 2 - 1
    x[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.0, -1.0 + 1 / 255])  # ends, mid, near a rounding step
    paths = save_individual(x, tmp_path)
    from_png = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])
    assert torch.equal(to_uint8(x), from_png)
    u = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_uint8(u.float() / 127.5 - 1), u)  # gancli's data scaling round-trips exactly
    assert to_uint8(u) is u


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(2, 4, 8, 8), r"\(N, 1 or 3, H, W\)"),
    (torch.zeros(2, 8, 8), r"\(N, 1 or 3, H, W\)"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.int64), "dtype"),
    (torch.full((2, 1, 8, 8), 255.0), r"\[-1, 1\]"),
    (np.zeros((2, 1, 8, 8)), "torch.Tensor"),
])
def test_bad_inputs_are_refused(extractor, bad, match):
    with pytest.raises(ValueError, match=match):
        extractor.features(bad)


def test_features_shapes_and_dtypes(feats):
    assert feats["pool"].shape == (N, 2048) and feats["logits"].shape == (N, 1008)
    assert all(v.dtype == torch.float64 and v.device.type == "cpu" for v in feats.values())
    assert torch.isfinite(feats["pool"]).all() and feats["pool"].std(0).max() > 0  # images differ in features


def test_grayscale_is_repeated_to_rgb(extractor, images):
    # Exact: both calls run the same forward on the same (2, 3, 28, 28) input. Comparing with rows
    # of a larger batch would not be: CPU convolution kernels may round differently per batch size
    # (seen on AVX2 CPUs; test_batch_size_independence covers that with a tolerance).
    gray = extractor.features(images[:2])
    rgb = extractor.features(images[:2].repeat(1, 3, 1, 1))
    for k in ("pool", "logits"):
        torch.testing.assert_close(rgb[k], gray[k], rtol=0, atol=0)


def test_any_size_is_resized_to_299(extractor, images, feats):
    seen = []
    hook = extractor.net.Conv2d_1a_3x3.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[2:])))
    try:
        out32 = extractor.features(torch.nn.functional.pad(images[:1], (2, 2, 2, 2)))
        out64 = extractor.features(images[:1].repeat_interleave(2, -1).repeat_interleave(2, -2).float() / 127.5 - 1)
    finally:
        hook.remove()
    assert seen == [(299, 299), (299, 299)]
    for out in (out32, out64):
        assert out["pool"].shape == (1, 2048) and torch.isfinite(out["pool"]).all()
        assert not torch.equal(out["pool"], feats["pool"][:1])


def test_batch_size_independence(extractor, images, feats):
    one_by_one = extractor.features(images[:2], batch_size=1)
    for k in ("pool", "logits"):
        torch.testing.assert_close(one_by_one[k], feats[k][:2], rtol=1e-4, atol=1e-5)


# -- FID through the extractor -----------------------------------------------------
def _fid(a: torch.Tensor, b: torch.Tensor) -> float:
    return frechet_distance(*feature_stats(a[:, :FID_DIMS]), *feature_stats(b[:, :FID_DIMS]))


def test_fid_same_images_is_zero_and_grows_with_noise(extractor, images, feats):
    # The same images as floats in [-1, 1], streamed in two batches of 2.
    as_float = images.float() / 127.5 - 1
    streamed = extractor.features_from_batches(((b, None) for b in as_float.split(2)), batch_size=2)
    torch.testing.assert_close(streamed["pool"], feats["pool"], rtol=1e-4, atol=1e-5)

    g = torch.Generator().manual_seed(3)
    noise = torch.randn(as_float.shape, generator=g)
    noisy = {s: extractor.features((as_float + s * noise).clamp(-1, 1))["pool"] for s in (0.1, 0.5)}
    fid_same = _fid(feats["pool"], streamed["pool"])
    fid_small, fid_big = _fid(feats["pool"], noisy[0.1]), _fid(feats["pool"], noisy[0.5])
    assert 0 < fid_small < fid_big
    assert fid_same < 1e-3 * fid_small


# -- statistics cache --------------------------------------------------------------
def test_stats_cache_dir_is_beside_runs(home):
    assert stats_cache_dir(home) == home / "stats"
    assert stats_cache_dir(None).name == "stats"


def test_cache_key_changes_with_every_field(extractor):
    fields = dict(dataset="mnist", split="train", extractor=extractor.name,
                  weights_sha256=extractor.weights_sha256, resolution=28, num_samples=10000)
    key = stats_key(**fields)
    assert key.startswith("mnist-train-28px-n10000-w" + extractor.weights_sha256[:8])
    stats_path(key)  # a plain file name
    changed = dict(dataset="fashion-mnist", split="test", extractor=extractor.name + " v2",
                   weights_sha256=inc.WEIGHTS_SHA256, resolution=32, num_samples=5000)
    for field, value in changed.items():
        assert stats_key(**{**fields, field: value}) != key, field
    assert stats_key(**fields) == key
    odd = stats_key("my data/../x", "a b", "e", "0" * 64, 28, 1)
    assert "/" not in odd and " " not in odd and not odd.startswith(".")


def test_cache_key_follows_the_weights_hash(weights_dir, tmp_path):
    other = tmp_path / WEIGHTS_FILENAME
    data = bytearray((weights_dir / WEIGHTS_FILENAME).read_bytes())
    other.write_bytes(bytes(data) + b"\0")  # same tensors, different bytes
    keys = {stats_key("mnist", "train", inc.EXTRACTOR_NAME, file_sha256(p), 28, 100)
            for p in (weights_dir / WEIGHTS_FILENAME, other)}
    assert len(keys) == 2


def test_cache_round_trip_and_damage(home):
    key = stats_key("mnist", "train", inc.EXTRACTOR_NAME, "ab" * 32, 28, 4)
    assert load_stats(key, home) is None
    mu = np.linspace(0, 1, 5)
    sigma = np.eye(5) * 2.5
    path = save_stats(key, {"mu": mu, "sigma": sigma}, {"num_samples": 4, "note": "x"}, home)
    assert path.parent == stats_cache_dir(home) and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    arrays, meta = load_stats(key, home)
    assert arrays["mu"].dtype == np.float64 and np.array_equal(arrays["mu"], mu) and np.array_equal(arrays["sigma"], sigma)
    assert meta == {"num_samples": 4, "note": "x"}

    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated
    assert load_stats(key, home) is None
    path.write_bytes(b"\xff" * 7)
    assert load_stats(key, home) is None
    save_stats(key, {"mu": mu}, {}, home)  # a damaged entry is simply overwritten
    assert np.array_equal(load_stats(key, home)[0]["mu"], mu)

    other = stats_key("mnist", "test", inc.EXTRACTOR_NAME, "ab" * 32, 28, 4)
    stats_path(other, home).write_bytes(path.read_bytes())  # an entry copied under another key is a miss
    assert load_stats(other, home) is None


def test_cache_rejects_bad_keys_and_meta(home):
    for key in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            stats_path(key, home)
    with pytest.raises(ValueError, match="JSON"):
        save_stats("k", {"mu": np.zeros(2)}, {"bad": object()}, home)
