"""The numpy/OpenCV input of training on JAX: doubled batches, and
augmented views with the Keras augmenter's geometry."""

import numpy as np
import pytest

from tests.harness import kinds_of_view
from vaecyclegan.translation import array_batches
from vaecyclegan.translation.array_batches import augmented_views, unpaired_batches
from vaecyclegan.translation.dataset import ROTATION, SHIFT, ZOOM


def _dot(size=64, row=24, col=22):
    image = np.full((1, size, size, 1), -1.0, np.float32)
    image[0, row - 1:row + 2, col - 1:col + 2, 0] = 1.0
    return image


def _centroid(image):
    weights = np.clip(image[..., 0] + 1.0, 0, None)
    rows, cols = np.indices(weights.shape)
    return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()


def _largest_move(image, draws, seed=0):
    """The dot's largest displacement, in pixels, over `draws` views."""
    rng = np.random.default_rng(seed)
    start = _centroid(image[0])
    size = image.shape[1]
    moves = []
    for _ in range(draws):
        end = _centroid(augmented_views(image, rng)[0])
        mirrored = np.array([start[0], size - 1 - start[1]])
        moves.append(min(np.linalg.norm(end - start), np.linalg.norm(end - mirrored)))
    return max(moves)


def _bound(size=64, row=24, col=22):
    """How far the augmenter's ranges can move a point: rotation and zoom
    about the centre, then the shift."""
    centre = (size - 1) / 2
    radius = np.hypot(row - centre, col - centre)
    angle = ROTATION * 2 * np.pi
    zoom = 1 / (1 - ZOOM)
    return radius * (abs(zoom - 1) + zoom * angle) + np.hypot(SHIFT * size, SHIFT * size) + 1


@pytest.mark.parametrize("augmentation,expected", [
    ("flips", {"same", "mirrored"}), ("affine", {"moved"})])
def test_flips_alone_views_are_the_image_or_its_mirror(augmentation, expected):
    images = np.random.default_rng(1).uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
    batches = unpaired_batches(images, images, 3, channels=1, seed=2, augmentation=augmentation)
    kinds = set()
    for _ in range(4):
        mri, ct = next(batches)
        kinds |= set(kinds_of_view(mri)) | set(kinds_of_view(ct))
    assert kinds == expected


def test_an_unknown_augmentation_is_refused():
    with pytest.raises(ValueError, match="must be one of affine, flips, not 'elastic'"):
        augmented_views(_dot(), np.random.default_rng(0), "elastic")


def test_views_keep_shape_dtype_and_constant_images():
    # Reflected edges bring no new value in: a constant image stays constant.
    batch = np.full((3, 32, 32, 1), 0.25, np.float32)
    views = augmented_views(batch, np.random.default_rng(0))
    assert views.shape == batch.shape and views.dtype == np.float32
    np.testing.assert_allclose(views, 0.25, atol=1e-6)


def test_views_with_no_range_are_the_image_or_its_mirror(monkeypatch):
    for name in ("ROTATION", "SHIFT", "ZOOM"):
        monkeypatch.setattr(array_batches, name, 0.0)
    image = _dot()
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(12):
        view = augmented_views(image, rng)
        if np.allclose(view, image, atol=1e-5):
            seen.add("same")
        else:
            np.testing.assert_allclose(view, image[:, :, ::-1], atol=1e-5)
            seen.add("mirrored")
    assert seen == {"same", "mirrored"}


def test_views_move_a_point_within_the_ranges_and_do_move_it():
    image = _dot()
    moved = _largest_move(image, draws=40)
    assert 1.0 < moved <= _bound()


def test_the_range_check_fails_for_a_wider_shift(monkeypatch):
    # Control: the bound of the test above does catch a geometry wider
    # than the augmenter's ranges.
    monkeypatch.setattr(array_batches, "SHIFT", 0.3)
    assert _largest_move(_dot(), draws=40) > _bound()


def test_batches_are_doubled_repeated_to_channels_and_seeded():
    rng = np.random.default_rng(0)
    mri = rng.uniform(-1, 1, (5, 16, 16, 1)).astype(np.float32)
    ct = rng.uniform(-1, 1, (7, 16, 16, 1)).astype(np.float32)
    first = next(unpaired_batches(mri, ct, 2, channels=3, seed=4))
    again = next(unpaired_batches(mri, ct, 2, channels=3, seed=4))
    other = next(unpaired_batches(mri, ct, 2, channels=3, seed=5))
    for batch, images in zip(first, (mri, ct)):
        assert batch.shape == (4, 16, 16, 3)
        np.testing.assert_array_equal(batch[..., 0], batch[..., 2])
        # The first half is loaded images as they are, the second their views.
        for loaded in batch[:2, ..., :1]:
            assert any(np.array_equal(loaded, image) for image in images)
        assert np.abs(batch[2:] - batch[:2]).max() > 0
        assert batch.min() >= -1.0 and batch.max() <= 1.0
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("crop", [8, None])
def test_crops_come_from_the_images(crop):
    images = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16, 1) / 256
    batch, _ = next(unpaired_batches(images, images, 1, channels=1, seed=0, crop=crop))
    side = crop or 16
    assert batch.shape == (2, side, side, 1)
    top, left = divmod(int(round(batch[0, 0, 0, 0] * 256)), 16)
    np.testing.assert_array_equal(batch[0], images[0, top:top + side, left:left + side])


class _Draws:
    """A stand-in for numpy's generator that returns fixed draws, in the
    order `augmented_views` takes them: flip, rotation, zoom, shift."""

    def __init__(self, flip, rotation, zoom, shift):
        self.flip, self.scalars, self.shift = flip, [rotation, zoom], shift

    def random(self):
        return 0.0 if self.flip else 1.0

    def uniform(self, low, high, size=None):
        return np.array(self.shift) if size else self.scalars.pop(0)


def _keras_views(image, rotation, zoom, shift):
    import keras

    layers = keras.Sequential([
        keras.layers.RandomRotation((rotation, rotation), fill_mode="reflect"),
        keras.layers.RandomTranslation((shift[1], shift[1]), (shift[0], shift[0]),
                                       fill_mode="reflect"),
        keras.layers.RandomZoom((zoom, zoom), fill_mode="reflect"),
    ])
    return np.asarray(layers(image, training=True))


@pytest.mark.parametrize("keras_zoom_sign,matches", [(1, True), (-1, False)])
def test_a_view_is_the_keras_layers_geometry(keras_zoom_sign, matches):
    # The same draws through OpenCV and through the Keras layers agree inside
    # the image (at the edges Keras reflects three times, OpenCV once).
    # Control: the zoom the other way round does not agree.
    size = 64
    ramp = np.add.outer(0.7 * np.arange(size), 1.3 * np.arange(size)) / (2 * size)
    ramp = ramp.astype(np.float32)[None, :, :, None]
    rotation, zoom, shift = 0.02, 0.05, (0.04, -0.03)
    ours = augmented_views(ramp, _Draws(False, rotation, zoom, shift))
    theirs = _keras_views(ramp, rotation, keras_zoom_sign * zoom, shift)
    inside = np.abs(ours - theirs)[:, 10:-10, 10:-10].max()
    assert (inside < 1e-5) == matches, inside
