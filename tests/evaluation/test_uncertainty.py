import math

import numpy as np
import pytest

from vaecyclegan.evaluation.uncertainty import std_error_correlation, std_heat_map, std_map_scale
from vaecyclegan.networks import build_network
from vaecyclegan.translation.translator import Translator


def test_heat_map_is_rgb_black_at_zero_and_saturates():
    std = np.array([[0.0, 0.5, 1.0, 10.0]])
    heat = std_heat_map(std, vmax=1.0)
    assert heat.shape == (1, 4, 3) and heat.dtype == np.uint8
    assert heat[0, 0].sum() < 10  # magma starts black
    np.testing.assert_array_equal(heat[0, 2], heat[0, 3])
    assert heat[0, 1].sum() < heat[0, 2].sum()


def test_correlation_of_a_std_that_tracks_the_error():
    rng = np.random.default_rng(0)
    error = rng.uniform(0, 50, (2, 16, 16))
    result = std_error_correlation(list(error * 0.3), list(error))
    assert result["pearson"] == pytest.approx(1.0)
    assert result["spearman"] == pytest.approx(1.0)
    assert result["mean_std"] == pytest.approx(0.3 * error.mean())
    unrelated = std_error_correlation([rng.uniform(0, 1, (64, 64))], [rng.uniform(0, 1, (64, 64))])
    assert abs(unrelated["pearson"]) < 0.1


def test_heat_map_scale_ignores_a_few_outliers():
    stds = [np.full((100, 100), 0.2), np.full((100, 100), 0.2)]
    stds[0][0, 0] = 50.0
    assert std_map_scale(stds) == pytest.approx(0.2)
    assert std_map_scale([np.zeros((4, 4))]) > 0


def test_correlation_is_nan_for_a_constant_map():
    result = std_error_correlation([np.zeros((8, 8))], [np.arange(64.0).reshape(8, 8)])
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])


def _translator(tiny_config):
    g = build_network(tiny_config, "g_target")
    return Translator(g, tiny_config.generator.stride, tiny_config.channels), g


def test_one_sample_is_the_deterministic_translation(tiny_config):
    translator, _ = _translator(tiny_config)
    images = [np.random.default_rng(1).integers(0, 256, (32, 24), dtype=np.uint8)]
    means, stds = translator.sample_stored(images, samples=1)
    np.testing.assert_array_equal(means[0], translator.translate_stored(images)[0])
    assert np.all(stds[0] == 0)


def test_several_samples_spread_and_are_reproducible(tiny_config):
    translator, g = _translator(tiny_config)
    images = [np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)]
    means, stds = translator.sample_stored(images, samples=4)
    assert stds[0].shape == (32, 32) and stds[0].max() > 0
    again_g = build_network(tiny_config, "g_target")
    again_g.set_weights(g.get_weights())
    again = Translator(again_g, tiny_config.generator.stride, tiny_config.channels)
    np.testing.assert_allclose(again.sample_stored(images, samples=4)[1][0], stds[0], atol=1e-3)


def test_an_error_constant_up_to_float_noise_counts_as_constant():
    # Means of draws against the written image: |error| 10 +- 1e-5 gave
    # a Pearson of 0.06 for an error that does not vary.
    rng = np.random.default_rng(0)
    std = rng.uniform(0, 3, (16, 16))
    noisy = 10.0 + rng.uniform(-1e-5, 1e-5, (16, 16))
    assert math.isnan(std_error_correlation([std], [noisy])["pearson"])
    # Control: an error that varies is correlated.
    assert std_error_correlation([std], [std * 2 + noisy])["pearson"] > 0.99


@pytest.mark.parametrize("limit", [10_000, 1_000, 100, 7, 1])
def test_the_pixel_sample_is_every_pixel_that_fits_then_every_kth_of_all(limit):
    # A quota per image cut a large image short beside small ones even
    # where the whole set fitted.
    from vaecyclegan.evaluation.uncertainty import EvenPixelSample

    rng = np.random.default_rng(1)
    images = [rng.uniform(0, 1, shape).astype(np.float32)
              for shape in ((40, 40), (3, 5), (1, 1), (30, 20), (8, 8))]
    every = np.concatenate([i.ravel() for i in images])
    stride = 1
    while -(-every.size // stride) > limit:
        stride *= 2
    sample = EvenPixelSample(limit)
    for image in images:
        sample.add(image, image * 2)
    kept, doubled = sample.maps()
    np.testing.assert_array_equal(kept, every[::stride])
    np.testing.assert_array_equal(doubled, every[::stride] * 2)
    assert kept.dtype == np.float32 and kept.size <= limit
