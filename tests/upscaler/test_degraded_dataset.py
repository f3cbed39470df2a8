"""The upscaler's degraded batches: crops that hold edges."""

import numpy as np

from vaecyclegan.upscaler import degraded_dataset
from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset


def _mostly_flat_images():
    # A slice of uniform air with one small textured square: most crops see nothing.
    images = np.full((2, 96, 96, 1), -1.0, np.float32)
    rng = np.random.default_rng(0)
    images[:, 60:84, 10:34, 0] = rng.uniform(-1, 1, (2, 24, 24))
    return images


def _mean_patch_std(batches):
    return float(np.mean([hr.numpy().std(axis=(1, 2, 3)).mean() for _, hr in batches.take(30)]))


def test_crops_prefer_detail(monkeypatch):
    images = _mostly_flat_images()
    chosen = _mean_patch_std(make_sr_dataset(images, 16, 4, 4, channels=1, seed=0))
    monkeypatch.setattr(degraded_dataset, "CROP_CANDIDATES", 1)
    plain = _mean_patch_std(make_sr_dataset(images, 16, 4, 4, channels=1, seed=0))
    assert chosen > 1.5 * plain
    for low, high in make_sr_dataset(images, 16, 4, 4, channels=1, seed=0).take(1):
        assert low.shape == (4, 4, 4, 1) and high.shape == (4, 16, 16, 1)


def test_stacks_of_different_sizes_are_both_drawn():
    # CT and MRI at their own native sizes: np.concatenate of the two
    # crashed the upscaler stage of `train.py --stage all`.
    small = np.full((3, 32, 32, 1), -1.0, np.float32)  # dark
    large = np.full((5, 48, 48, 1), 1.0, np.float32)   # bright
    batches = make_sr_dataset([small, large], 16, 4, 8, channels=1, seed=0)
    means = np.concatenate([hr.numpy().mean(axis=(1, 2, 3)) for _, hr in batches.take(20)])
    assert set(np.round(means, 3)) == {0.0, 1.0}
    # Each image as often as in one shuffled array: 3 small against 5 large.
    assert 0.2 < np.mean(means == 0.0) < 0.55


def test_one_size_trains_exactly_as_one_array():
    rng = np.random.default_rng(1)
    a, b = (rng.uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32) for _ in range(2))
    joined = make_sr_dataset(np.concatenate([a, b]), 16, 4, 4, channels=1, seed=3)
    listed = make_sr_dataset([a, b], 16, 4, 4, channels=1, seed=3)
    for (low1, high1), (low2, high2) in zip(joined.take(3), listed.take(3)):
        np.testing.assert_array_equal(high1.numpy(), high2.numpy())
        np.testing.assert_array_equal(low1.numpy(), low2.numpy())
