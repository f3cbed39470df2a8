"""Real low/high-resolution pairs for the upscaler."""

import json
import os

import numpy as np
import pytest

from conftest import train_options
from vaecyclegan.errors import InputError
from vaecyclegan.image_io import write_png
from vaecyclegan.sr_pairs import load_sr_pairs, make_paired_sr_dataset


def _pairs_folder(root, count, scale=4, size=16, suffix=True):
    rng = np.random.default_rng(0)
    for index in range(count):
        high = rng.integers(0, 256, (size * scale, size * scale), dtype=np.uint8)
        low = high.reshape(size, scale, size, scale).mean(axis=(1, 3)).astype(np.uint8)
        write_png(str(root / "HR" / f"{index:04d}.png"), high)
        name = f"{index:04d}x{scale}.png" if suffix else f"{index:04d}.png"
        write_png(str(root / "LR" / name), low)
    return root


def test_pairs_are_matched_by_name_and_every_tenth_is_held_out(tmp_path):
    train, held = load_sr_pairs(str(_pairs_folder(tmp_path, 12)), 4)
    assert [name for name, _, _ in held] == ["0009"]
    assert len(train) == 11 and train[0][1].shape == (16, 16) and train[0][2].shape == (64, 64)
    assert train[0][1].max() <= 1.0 and train[0][2].dtype == np.float32


def test_pairs_of_the_wrong_factor_are_refused(tmp_path):
    _pairs_folder(tmp_path, 2, scale=2, suffix=False)
    with pytest.raises(InputError, match="not x4 of"):
        load_sr_pairs(str(tmp_path), 4)
    with pytest.raises(InputError, match="no hr/HR/gt/GT subfolder"):
        load_sr_pairs(str(tmp_path / "HR"), 4)


def test_crops_stay_aligned(tmp_path):
    train, _ = load_sr_pairs(str(_pairs_folder(tmp_path, 3)), 4)
    low, high = next(iter(make_paired_sr_dataset(train, 32, 4, 2, channels=1, seed=1)))
    assert low.shape == (2, 8, 8, 1) and high.shape == (2, 32, 32, 1)
    # Each low-resolution pixel is the mean of its 4x4 high-resolution block (to 1 grey level).
    pooled = np.asarray(high)[..., 0].reshape(2, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(pooled - np.asarray(low)[..., 0]).max() <= 1.5 / 255


def test_train_sr_on_real_pairs_reports_held_out_metrics(trained_smoke, tmp_path, capsys):
    import shutil

    from vaecyclegan.training_run import run_training

    pairs = _pairs_folder(tmp_path / "pairs", 10, size=8)
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    run_training(train_options(stage="sr", weights_dir=str(weights), logdir=str(tmp_path / "run"),
                               data=trained_smoke.data, sr_pairs=str(pairs)))
    assert "9 for training, 1 held out" in capsys.readouterr().out
    with open(tmp_path / "run" / "sr_pairs_metrics.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["n"] == 1 and {"model", "bicubic", "nearest"} <= set(summary)
    assert os.path.isfile(tmp_path / "run" / "sr_metrics.json")
