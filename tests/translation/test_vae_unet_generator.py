import dataclasses
import re

import keras
import numpy as np
import pytest

from vaecyclegan.config import GeneratorConfig
from vaecyclegan.translation.group_normalization import FusedGroupNormalization
from vaecyclegan.translation.vae_sampling import VAESampling
from vaecyclegan.translation.vae_unet_generator import build_vae_unet_generator

SMALL = GeneratorConfig(filters=8, max_filters=32, num_downsamples=2, num_res_blocks=2,
                        latent_channels=8, norm_groups=4, seed=5)


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.mark.parametrize("height,width", [(32, 32), (32, 48), (64, 20)])
def test_output_has_input_shape_and_range(height, width):
    g = build_vae_unet_generator(SMALL, channels=3, name="g_target")
    y = keras.ops.convert_to_numpy(g(_images((2, height, width, 3))))
    assert y.shape == (2, height, width, 3)
    assert y.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)


def test_single_channel_generator():
    g = build_vae_unet_generator(SMALL, channels=1, name="g_source")
    assert g(_images((1, 32, 32, 1))).shape == (1, 32, 32, 1)


def test_stride_is_two_to_the_downsamples():
    assert SMALL.stride == 4
    assert GeneratorConfig().stride == 16


@pytest.mark.parametrize("levels_without_skip", [0, 1, 2])
def test_levels_without_skip_drop_the_finest_skips(levels_without_skip):
    config = dataclasses.replace(SMALL, levels_without_skip=levels_without_skip)
    g = build_vae_unet_generator(config, name="g_target")
    skips = sorted(layer.name for layer in g.layers if isinstance(layer, keras.layers.Concatenate))
    assert skips == [f"up{level}_skip" for level in range(levels_without_skip + 1, 3)]
    # Level 1 fuses 8 upsampled channels, plus the stem's 8 where it has its skip.
    fused = g.get_layer("up1_fuse_conv").input.shape[-1]
    assert fused == (8 if levels_without_skip >= 1 else 16)
    assert g(_images((1, 32, 32, 3))).shape == (1, 32, 32, 3)


def _automatic_name(layer):
    """Whether `layer.name` is one Keras made up: its class name in snake
    case, maybe with `_N` after it."""
    snake = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", snake).lower()
    return re.fullmatch(rf"{re.escape(snake)}(_\d+)?", layer.name) is not None


def test_the_automatic_name_check_recognises_keras_names():
    unnamed = [keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3), keras.layers.Add(),
               keras.layers.GroupNormalization(groups=2), FusedGroupNormalization(groups=2),
               keras.layers.UpSampling2D(2), keras.layers.Concatenate()]
    assert all(_automatic_name(layer) for layer in unnamed), [layer.name for layer in unnamed]
    assert not _automatic_name(keras.layers.Conv2D(4, 3, name="stem_conv"))


def test_every_layer_has_an_explicit_name():
    g = build_vae_unet_generator(SMALL, name="g_target")
    auto = [layer.name for layer in g.layers if _automatic_name(layer)]
    assert auto == []
    assert len({layer.name for layer in g.layers}) == len(g.layers)


def _is_normalisation(layer):
    return any("Normalization" in cls.__name__ for cls in type(layer).__mro__)


def test_every_normalisation_is_group_normalization():
    g = build_vae_unet_generator(SMALL, name="g_target")
    norms = [layer for layer in g.layers
             if _is_normalisation(layer) or layer.name.endswith("_norm")]
    assert norms, "the generator has no normalisation layer"
    wrong = [(layer.name, type(layer).__name__) for layer in norms
             if not isinstance(layer, (FusedGroupNormalization, keras.layers.GroupNormalization))]
    assert wrong == []
    # Each one normalises over channel groups of its input, never over the batch.
    for layer in norms:
        channels = layer.input.shape[-1]
        assert 1 <= layer.groups <= channels and channels % layer.groups == 0, layer.name


def test_inference_is_deterministic():
    g = build_vae_unet_generator(SMALL, name="g_target")
    x = _images((2, 32, 32, 3))
    first = keras.ops.convert_to_numpy(g(x, training=False))
    second = keras.ops.convert_to_numpy(g(x, training=False))
    np.testing.assert_array_equal(first, second)


def test_training_samples_the_latent():
    g = build_vae_unet_generator(SMALL, name="g_target")
    x = _images((1, 32, 32, 3))
    mean = keras.ops.convert_to_numpy(g(x))
    a = keras.ops.convert_to_numpy(g(x, training=True))
    b = keras.ops.convert_to_numpy(g(x, training=True))
    assert np.abs(a - mean).max() > 1e-4
    assert np.abs(a - b).max() > 1e-4


def test_sampling_is_reproducible_for_a_seed():
    x = _images((1, 32, 32, 3))
    g1 = build_vae_unet_generator(SMALL, name="g_target")
    g2 = build_vae_unet_generator(SMALL, name="g_target")
    g2.set_weights(g1.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(g1(x, training=True)),
        keras.ops.convert_to_numpy(g2(x, training=True)), atol=1e-6)


def test_kl_term_is_in_model_losses():
    g = build_vae_unet_generator(SMALL, name="g_target")
    g(_images((1, 32, 32, 3)))
    assert len(g.losses) == 1
    kl = float(keras.ops.convert_to_numpy(g.losses[0]))
    assert np.isfinite(kl) and kl >= 0.0


@pytest.mark.parametrize("mu,logvar,expected", [
    (0.0, 0.0, 0.0),  # the prior itself
    (1.0, 0.0, 0.5),  # 0.5 * mu^2
    (0.0, 1.0, 0.5 * (np.e - 2.0)),  # 0.5 * (exp(lv) - 1 - lv)
])
def test_kl_matches_the_closed_form(mu, logvar, expected):
    layer = VAESampling(seed=0, name="latent_sample")
    shape = (2, 3, 3, 4)
    layer([np.full(shape, mu, "float32"), np.full(shape, logvar, "float32")])
    assert float(keras.ops.convert_to_numpy(layer.losses[0])) == pytest.approx(expected, rel=1e-5)


def test_sampling_uses_the_variance():
    layer = VAESampling(seed=0, name="latent_sample")
    mu = np.zeros((1, 64, 64, 8), "float32")
    z = keras.ops.convert_to_numpy(layer([mu, np.full_like(mu, np.log(4.0))], training=True))
    assert np.std(z) == pytest.approx(2.0, rel=0.05)


def test_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        g = build_vae_unet_generator(SMALL, name="g_target")
        y = g(_images((1, 32, 32, 3)), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert keras.backend.standardize_dtype(g.losses[0].dtype) == "float32"
