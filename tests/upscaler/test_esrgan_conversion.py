"""The converter against a PyTorch RRDB-Net written here from ESRGAN's
RRDBNet_arch.py (and BasicSR's x2 variant), under all three key namings."""

import os
import re
import warnings

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


@pytest.mark.parametrize("scale", [4, 2])
def test_the_reference_forward_pass_is_esrgans_module(scale):
    # The reference a conversion is checked against, against ESRGAN's
    # nn.Module as written above: two implementations, one architecture.
    from vaecyclegan.upscaler.esrgan_reference import esrgan_forward

    module = _torch_model(scale=scale)
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, 10, 12)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    actual = esrgan_forward(state, x.transpose(0, 2, 3, 1), scale)
    assert np.abs(expected).max() > 0.05
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_a_conversion_that_differs_from_pytorch_is_refused_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    # A layer converted wrongly (a kernel not transposed, one flipped) must
    # not become a weights file that only looks right.
    import vaecyclegan.upscaler.esrgan_conversion as conversion
    from vaecyclegan.cli.convert import main

    pth = tmp_path / "m.pth"
    torch.save(_torch_model().state_dict(), pth)
    main(["esrgan", str(pth), str(tmp_path / "good" / "rrdbnet_weights.h5")])
    assert "Checked: on a random 32-px image its output equals" in capsys.readouterr().out
    record = ModelConfig.load(str(tmp_path / "good")).training["upscaler_run"]
    assert 0 <= record["max_difference_from_pytorch"] < 1e-4
    right = conversion.keras_weights

    def one_kernel_flipped(model, state, path):
        values = right(model, state, path)
        values[2] = values[2][::-1].copy()  # a 3x3 kernel upside down
        return values

    monkeypatch.setattr(conversion, "keras_weights", one_kernel_flipped)
    with pytest.raises(InputError, match="differs from the file's PyTorch forward pass"):
        convert_esrgan(str(pth), str(tmp_path / "bad" / "rrdbnet_weights.h5"))
    assert not (tmp_path / "bad").exists()


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


def test_the_record_describes_the_converted_upscaler_not_the_one_it_replaced(tmp_path,
                                                                           tiny_config):
    # sr_steps and the rest stayed, describing an upscaler that was gone, and
    # a new folder's config had no versions.
    tiny_config.training.update({"seed": 3, "sr_steps": 2, "sr_gan_steps": 2,
                                 "sr_degradations": ["bicubic"], "sr_pairs": None})
    tiny_config.save(str(tmp_path))
    pth = tmp_path / "m.pth"
    torch.save(_torch_model().state_dict(), pth)
    convert_esrgan(str(pth), str(tmp_path / "rrdbnet_weights.h5"))
    record = ModelConfig.load(str(tmp_path)).training
    assert record["seed"] == 3  # the translators' run is kept
    assert not {"sr_steps", "sr_gan_steps", "sr_degradations", "sr_pairs"} & set(record)
    run = record["upscaler_run"]
    assert run["converted_from"] == "m.pth" and run["finished"]
    assert run["versions"]["keras"] and run["versions"]["keras_backend"]
    fresh = tmp_path / "fresh"
    convert_esrgan(str(pth), str(fresh / "rrdbnet_weights.h5"))
    assert ModelConfig.load(str(fresh)).training["upscaler_run"]["versions"]["numpy"]


def test_another_name_beside_an_existing_config_is_refused(tmp_path, tiny_config):
    # Its config.json was rewritten for the new file, and the folder's own
    # rrdbnet_weights.h5 no longer loaded: translation there failed.
    tiny_config.save(str(tmp_path))
    before = (tmp_path / "config.json").read_bytes()
    pth = tmp_path / "m.pth"
    torch.save(_torch_model().state_dict(), pth)
    with pytest.raises(InputError, match="describes this folder's rrdbnet_weights.h5"):
        convert_esrgan(str(pth), str(tmp_path / "esrgan_x4.h5"))
    assert (tmp_path / "config.json").read_bytes() == before
    assert not (tmp_path / "esrgan_x4.h5").exists()
    # Into a folder of its own, any name will do.
    convert_esrgan(str(pth), str(tmp_path / "other" / "esrgan_x4.h5"))
    assert (tmp_path / "other" / "config.json").is_file()


def test_a_pickle_with_code_is_refused(tmp_path):
    pth = tmp_path / "evil.pth"
    torch.save({"model": os.system}, pth)  # a global that unpickling would resolve
    with pytest.raises(InputError, match="not a safe PyTorch weights file"):
        convert_esrgan(str(pth), str(tmp_path / "out.h5"))
    assert not (tmp_path / "out.h5").exists()


def test_a_plain_pickle_with_code_is_one_line_without_torchs_warning(tmp_path, capsys):
    # Protocol 4 made torch warn on stderr above the error line, whose text
    # was the first line of torch's (with its terminal colour codes).
    import pickle

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.convert import main

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"params": Evil()}, f, protocol=4)
    torch.save(nn.Conv2d(3, 4, 3), tmp_path / "whole.pth")
    for name in ("evil.pth", "whole.pth"):
        # pytest keeps warnings off stderr: they are recorded here instead.
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            assert run_cli(main, ["esrgan", str(tmp_path / name), str(tmp_path / "o.h5")]) == 2
        assert [str(w.message) for w in warned] == []
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "\x1b" not in err, err
        assert err.startswith(f"error: {tmp_path / name}: not a safe PyTorch weights file (")
    assert "save the network's state_dict() and convert that" in err
    assert not (tmp_path / "o.h5").exists()


def test_entries_that_are_not_tensors_are_named(tmp_path):
    # They were dropped, and the message said the file's keys were "[]".
    torch.save({"epoch": 7, "step": 1000}, tmp_path / "meta.pth")
    with pytest.raises(InputError, match=r"entry 'epoch' is not a tensor \(int\)"):
        convert_esrgan(str(tmp_path / "meta.pth"), str(tmp_path / "out.h5"))


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
    # A folder was "file not found" too.
    assert run_cli(main, ["esrgan", str(tmp_path), str(tmp_path / "o.h5")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path}: is a folder, not a weights file")


# The output never overwrites the input, and an unwritable output is one
# clear line, both checked before the .pth is read.

def _pth(tmp_path):
    pth = tmp_path / "model.pth"
    torch.save(_torch_model().state_dict(), pth)
    return pth, pth.read_bytes()


def test_the_output_may_not_be_the_input_itself(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.convert import main

    pth, original = _pth(tmp_path)
    assert run_cli(main, ["esrgan", str(pth), str(pth)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {pth}: is the input {pth} (or a link to it): converting would "
                   "overwrite it; name another output, e.g. weights/rrdbnet_weights.h5"]
    assert pth.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]  # no config.json either


def test_the_output_may_not_be_the_input_by_another_spelling(tmp_path, monkeypatch):
    pth, original = _pth(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(InputError, match="is the input"):
        convert_esrgan(str(pth), "../sub/../model.pth")
    assert pth.read_bytes() == original


def test_the_output_may_not_be_a_hard_link_of_the_input(tmp_path):
    pth, original = _pth(tmp_path)
    out = tmp_path / "weights" / "rrdbnet_weights.h5"
    out.parent.mkdir()
    os.link(pth, out)
    with pytest.raises(InputError, match="is the input .* \\(or a link to it\\)"):
        convert_esrgan(str(pth), str(out))
    assert pth.read_bytes() == original and out.read_bytes() == original
    assert os.listdir(out.parent) == ["rrdbnet_weights.h5"]


@pytest.mark.parametrize("link", ["file", "folder"])
def test_the_output_may_not_be_a_symbolic_link_to_the_input(tmp_path, link):
    pth, original = _pth(tmp_path)
    if link == "file":  # weights/rrdbnet_weights.h5 -> model.pth
        out = tmp_path / "weights" / "rrdbnet_weights.h5"
        out.parent.mkdir()
        out.symlink_to(pth)
    else:  # alias/ -> the input's folder, so alias/model.pth is the input
        (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
        out = tmp_path / "alias" / "model.pth"
    with pytest.raises(InputError, match="is the input"):
        convert_esrgan(str(pth), str(out))
    assert pth.read_bytes() == original


def test_the_input_may_not_be_the_config_json_written_beside_the_output(tmp_path):
    pth = tmp_path / "config.json"
    torch.save(_torch_model().state_dict(), pth)
    original = pth.read_bytes()
    with pytest.raises(InputError, match="is the config.json that converting writes"):
        convert_esrgan(str(pth), str(tmp_path / "rrdbnet_weights.h5"))
    assert pth.read_bytes() == original
    with pytest.raises(InputError, match="config.json is written beside the weights"):
        convert_esrgan(str(pth), str(tmp_path / "w" / "config.json"))


@pytest.mark.parametrize("output", ["", "new_folder/"])
def test_an_output_that_names_no_file_is_refused_before_reading(tmp_path, monkeypatch, output):
    import vaecyclegan.upscaler.esrgan_conversion as conversion

    monkeypatch.chdir(tmp_path)
    read = []
    monkeypatch.setattr(conversion, "load_state_dict", lambda path: read.append(path))
    with pytest.raises(InputError, match="name the weights file to write"):
        convert_esrgan(str(tmp_path / "m.pth"), output)
    assert read == [] and list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_folder_is_refused(tmp_path):
    pth, _ = _pth(tmp_path)
    (tmp_path / "weights").mkdir()
    with pytest.raises(InputError, match="is a folder; name the weights file to write"):
        convert_esrgan(str(pth), str(tmp_path / "weights"))


@pytest.mark.parametrize("below", ["out.h5", "sub/out.h5"])
def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path, capsys, below):
    # A regular file where a folder should be: refused for root too, where
    # chmod would not stop anything (these tests run as root).
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.convert import main

    pth, original = _pth(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / below
    assert run_cli(main, ["esrgan", str(pth), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out.parent}: cannot be created: {tmp_path / 'afile'} is a file, "
                   "not a folder"]
    assert pth.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["afile", "model.pth"]


def test_an_unwritable_output_folder_is_found_by_the_probe(tmp_path, monkeypatch):
    # Root writes through any permission bits, so the probe's failure is
    # simulated: what the folder refuses is what the user sees, before the
    # .pth is read.
    import tempfile

    import vaecyclegan.upscaler.esrgan_conversion as conversion

    pth, original = _pth(tmp_path)
    (tmp_path / "weights").mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    read = []
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(conversion, "load_state_dict", lambda *a: read.append(a))
    with pytest.raises(InputError) as error:
        convert_esrgan(str(pth), str(tmp_path / "weights" / "rrdbnet_weights.h5"))
    assert str(error.value) == f"{tmp_path / 'weights'}: cannot write here: Permission denied"
    with pytest.raises(InputError) as error:
        convert_esrgan(str(pth), str(tmp_path / "new" / "rrdbnet_weights.h5"))
    assert str(error.value) == (f"{tmp_path / 'new'}: cannot write here (it would be created "
                                f"in {tmp_path}): Permission denied")
    assert read == [] and pth.read_bytes() == original


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_output_folder_is_refused(tmp_path):
    pth, _ = _pth(tmp_path)
    folder = tmp_path / "weights"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write here"):
            convert_esrgan(str(pth), str(folder / "rrdbnet_weights.h5"))
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("failing", ["weights", "config"])
def test_an_os_error_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch,
                                                                  failing):
    import vaecyclegan.io.weight_files as weight_files

    pth, original = _pth(tmp_path)
    out = tmp_path / "weights" / "rrdbnet_weights.h5"

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if failing == "weights":
        monkeypatch.setattr(weight_files, "save_weights_h5", full)
    else:
        monkeypatch.setattr(ModelConfig, "save", full)
    with pytest.raises(InputError) as error:
        convert_esrgan(str(pth), str(out))
    written = out if failing == "weights" else out.parent / "config.json"
    assert str(error.value) == f"{written}: cannot write it: No space left on device"
    assert not out.parent.exists()  # the folder it created is gone again
    assert pth.read_bytes() == original


@pytest.mark.parametrize("change, message", [
    # Each was a traceback (IndexError, a transpose's ValueError, an unpack's
    # ValueError), or NaN weights written without a word.
    (lambda s: s.update({"conv_first.weight": torch.zeros(8)}),
     "conv_first.weight has 1 dimensions; a convolution's weight has 4"),
    (lambda s: s.update({"trunk_conv.weight": torch.zeros(8, 8)}),
     "trunk_conv.weight has 2 dimensions"),
    (lambda s: s.update({"nodot": torch.zeros(1)}), "unexpected key 'nodot'"),
    (lambda s: s.update({"conv_first.weight": torch.full_like(s["conv_first.weight"],
                                                               float("nan"))}),
     "conv_first.weight holds NaN or infinite values"),
    # Tracebacks from numpy() (meta, sparse), a complex tensor converted
    # with its imaginary part dropped and a warning, an int block index,
    # Keras' filters=0, and a 30,000-filter network built (out of memory)
    # before the other tensors' shapes were looked at.
    (lambda s: s.update({"conv_first.bias": torch.empty(8, device="meta")}),
     "entry 'conv_first.bias' is not a dense floating-point tensor (meta)"),
    (lambda s: s.update({"conv_first.bias": s["conv_first.bias"].to_sparse()}),
     "entry 'conv_first.bias' is not a dense floating-point tensor (sparse_coo)"),
    (lambda s: s.update({"conv_first.weight": s["conv_first.weight"].to(torch.complex64)}),
     "entry 'conv_first.weight' is not a dense floating-point tensor (complex64)"),
    (lambda s: s.update({"conv_first.bias": s["conv_first.bias"].to(torch.int64)}),
     "entry 'conv_first.bias' is not a dense floating-point tensor (int64)"),
    (lambda s: s.update({"RRDB_trunk.x.RDB1.conv1.weight": torch.zeros(4, 8, 3, 3)}),
     "unexpected key 'RRDB_trunk.x.RDB1.conv1.weight' for ESRGAN's current naming"),
    (lambda s: s.update({"conv_first.weight": torch.zeros(0, 3, 3, 3)}),
     "conv_first.weight has a dimension of size 0"),
    (lambda s: s.update({"conv_first.weight": torch.zeros(30000, 3, 3, 3)}),
     "conv_first.bias has shape (8,), where an RRDB-Net of 30000 features, growth 4 and 3 "
     "channels has (30000,)"),
    (lambda s: s.update({"conv_first.weight": torch.zeros(1).expand(30000, 3, 3, 3)}),
     "entry 'conv_first.weight' shows more values than it holds"),
    (lambda s: s.pop("HRconv.bias"), "missing HRconv.bias"),
    (lambda s: s.update({"upconv1.weight": torch.zeros(8, 8, 5, 5)}),
     "upconv1.weight has shape (8, 8, 5, 5), where an RRDB-Net of 8 features, growth 4 and 3 "
     "channels has (8, 8, 3, 3)"),
    (lambda s: s.update({"RRDB_trunk.0.RDB3.conv6.weight": torch.zeros(8, 8, 3, 3)}),
     "unexpected key 'RRDB_trunk.0.RDB3.conv6.weight'"),
])
def test_malformed_tensors_are_refused(tmp_path, change, message):
    state = TorchRRDBNet(nf=8, nb=1, gc=4).state_dict()
    change(state)
    pth = tmp_path / "m.pth"
    torch.save(state, pth)
    with pytest.raises(InputError, match=re.escape(message)):
        convert_esrgan(str(pth), str(tmp_path / "out.h5"))
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("scale, channels", [(4, 3), (2, 1)])
def test_the_shapes_expected_from_the_config_are_the_networks(scale, channels):
    # The converter refuses a file whose tensors differ from these before
    # it builds the network, so they must be the built network's.
    from vaecyclegan.config import RRDBNetConfig
    from vaecyclegan.upscaler.esrgan_conversion import rrdbnet_shapes

    config = RRDBNetConfig(scale=scale, num_feat=12, num_block=2, num_grow_ch=6)
    built = {}
    for variable in build_rrdbnet(config, channels).weights:
        layer, weight = variable.path.rsplit("/", 1)
        shape = tuple(variable.shape)  # Keras' (kh, kw, in, out) back to (out, in, kh, kw)
        built[f"{layer}.{'weight' if weight == 'kernel' else 'bias'}"] = (
            (shape[3], shape[2], shape[0], shape[1]) if weight == "kernel" else shape)
    assert rrdbnet_shapes(config, channels) == built


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_convert(tmp_path, dtype):
    # The tensor checks refuse integer and complex tensors, not these.
    network = TorchRRDBNet(nf=8, nb=1, gc=4)
    torch.save({key: value.to(dtype) for key, value in network.state_dict().items()},
               tmp_path / "half.pth")
    model, config = convert_esrgan(str(tmp_path / "half.pth"), str(tmp_path / "out.h5"))
    assert config.rrdbnet.num_feat == 8 and model.count_params() == sum(
        value.numel() for value in network.state_dict().values())
