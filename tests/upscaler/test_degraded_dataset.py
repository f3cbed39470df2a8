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
