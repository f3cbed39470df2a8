"""The unpaired training batches: whole images or random crops of them."""

import numpy as np
import pytest

from tests.harness import kinds_of_view
from vaecyclegan.translation.dataset import make_unpaired_dataset


def _ramp_images(count, side):
    # Each pixel tells where it came from: rows and columns of a ramp.
    rows, columns = np.mgrid[0:side, 0:side].astype(np.float32)
    image = (rows * side + columns) / (side * side) * 2.0 - 1.0
    return np.repeat(image[None, ..., None], count, axis=0)


def test_crops_are_drawn_from_anywhere_in_the_slice():
    images = _ramp_images(4, 32)
    batches = make_unpaired_dataset(images, images, batch_size=2, channels=1, seed=0, crop=8)
    corners = set()
    for mri, ct in batches.take(10):
        assert mri.shape == (4, 8, 8, 1) and ct.shape == (4, 8, 8, 1)
        # The loaded half is an exact crop of the ramp: its top-left value gives its origin.
        for crop in mri.numpy()[:2]:
            index = int(round((crop[0, 0, 0] + 1.0) / 2.0 * 32 * 32))
            top, left = divmod(index, 32)
            np.testing.assert_allclose(crop[..., 0], images[0, top:top + 8, left:left + 8, 0],
                                       atol=1e-5)
            corners.add((top, left))
    assert len(corners) > 5


def test_without_a_crop_whole_images_are_batched():
    images = _ramp_images(4, 16)
    mri, _ = next(iter(make_unpaired_dataset(images, images, 2, channels=3, seed=0)))
    assert mri.shape == (4, 16, 16, 3)
    # A crop of the images' own side is no crop.
    mri, _ = next(iter(make_unpaired_dataset(images, images, 2, channels=1, seed=0, crop=16)))
    assert mri.shape == (4, 16, 16, 1)


@pytest.mark.parametrize("augmentation,expected", [
    ("flips", {"same", "mirrored"}), ("affine", {"moved"})])
def test_flips_alone_views_are_the_image_or_its_mirror(augmentation, expected):
    # Random images: a rotated, shifted or zoomed view equals neither the
    # image nor its mirror.
    images = np.random.default_rng(1).uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
    batches = make_unpaired_dataset(images, images, 3, channels=1, seed=2,
                                    augmentation=augmentation)
    kinds = set()
    for mri, ct in batches.take(4):
        kinds |= set(kinds_of_view(mri.numpy())) | set(kinds_of_view(ct.numpy()))
    assert kinds == expected
