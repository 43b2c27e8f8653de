import json

import pytest
import torch
from safetensors.torch import save_file

from gancli.checkpoint import (
    flatten_state,
    load_checkpoint,
    load_generator,
    read_header,
    save_checkpoint,
    unflatten_state,
)
from gancli.config import ModelConfig, RunConfig
from gancli.errors import GancliError
from gancli.models import build_discriminator, build_generator


def _models(arch="dcgan"):
    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(arch=arch, nz=8, ngf=8, ndf=8))
    return cfg, build_generator(cfg.model), build_discriminator(cfg.model)


def test_flatten_round_trip_keeps_int_keys_and_tensors():
    state = {"state": {0: {"step": torch.tensor(3.0), "m": torch.ones(2)}},
             "param_groups": [{"lr": 0.1, "betas": [0.5, 0.9], "params": [0], "foreach": None}]}
    tensors = {}
    skel = flatten_state(state, "opt", tensors)
    json.dumps(skel)  # JSON-able
    back = unflatten_state(json.loads(json.dumps(skel)), tensors)
    assert list(back["state"]) == [0]
    assert torch.equal(back["state"][0]["m"], torch.ones(2))
    assert back["param_groups"][0]["betas"] == [0.5, 0.9]


def test_optimizer_state_round_trip(tmp_path):
    cfg, g, d = _models()
    opt = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g(torch.randn(4, 8)).mean().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.safetensors", cfg, {"step": 1}, {"generator": g, "optim_g": opt})
    ck = load_checkpoint(path)
    opt2 = torch.optim.Adam(build_generator(cfg.model).parameters(), lr=5.0)
    opt2.load_state_dict(ck.part("optim_g"))
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 1e-3
    for k in a["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a["state"][k][name], b["state"][k][name])


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_checkpoint_alone_rebuilds_generator(tmp_path, arch):
    cfg, g, d = _models(arch)
    path = save_checkpoint(tmp_path / "step-5.safetensors", cfg, {"step": 5}, {"generator": g, "discriminator": d})
    g2 = load_generator(path)
    z = torch.randn(6, 8)
    g.eval()
    assert torch.equal(g(z), g2(z))
    assert not g2.training and g2.checkpoint_step == 5
    # tensors only: the file holds no pickle, the metadata holds the config
    header = read_header(path)
    assert RunConfig.from_json(header["config"]) == cfg


def test_damaged_and_foreign_files_give_clear_errors(tmp_path):
    cfg, g, d = _models()
    path = save_checkpoint(tmp_path / "c.safetensors", cfg, {"step": 1}, {"generator": g})
    blob = path.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(GancliError, match="trunc.safetensors"):
        load_generator(trunc)
    pickle = tmp_path / "pickle.safetensors"
    torch.save({"w": torch.ones(1)}, pickle)
    with pytest.raises(GancliError, match="damaged or not a safetensors file"):
        load_generator(pickle)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(1)}, str(foreign))
    with pytest.raises(GancliError, match="is not a gancli checkpoint"):
        load_generator(foreign)
    with pytest.raises(GancliError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")


def test_wrong_shapes_are_reported(tmp_path):
    cfg, g, d = _models()
    bigger = RunConfig(model=ModelConfig(arch="dcgan", nz=8, ngf=16, ndf=8))
    path = save_checkpoint(tmp_path / "c.safetensors", bigger, {"step": 1}, {"generator": g})
    with pytest.raises(GancliError, match="does not match its config"):
        load_generator(path)
