import json

import pytest

from gancli.config import CONFIG_VERSION, ModelConfig, RunConfig, TrainConfig
from gancli.errors import GancliError, UnknownNameError, UsageError
from gancli.resolve import build_config


def test_json_round_trip():
    cfg = RunConfig(model=ModelConfig(arch="mlp", nz=7), train=TrainConfig(steps=11, epochs=0.5, seed=3))
    again = RunConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["version"] == CONFIG_VERSION


def test_newer_config_version_is_refused():
    d = RunConfig().to_dict()
    d["version"] = CONFIG_VERSION + 1
    with pytest.raises(GancliError, match="newer than this gancli"):
        RunConfig.from_dict(d)


@pytest.mark.parametrize("section,key,value", [("model", "nz", "100"), ("train", "ema_decay", True),
                                               ("model", "spectral_norm", 1), ("train", "epochs", "x")])
def test_wrong_types_are_refused(section, key, value):
    d = RunConfig().to_dict()
    d[section][key] = value
    with pytest.raises(GancliError, match=f"config {section}.{key} must be"):
        RunConfig.from_dict(d)


def test_unknown_keys_are_refused():
    d = RunConfig().to_dict()
    d["model"]["wings"] = 2
    with pytest.raises(GancliError, match="unknown keys: wings"):
        RunConfig.from_dict(d)


def test_defaults_one_epoch_of_mnist():
    cfg = build_config({})
    assert cfg.data.dataset == "mnist" and cfg.model.arch == "dcgan" and cfg.loss.name == "bce"
    assert (cfg.model.img_channels, cfg.model.img_resolution) == (1, 28)
    assert cfg.train.epochs == 1.0
    assert cfg.train.steps == 60000 // 64


def test_epochs_to_steps_uses_limit_and_batch():
    cfg = build_config({"epochs": 2.5, "limit": 1000, "batch_size": 100})
    assert cfg.train.steps == 25


def test_steps_clears_epochs():
    cfg = build_config({"steps": 42})
    assert cfg.train.steps == 42 and cfg.train.epochs is None


def test_steps_and_epochs_conflict():
    with pytest.raises(UsageError, match="--steps or --epochs"):
        build_config({"steps": 5, "epochs": 1.0})


@pytest.mark.parametrize(
    "options,match",
    [
        ({"dataset": "mnist2"}, r"unknown dataset 'mnist2' \(did you mean 'mnist'\?\); valid choices: mnist"),
        ({"arch": "stylegan9"}, "unknown arch 'stylegan9'; valid choices: mlp, dcgan"),
        ({"loss": "l7"}, "unknown loss 'l7'; valid choices: bce, minimax"),
        ({"batch_size": 0}, "--batch-size must be > 0, got 0"),
        ({"lr_g": -1.0}, "--lr-g must be > 0"),
        ({"beta1": 1.0}, r"--beta1 must be in \[0, 1\)"),
        ({"keep": -1}, "--keep must be >= 0"),
        ({"limit": 10, "batch_size": 64}, "--limit 10 is smaller than --batch-size 64"),
        ({"epochs": -1.0}, "--epochs must be > 0"),
    ],
)
def test_bad_values_name_the_value(options, match):
    with pytest.raises(UsageError, match=match):
        build_config(options)


def _outside(b):
    """Values just outside ``b`` (a :class:`~gancli.config.Bounds`), on each bounded side, and one inside."""
    bad = []
    if b.min is not None:
        bad.append(b.min if b.min_exclusive else b.min - 1)
    if b.max is not None:
        bad.append(b.max if b.max_exclusive else b.max + 1)
    good = b.min if b.min is not None and not b.min_exclusive else (b.min or 0) + (0.5 if b.max == 1 else 1)
    return bad, good


def _bounded_specs():
    from gancli.config import option_specs

    return [s for s in option_specs() if s.bounds is not None]


@pytest.mark.parametrize("spec", _bounded_specs(), ids=lambda s: s.flag)
def test_every_declared_range_is_checked_with_its_flag_and_bound(spec):
    """The one generic pass of resolve.validate: a value just outside an option's declared
    range is refused naming the flag, the range and the value; one just inside passes."""
    import dataclasses

    from gancli.resolve import validate

    bads, good = _outside(spec.bounds)
    cast = int if spec.type == "int" else float
    base = RunConfig(train=TrainConfig(steps=10))

    def with_value(v):
        section = getattr(base, spec.section)
        return base.replace(**{spec.section: dataclasses.replace(section, **{spec.field: cast(v)})})

    for bad in bads:
        with pytest.raises(UsageError) as e:
            validate(with_value(bad))
        assert str(e.value) == f"{spec.flag} must be {spec.bounds.text()}, got {cast(bad)}"
    validate(with_value(good))


def test_ranges_read_as_the_messages_say():
    from gancli.config import MAX_SEED, option_specs

    text = {s.name: s.bounds.text() for s in option_specs() if s.bounds is not None}
    assert text["nz"] == "> 0" and text["keep"] == ">= 0" and text["beta1"] == "in [0, 1)"
    assert text["seed"] == "in [0, 2^63 - 1]" and MAX_SEED == 2**63 - 1
    assert {"nz", "ngf", "ndf", "clusters", "lr_g", "lr_d", "beta1", "beta2", "momentum", "batch_size", "steps",
            "epochs", "seed", "log_every", "sample_every", "checkpoint_every", "keep", "limit", "eval_every",
            "monitor_every", "d_steps", "r1_every", "gp_lambda", "r1_gamma", "ema_decay"} <= set(text)
    with pytest.raises(UsageError, match=r"^--nz must be > 0, got 0$"):
        build_config({"nz": 0})
    with pytest.raises(UsageError, match=r"^--beta1 must be in \[0, 1\), got 1.5$"):
        build_config({"beta1": 1.5})


def test_unknown_name_error_type():
    with pytest.raises(UnknownNameError):
        build_config({"arch": "nope"})


def test_resume_allows_only_length_and_device():
    base = build_config({"steps": 10, "arch": "mlp"})
    longer = build_config({"steps": 20, "device": "cpu"}, base=base)
    assert longer.train.steps == 20 and longer.train.device == "cpu" and longer.model == base.model
    same = build_config({"arch": "mlp"}, base=base)  # unchanged value is fine
    assert same == base
    with pytest.raises(UsageError, match="--lr-g cannot change when resuming"):
        build_config({"lr_g": 1e-3}, base=base)
    by_epochs = build_config({"epochs": 2.0}, base=base)
    assert by_epochs.train.steps == 2 * (60000 // 64)


def test_mlp_recipe_brings_r1_beneath_explicit_options_presets_and_loss_recipes():
    """Issue #28: ``--arch mlp`` trains with lazy R1 (gamma 1, every 16th D update) unless told otherwise."""
    mlp = build_config({"arch": "mlp"}).loss
    assert (mlp.r1_gamma, mlp.r1_every) == (1.0, 16)
    assert build_config({"arch": "dcgan"}).loss.r1_gamma == 0.0
    assert build_config({"arch": "mlp", "r1_gamma": 0.0}).loss.r1_gamma == 0.0
    assert build_config({"arch": "mlp", "r1_every": 4}).loss.r1_every == 4
    assert build_config({"arch": "mlp", "loss": "wgan-gp"}).loss.r1_gamma == 0.0  # its gradient penalty instead
    assert build_config({}, preset="mnist-mlp").loss.r1_gamma == 1.0
    resumed = build_config({"steps": 20}, base=build_config({"arch": "mlp", "r1_gamma": 0.0, "steps": 10}))
    assert resumed.loss.r1_gamma == 0.0  # a resumed run keeps its own config, recipe or not


def test_hinge_recipe_brings_sngan_adam_betas():
    """Issue #25: ``--loss hinge`` trains with Adam(beta1 0, beta2 0.99) (SNGAN's beta1, StyleGAN2's
    beta2): the README job with spectral norm, seed 0, FD-LeNet 4.05 (beta2 0.9: 7.59; Adam(0.5,
    0.999): 8.17)."""
    hinge = build_config({"loss": "hinge", "spectral_norm": True}).optim
    assert (hinge.beta1, hinge.beta2) == (0.0, 0.99)
    assert (build_config({}).optim.beta1, build_config({}).optim.beta2) == (0.5, 0.999)
    assert build_config({"loss": "hinge", "beta1": 0.5}).optim.beta1 == 0.5  # explicit options win
    assert build_config({}, preset="mnist-hinge-sn").optim.beta1 == 0.0
    inpaint = build_config({"loss": "hinge", "task": "inpaint", "arch": "unet"}).optim  # over the task's 0.5, as wgan-gp's
    assert (inpaint.beta1, build_config({"task": "inpaint", "arch": "unet"}).optim.beta1) == (0.0, 0.5)
