"""Weight files that version 0.1.0 wrote (before the package was reorganised
into sub-packages) still load, and the networks still compute what they
computed then (`tests/fixtures/weights_v0_1_0/outputs.npz`)."""

import json
import os

import keras
import numpy as np
import pytest

from vaecyclegan.config import ModelConfig
from vaecyclegan.networks import WEIGHT_FILES, build_network, load_network

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                      "weights_v0_1_0")
ATOL = 1e-5


@pytest.fixture(scope="module")
def stored():
    with np.load(os.path.join(FOLDER, "outputs.npz")) as data:
        return dict(data)


def _outputs(model, name, stored):
    """`{key: array}` of `model` on the stored input, keyed as in outputs.npz."""
    x = stored["input"]
    if name in ("g_target", "g_source"):
        return {name: keras.ops.convert_to_numpy(model(x, training=False))}
    if name in ("d_source", "d_target"):
        scales = model(x, training=False)
        return {f"{name}_{s}": keras.ops.convert_to_numpy(o) for s, o in enumerate(scales)}
    return {name: keras.ops.convert_to_numpy(model((x[:, :16, :16] + 1.0) / 2.0,
                                                   training=False))}


def _matches(outputs, stored):
    return all(
        outputs[key].shape == stored[key].shape and np.allclose(outputs[key], stored[key],
                                                                rtol=0, atol=ATOL)
        for key in outputs)


def test_the_fixture_holds_what_version_0_1_0_wrote(stored):
    assert sorted(os.listdir(FOLDER)) == sorted([*WEIGHT_FILES.values(), "config.json",
                                                 "outputs.npz"])
    assert stored["input"].shape == (1, 32, 32, 3)
    assert -1.0 <= stored["input"].min() and stored["input"].max() <= 1.0
    with open(os.path.join(FOLDER, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["training"]["versions"]["vaecyclegan"] == "0.1.0"


def test_the_config_round_trips():
    with open(os.path.join(FOLDER, "config.json"), encoding="utf-8") as f:
        written = json.load(f)
    config = ModelConfig.load(FOLDER)
    # 0.1.0 knew no pixel scale and translated every slice at its own, and
    # gave every decoder level its skip: the defaults say exactly that, and
    # nothing else changes.
    assert "pixel_scale" not in written and "levels_without_skip" not in written["generator"]
    assert config.to_dict() == {
        **written, "generator": {**written["generator"], "levels_without_skip": 0},
        "pixel_scale": {"resize_factor": 1.0, "mm_per_pixel": None}}
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_each_network_loads_and_reproduces_its_outputs(stored, name):
    model = load_network(FOLDER, name)
    outputs = _outputs(model, name, stored)
    expected = sorted(k for k in stored if k == name or k.startswith(f"{name}_"))
    assert sorted(outputs) == expected
    for key, value in outputs.items():
        assert value.shape == stored[key].shape, key
        np.testing.assert_allclose(value, stored[key], rtol=0, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_the_comparison_fails_for_other_weights(stored, name):
    """Controls: the check above can fail. Freshly initialised weights, and the
    stored weights slightly perturbed, do not reproduce the stored outputs."""
    config = ModelConfig.load(FOLDER)
    keras.utils.set_random_seed(123)
    assert not _matches(_outputs(build_network(config, name), name, stored), stored)

    model = load_network(FOLDER, name, config)
    assert _matches(_outputs(model, name, stored), stored)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0.0, 0.01, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    assert not _matches(_outputs(model, name, stored), stored)
