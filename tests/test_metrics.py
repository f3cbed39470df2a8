import math

import numpy as np
import pytest
from skimage.exposure import match_histograms

from vaecyclegan.metrics import METRIC_KEYS, image_metrics, mean_metrics


def test_psnr_of_a_known_mse():
    reference = np.full((16, 16), 100.0)
    prediction = reference + 5.0  # MSE 25
    expected = 10 * math.log10(255**2 / 25)
    assert image_metrics(prediction, reference)["psnr"] == pytest.approx(expected)


def test_ssim_and_mae_of_an_image_with_itself():
    image = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.float64)
    metrics = image_metrics(image, image)
    assert metrics["ssim"] == pytest.approx(1.0)
    assert metrics["mae"] == 0.0
    assert metrics["psnr"] == math.inf


def _tile(row):
    # A 16x16 image made of a repeated row (large enough for SSIM's window).
    return np.tile(np.asarray(row, dtype=np.float64), (16, 16 // len(row)))


def test_auc_of_perfectly_separated_scores_is_one():
    reference = _tile([0, 0, 255, 255])
    prediction = _tile([10, 100, 140, 250])
    assert image_metrics(prediction, reference)["auc"] == 1.0


def test_f1_and_bce_on_a_small_example():
    reference = _tile([255, 255, 0, 0])  # labels 1 1 0 0
    prediction = _tile([255 * 0.9, 255 * 0.4, 255 * 0.6, 255 * 0.1])
    metrics = image_metrics(prediction, reference)
    # thresholded: 1 0 1 0 -> tp 1, fp 1, fn 1 -> F1 = 2/(2+1+1)
    assert metrics["f1"] == pytest.approx(0.5)
    expected_bce = -np.mean([np.log(0.9), np.log(0.4), np.log(0.4), np.log(0.9)])
    assert metrics["bce"] == pytest.approx(expected_bce, rel=1e-6)


def test_auc_is_nan_for_a_one_class_reference_and_skipped_in_means():
    flat = np.zeros((16, 16))
    single = image_metrics(flat + 3, flat)
    assert math.isnan(single["auc"])
    two = image_metrics(_tile([0.0, 255.0]), _tile([0.0, 255.0]))
    assert mean_metrics([single, two])["auc"] == 1.0
    assert set(single) == set(METRIC_KEYS)


def test_ssim_is_nan_below_its_window_instead_of_failing():
    tiny = np.zeros((5, 40))
    metrics = image_metrics(tiny, tiny)
    assert math.isnan(metrics["ssim"]) and metrics["mae"] == 0.0


def test_histogram_matching_baseline_takes_the_target_histogram():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 100, (32, 32)).astype(np.uint8)
    target_pool = rng.integers(150, 256, (1, 4096)).astype(np.uint8)
    matched = np.round(match_histograms(source, target_pool)).astype(np.uint8)
    assert matched.min() >= 150 and abs(np.median(matched) - np.median(target_pool)) < 4
