"""The converter against a PyTorch RRDB-Net written here from ESRGAN's
RRDBNet_arch.py (and BasicSR's x2 variant), under all three key namings."""

import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from vaecyclegan.config import ModelConfig  # noqa: E402
from vaecyclegan.errors import InputError  # noqa: E402
from vaecyclegan.networks import build_network  # noqa: E402
from vaecyclegan.upscaler.esrgan_conversion import (  # noqa: E402
    convert_esrgan,
    infer_rrdbnet_config,
    keras_weights,
    to_esrgan_names,
)
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet  # noqa: E402


class ResidualDenseBlock5C(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.RDB1 = ResidualDenseBlock5C(nf, gc)
        self.RDB2 = ResidualDenseBlock5C(nf, gc)
        self.RDB3 = ResidualDenseBlock5C(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class TorchRRDBNet(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc * (4 if scale == 2 else 1), nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = self.lrelu(self.upconv1(F.interpolate(fea, scale_factor=2, mode="nearest")))
        fea = self.lrelu(self.upconv2(F.interpolate(fea, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.HRconv(fea)))


def old_names(state_dict, nb):
    """ESRGAN's pre-2019 keys (its transer_RRDB_models.py, run backwards)."""
    top = {"conv_first": "model.0", "upconv1": "model.3", "upconv2": "model.6",
           "HRconv": "model.8", "conv_last": "model.10", "trunk_conv": f"model.1.sub.{nb}"}
    renamed = {}
    for key, value in state_dict.items():
        prefix, suffix = key.rsplit(".", 1)
        if prefix in top:
            renamed[f"{top[prefix]}.{suffix}"] = value
        else:
            renamed[f"{prefix.replace('RRDB_trunk.', 'model.1.sub.')}.0.{suffix}"] = value
    return renamed


def basicsr_names(state_dict):
    top = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
           "HRconv": "conv_hr"}
    renamed = {}
    for key, value in state_dict.items():
        prefix, suffix = key.rsplit(".", 1)
        prefix = top.get(prefix, prefix)
        prefix = re.sub(r"RRDB_trunk\.(\d+)\.RDB(\d)", r"body.\1.rdb\2", prefix)
        renamed[f"{prefix}.{suffix}"] = value
    return {"params": renamed}


def _torch_model(nb=2, scale=4, seed=0):
    torch.manual_seed(seed)
    model = TorchRRDBNet(nf=8, nb=nb, gc=4, scale=scale).eval()
    with torch.no_grad():  # default init makes the residual branches tiny: widen them
        for p in model.parameters():
            p.mul_(3.0)
    return model


@pytest.mark.parametrize("naming,scale", [
    ("esrgan", 4), ("esrgan_old", 4), ("basicsr", 4), ("basicsr", 2)])
def test_converted_model_equals_pytorch(tmp_path, naming, scale):
    reference = _torch_model(scale=scale)
    state = reference.state_dict()
    saved = {"esrgan": state, "esrgan_old": old_names(state, 2),
             "basicsr": basicsr_names(state)}[naming]
    pth = tmp_path / "model.pth"
    torch.save(saved, pth)
    out = tmp_path / "weights" / "rrdbnet_weights.h5"

    _, config = convert_esrgan(str(pth), str(out))
    assert (config.rrdbnet.scale, config.rrdbnet.num_block, config.rrdbnet.num_feat,
            config.rrdbnet.num_grow_ch) == (scale, 2, 8, 4)
    loaded = ModelConfig.load(str(tmp_path / "weights"))
    keras_model = build_network(loaded, "rrdbnet")
    keras_model.load_weights(str(out))  # plain Keras, as a user would

    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 12, 16)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    actual = np.asarray(keras_model(x.transpose(0, 2, 3, 1)))
    assert actual.shape == expected.shape == (2, 12 * scale, 16 * scale, 3)
    assert np.abs(expected).max() > 0.05  # a real signal, not zeros on both sides
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_full_esrgan_shape_list_converts_without_running():
    state = {k: v.numpy() for k, v in TorchRRDBNet().state_dict().items()}
    assert len(state) == 2 * (1 + 23 * 15 + 5)
    names = to_esrgan_names(state)
    config, channels = infer_rrdbnet_config(names)
    assert (config.scale, config.num_feat, config.num_block, config.num_grow_ch, channels) == (
        4, 64, 23, 32, 3)
    model = build_rrdbnet(config, channels)
    weights = keras_weights(model, names)
    assert [w.shape for w in weights] == [tuple(v.shape) for v in model.weights]
    assert sum(w.size for w in weights) == 16_697_987


def test_existing_config_keeps_the_translators(tmp_path, tiny_config):
    tiny_config.save(str(tmp_path))
    pth = tmp_path / "m.pth"
    torch.save(_torch_model().state_dict(), pth)
    convert_esrgan(str(pth), str(tmp_path / "rrdbnet_weights.h5"))
    config = ModelConfig.load(str(tmp_path))
    assert config.generator == tiny_config.generator
    assert config.rrdbnet.num_feat == 8 and config.training["rrdbnet_source"] == "m.pth"


def test_a_pickle_with_code_is_refused(tmp_path):
    pth = tmp_path / "evil.pth"
    torch.save({"model": os.system}, pth)  # a global that unpickling would resolve
    with pytest.raises(InputError, match="not a safe PyTorch weights file"):
        convert_esrgan(str(pth), str(tmp_path / "out.h5"))
    assert not (tmp_path / "out.h5").exists()


def test_other_networks_are_refused(tmp_path):
    pth = tmp_path / "resnet.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)).state_dict(), pth)
    with pytest.raises(InputError, match="not an RRDB-Net state_dict"):
        convert_esrgan(str(pth), str(tmp_path / "out.h5"))


def test_convert_cli_is_one_line_on_a_missing_file(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.convert import main

    assert run_cli(main, ["esrgan", str(tmp_path / "absent.pth"), str(tmp_path / "o.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'absent.pth'}: file not found"
