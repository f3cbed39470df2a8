"""Real low/high-resolution pairs for the upscaler."""


import numpy as np
import pytest

from tests.harness import sr_pairs_folder
from vaecyclegan.errors import InputError
from vaecyclegan.upscaler.paired_dataset import load_sr_pairs, make_paired_sr_dataset


def test_pairs_are_matched_by_name_and_every_tenth_is_held_out(tmp_path):
    train, held = load_sr_pairs(str(sr_pairs_folder(tmp_path, 12)), 4)
    assert [name for name, _, _ in held] == ["0009"]
    assert len(train) == 11 and train[0][1].shape == (16, 16) and train[0][2].shape == (64, 64)
    assert train[0][1].max() <= 1.0 and train[0][2].dtype == np.float32


def test_pairs_of_the_wrong_factor_are_refused(tmp_path):
    sr_pairs_folder(tmp_path, 2, scale=2, suffix=False)
    with pytest.raises(InputError, match="not x4 of"):
        load_sr_pairs(str(tmp_path), 4)
    with pytest.raises(InputError, match="no hr/HR/gt/GT subfolder"):
        load_sr_pairs(str(tmp_path / "HR"), 4)


def test_crops_stay_aligned(tmp_path):
    train, _ = load_sr_pairs(str(sr_pairs_folder(tmp_path, 3)), 4)
    low, high = next(iter(make_paired_sr_dataset(train, 32, 4, 2, channels=1, seed=1)))
    assert low.shape == (2, 8, 8, 1) and high.shape == (2, 32, 32, 1)
    # Each low-resolution pixel is the mean of its 4x4 high-resolution block (to 1 grey level).
    pooled = np.asarray(high)[..., 0].reshape(2, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(pooled - np.asarray(low)[..., 0]).max() <= 1.5 / 255
