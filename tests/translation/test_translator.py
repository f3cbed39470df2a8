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


class _ShapeRecorder:
    """Stands in for `run_network`: records the batch shapes the generator
    gets and returns them unchanged (an identity generator)."""

    def __init__(self):
        self.shapes = []

    def __call__(self, model, batch, training=False):
        self.shapes.append(batch.shape)
        return batch


class _NearestUpscaler:
    scale = 4

    def __init__(self):
        self.calls = 0

    def upscale(self, image):
        self.calls += 1
        return np.kron(image, np.ones((4, 4), np.float32))


def _smooth_slice(side):
    rows, columns = np.mgrid[0:side, 0:side] / side
    return (np.sin(3 * rows) * np.cos(2 * columns)).astype(np.float32)[None]


def test_a_slice_is_translated_at_the_training_scale_and_returned_on_its_grid(monkeypatch):
    from vaecyclegan.config import PixelScaleConfig

    recorder = _ShapeRecorder()
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", recorder)
    # Trained on 256-px images shrunk to 64 px: a 256-px slice is translated at 64 px.
    translator = Translator(None, stride=8, channels=3,
                            pixel_scale=PixelScaleConfig(resize_factor=4.0))
    stack = _smooth_slice(256)
    [mean], [std] = translator.translate_stacks([stack])
    assert recorder.shapes == [(1, 64, 64, 3)]
    assert mean.shape == (1, 256, 256) and std is None
    # An identity generator at a quarter of the resolution, returned bicubically:
    # close to the smooth input, not equal (the round trip loses detail).
    assert 0 < np.abs(mean - stack).max() < 0.05
    assert "64x64" in translator.describe((256, 256)) and "bicubic" in translator.describe(
        (256, 256))
    # Control: without a pixel scale the generator sees the slice as it is.
    recorder.shapes.clear()
    [same], _ = Translator(None, 8, 3).translate_stacks([stack])
    assert recorder.shapes == [(1, 256, 256, 3)]
    np.testing.assert_allclose(same, stack, atol=1e-6)


def test_the_upscaler_brings_a_translation_back_where_its_factor_fits(monkeypatch):
    from vaecyclegan.config import PixelScaleConfig

    recorder = _ShapeRecorder()
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", recorder)
    upscaler = _NearestUpscaler()
    translator = Translator(None, 8, 3, pixel_scale=PixelScaleConfig(resize_factor=4.0),
                            upscaler=upscaler)
    [mean], _ = translator.translate_stacks([_smooth_slice(128)])
    assert upscaler.calls == 1 and mean.shape == (1, 128, 128)
    assert translator.return_path(4.0) == "upscaler" and "RRDB" in translator.describe((128, 128))
    # A factor the upscaler does not undo (x2 here) goes back bicubically.
    assert translator.return_path(2.0) == "bicubic" and translator.return_path(1.0) == "none"


def test_a_spacing_sets_the_factor_where_training_knew_millimetres(monkeypatch):
    from vaecyclegan.config import PixelScaleConfig

    recorder = _ShapeRecorder()
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", recorder)
    translator = Translator(None, 8, 3,
                            pixel_scale=PixelScaleConfig(resize_factor=4.0, mm_per_pixel=2.0))
    stack = _smooth_slice(96)
    translator.translate_stacks([stack, stack], pixel_mm=[0.5, None])
    # 0.5 mm pixels to 2 mm: x4 smaller; no spacing: the resize factor, also x4 here.
    assert recorder.shapes == [(2, 24, 24, 3)]
    recorder.shapes.clear()
    translator.translate_stacks([stack], pixel_mm=[1.0])
    assert recorder.shapes == [(1, 48, 48, 3)]


def test_pixels_that_are_not_square_are_scaled_axis_by_axis(monkeypatch):
    # The mean of 1 and 2 mm sent a 256 x 128 mm field in at 48x24 (squashed 2:1).
    from vaecyclegan.config import PixelScaleConfig

    recorder = _ShapeRecorder()
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", recorder)
    translator = Translator(None, 8, 3, pixel_scale=PixelScaleConfig(mm_per_pixel=8.0))
    stack = np.zeros((1, 256, 128), np.float32)  # 256 rows of 1 mm, 128 columns of 2 mm
    [mean], _ = translator.translate_stacks([stack], pixel_mm=[(1.0, 2.0)])
    assert recorder.shapes == [(1, 32, 32, 3)] and mean.shape == (1, 256, 128)
    assert translator.describe((256, 128), (1.0, 2.0)) == (
        "128x256 slices translated at the training pixel scale (32x32, 4 across by 8 down "
        "input pixels a network pixel), returned to their grid by bicubic")


def test_large_slices_take_fewer_at_once_as_tiles_bound_memory(monkeypatch):
    # Eight 512-px slices in one pass held 7.6 GB (one at a time 2.3 GB),
    # below --translate-tile, which only looks at a slice's side.
    import vaecyclegan.translation.translator as translator_module

    recorder = _ShapeRecorder()
    monkeypatch.setattr(translator_module, "run_network", recorder)
    Translator(None, stride=1, channels=1, tile=0).translate_unit(
        np.zeros((3, 600, 600), np.float32), batch_size=8)
    assert [shape[0] for shape in recorder.shapes] == [2, 1]  # 1024x1024 pixels a pass
    recorder.shapes.clear()
    Translator(None, stride=1, channels=1, tile=2048).translate_unit(
        np.zeros((4, 1100, 1100), np.float32), batch_size=8)
    assert [shape[0] for shape in recorder.shapes] == [3, 1]  # a larger tile's pixels
    recorder.shapes.clear()
    # Control: small slices go together, whatever the tile (a small tile
    # asked for memory's sake keeps the batch of slices under it).
    Translator(None, stride=1, channels=1, tile=64).translate_unit(
        np.zeros((8, 48, 48), np.float32), batch_size=8)
    assert [shape[0] for shape in recorder.shapes] == [8]


def test_long_translations_show_their_progress(monkeypatch, caplog):
    # A 300-slice volume was translated in silence, minutes long.
    import vaecyclegan.translation.translator as translator_module
    from vaecyclegan.training.progress import WorkProgress

    monkeypatch.setattr(translator_module, "run_network", _ShapeRecorder())
    translator = Translator(None, stride=1, channels=1, tile=0)
    stacks = [np.zeros((5, 16, 16), np.float32), np.zeros((3, 16, 16), np.float32)]
    with caplog.at_level("INFO", logger="vaecyclegan"):
        translator.translate_stacks(stacks, batch_size=2, samples=2, progress=True)
    assert "translating" not in caplog.text  # short work: nothing shown
    monkeypatch.setattr(WorkProgress, "QUIET_SECONDS", 0.0)
    monkeypatch.setattr(WorkProgress, "SECONDS_BETWEEN_LINES", 0.0)
    with caplog.at_level("INFO", logger="vaecyclegan"):
        translator.translate_stacks(stacks, batch_size=2, samples=2, progress=True)
    lines = [r.getMessage() for r in caplog.records if "translating" in r.getMessage()]
    # Each stack fills passes of its own: 2, 2, 1 and 2, 1 slices, per draw.
    assert lines[0].startswith("translating: 2/16 slices") and len(lines) == 9
    caplog.clear()
    with caplog.at_level("INFO", logger="vaecyclegan"):
        translator.translate_stacks(stacks, batch_size=2, samples=2)  # not asked for
    assert "translating" not in caplog.text


# Values, not only shapes: each test below failed under a one-line change
# of the translator that every earlier test let through.

def test_each_stack_gets_its_own_translation_back(monkeypatch):
    # Two stacks of one size are translated in one batch and split again;
    # a swap gave each file the other's result.
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _ShapeRecorder())
    rng = np.random.default_rng(0)
    stacks = [rng.uniform(-1, 1, (count, 24, 16)).astype(np.float32) for count in (2, 1, 3)]
    means, _ = Translator(None, 8, 3).translate_stacks(stacks)
    for mean, stack in zip(means, stacks):
        np.testing.assert_allclose(mean, stack, atol=1e-6)


def test_padding_to_the_stride_leaves_every_pixel_in_place(monkeypatch):
    # Padded at the top left instead, a 37x53 slice came back shifted.
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _ShapeRecorder())
    image = np.random.default_rng(1).uniform(-1, 1, (1, 37, 53)).astype(np.float32)
    np.testing.assert_allclose(Translator(None, 8, 3).translate_unit(image), image, atol=1e-6)


class _Draws:
    """Stands in for `run_network`: the k-th sampled call returns the input
    plus k/10 (the mean, training=False, returns the input)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, model, batch, training=False):
        if not training:
            return batch
        self.calls += 1
        return batch + self.calls / 10.0


def test_samples_give_the_mean_and_deviation_of_the_draws(monkeypatch):
    # The first draw alone, or a deviation on another scale, passed.
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _Draws())
    images = np.zeros((1, 32, 32), np.float32)
    [mean], [std] = Translator(None, 8, 3).translate_stacks([images], samples=3)
    np.testing.assert_allclose(mean, 0.2, atol=1e-6)  # draws 0.1, 0.2, 0.3
    np.testing.assert_allclose(std, np.std([0.1, 0.2, 0.3]), atol=1e-6)
    # In grey levels, as `sample_stored` reports it (127.5 per unit).
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _Draws())
    _, [std_grey] = Translator(None, 8, 3).sample_stored([np.full((16, 16), 128, np.uint8)], 3)
    np.testing.assert_allclose(std_grey, np.std([0.1, 0.2, 0.3]) * 127.5, rtol=1e-5)


def test_tiles_sample_too(monkeypatch):
    # Tiles translated with the latent's mean gave a deviation of 0.
    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _Draws())
    translator = Translator(None, 8, 3, tile=40, overlap=8)
    [_], [std] = translator.translate_stacks([np.zeros((1, 64, 64), np.float32)], samples=3)
    assert std.min() > 0.05


def test_the_upscaler_returns_values_in_the_translations_range(monkeypatch):
    # Left in the upscaler's [0, 1], the result was half as bright.
    from vaecyclegan.config import PixelScaleConfig

    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _ShapeRecorder())
    translator = Translator(None, 8, 3, pixel_scale=PixelScaleConfig(resize_factor=4.0),
                            upscaler=_NearestUpscaler())
    stack = _smooth_slice(128)
    [mean], _ = translator.translate_stacks([stack])
    assert np.abs(mean - stack).mean() < 0.05


def test_overlapping_tiles_blend_linearly_across_the_overlap(monkeypatch):
    # Plain averaging of the overlap passed the seam test above. Each tile
    # comes back as its own mean, so the two tiles differ and the blend of
    # their overlap shows.
    def tile_mean(model, batch, training=False):
        return np.broadcast_to(batch.mean(axis=(1, 2, 3), keepdims=True), batch.shape)

    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", tile_mean)
    columns = np.linspace(-1, 1, 64, dtype=np.float32)
    image = np.broadcast_to(columns, (8, 64))[None].copy()
    result = Translator(None, 8, 3, tile=40, overlap=16).translate_unit(image)
    starts = _tile_starts(64, 40, 16)
    expected, total = np.zeros(64), np.zeros(64)
    for start in starts:
        weight = _ramp(40, 16)
        expected[start:start + 40] += columns[start:start + 40].mean() * weight
        total[start:start + 40] += weight
    assert len(starts) == 2
    np.testing.assert_allclose(result[0, 0], expected / total, atol=1e-5)


@pytest.mark.parametrize("samples, most", [(1, 1.5), (4, 4.5)])
@pytest.mark.parametrize("volumes", [1, 3])
def test_a_volume_is_translated_in_a_few_copies_of_its_memory(monkeypatch, samples, most,
                                                             volumes):
    # Padded, repeated to three channels and translated as a whole stack,
    # a 200-slice volume had held twelve copies of itself (fifteen with
    # samples, every draw kept): 2.5 GB a 512x512x200 head.
    import tracemalloc

    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _Draws())
    # Three volumes of one size had also been concatenated into one copy.
    stacks = [np.random.default_rng(i).uniform(-1, 1, (200, 64, 64)).astype(np.float32)
              for i in range(volumes)]
    translator = Translator(None, 8, 3, tile=0)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        means, _ = translator.translate_stacks(stacks, batch_size=8, samples=samples)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert [mean.shape for mean in means] == [stack.shape for stack in stacks]
    # The results themselves, one volume's worth each, plus the working copies.
    results = (volumes - 1) * stacks[0].nbytes * (1 if samples == 1 else 2)
    assert peak <= results + most * stacks[0].nbytes, (peak - results) / stacks[0].nbytes


def test_a_generator_of_stacks_is_translated_as_a_list_is(monkeypatch):
    # infer.py passes one: each scan's [-1, 1] copy lives only until it is
    # resampled to the training scale (a list held all of them at once).
    from vaecyclegan.config import PixelScaleConfig

    monkeypatch.setattr("vaecyclegan.translation.translator.run_network", _ShapeRecorder())
    rng = np.random.default_rng(2)
    stacks = [rng.uniform(-1, 1, (2, 64, 48)).astype(np.float32) for _ in range(3)]
    translator = Translator(None, 8, 3, pixel_scale=PixelScaleConfig(resize_factor=2.0))
    listed, _ = translator.translate_stacks(stacks, pixel_mm=[None, (1.0, 1.0), None])
    made, _ = translator.translate_stacks((s for s in stacks), pixel_mm=[None, (1.0, 1.0), None])
    for a, b in zip(listed, made):
        np.testing.assert_array_equal(a, b)
        assert a.shape == (2, 64, 48)
