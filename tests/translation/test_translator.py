"""Large slices are translated in overlapping, blended tiles."""

import keras
import numpy as np
import pytest

from tests.harness import tiny_model_config
from vaecyclegan.networks import build_network
from vaecyclegan.translation.translator import Translator, _ramp, _tile_starts


def _pixelwise_generator():
    """A stand-in generator whose output at a pixel depends on that pixel
    only: tiling must then give exactly the whole-slice result."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="tanh", name="mix")(inputs)
    return keras.Model(inputs, outputs)


def test_tiles_cover_the_slice_with_the_overlap():
    assert _tile_starts(100, 100, 16) == [0]
    starts = _tile_starts(250, 100, 20)
    assert starts[0] == 0 and starts[-1] == 150
    assert all(b - a <= 80 for a, b in zip(starts, starts[1:]))
    ramp = _ramp(100, 20)
    assert ramp.min() > 0 and ramp[50] == 1.0 and ramp[0] < ramp[10] < ramp[20]


def test_tiled_translation_equals_whole_for_a_pixelwise_generator():
    generator = _pixelwise_generator()
    images = np.random.default_rng(0).uniform(-1, 1, (2, 90, 70)).astype(np.float32)
    whole = Translator(generator, stride=1, channels=3, tile=0).translate_unit(images)
    tiled = Translator(generator, stride=1, channels=3, tile=32, overlap=8).translate_unit(images)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_blended_tiles_leave_no_step_where_pasted_tiles_would():
    keras.utils.set_random_seed(0)
    config = tiny_model_config()
    generator = build_network(config, "g_target")
    y, x = np.mgrid[0:96, 0:96] / 96.0
    images = (np.sin(6 * x) * np.cos(4 * y))[None].astype(np.float32)
    plain = Translator(generator, config.generator.stride, 3, tile=0)
    whole = plain.translate_unit(images)
    tiled = Translator(generator, config.generator.stride, 3, tile=64,
                       overlap=16).translate_unit(images)
    # Tiles at columns 0..64 and 32..96; pasted side by side at column 48.
    pasted = np.concatenate([plain.translate_unit(images[:, :, :64])[:, :, :48],
                             plain.translate_unit(images[:, :, 32:])[:, :, 16:]], axis=2)

    def step_at_the_seam(result):
        # Change of the difference from the whole-slice result between
        # columns 47 and 48: pasting puts a step there.
        return np.abs(np.diff(result - whole, axis=2)).mean(axis=(0, 1))[47]

    # GroupNorm sees each tile's statistics: close to the whole, not equal.
    assert np.abs(tiled - whole).mean() < 0.15
    assert step_at_the_seam(tiled) < 0.6 * step_at_the_seam(pasted)


@pytest.mark.parametrize("tile", [0, 40])
def test_sampling_still_works_in_tiles(tile):
    generator = build_network(tiny_model_config(), "g_target")
    translator = Translator(generator, 8, 3, tile=tile, overlap=8)
    images = np.zeros((1, 64, 64), np.float32)
    means, stds = translator.translate_stacks([images], samples=3)
    assert means[0].shape == (1, 64, 64) and stds[0].shape == (1, 64, 64)
