import math

import numpy as np
import pytest

from vaecyclegan.evaluation.metrics import METRIC_KEYS, image_metrics, mean_metrics
from vaecyclegan.evaluation.scoring import HISTOGRAM_POOL_SIZE, _histogram_matched, pooled_pixels


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
    # One pixel short of the 11-pixel window, and at it.
    assert math.isnan(image_metrics(np.zeros((10, 40)), np.zeros((10, 40)))["ssim"])
    assert image_metrics(np.zeros((11, 40)), np.zeros((11, 40)))["ssim"] == 1.0


def test_histogram_matching_baseline_takes_the_pools_histogram():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (32, 32))
    pool = pooled_pixels([rng.integers(150, 256, (64, 64), dtype=np.uint8) for _ in range(4)])
    assert pool.shape == (1, 4 * 64 * 64)
    matched = _histogram_matched(source, pool)
    assert matched.shape == source.shape
    # The input's histogram becomes the pool's: the same quantiles (to a grey level)...
    quantiles = np.linspace(0.02, 0.98, 25)
    np.testing.assert_allclose(np.quantile(matched, quantiles), np.quantile(pool, quantiles),
                               atol=1.0)
    assert matched.min() >= 150 and matched.max() <= 255
    # ...with the input's order kept: a brighter input pixel never gets a darker value.
    order = np.argsort(source, axis=None, kind="stable")
    assert np.all(np.diff(matched.ravel()[order]) >= 0)


def test_histogram_matching_baseline_is_clipped_to_the_8bit_scale():
    # A float pool beyond 0..255 (as a float pool is taken as is) maps the darkest
    # and brightest inputs outside the scale: they are clipped, the rest kept.
    levels = np.arange(256, dtype=np.float64).reshape(16, 16)
    pool = pooled_pixels([2.0 * levels - 100.0])  # -100 .. 410
    matched = _histogram_matched(levels, pool)
    np.testing.assert_allclose(matched, np.clip(2.0 * levels - 100.0, 0.0, 255.0))
    assert matched.min() == 0.0 and matched.max() == 255.0


def test_the_pool_is_on_the_8bit_scale_and_spread_over_the_images():
    sixteen = [np.full((4, 4), 65535, np.uint16), np.zeros((4, 4), np.uint16)]
    np.testing.assert_allclose(pooled_pixels(sixteen),
                               [[255.0] * 16 + [0.0] * 16])
    # More images than the pool holds: every k-th one, from the whole list.
    many = [np.full((2, 2), value, np.uint8) for value in range(HISTOGRAM_POOL_SIZE * 2)]
    pool = pooled_pixels(many)
    assert pool.shape == (1, HISTOGRAM_POOL_SIZE * 4)
    assert np.unique(pool).tolist() == list(range(0, HISTOGRAM_POOL_SIZE * 2, 2))


def _wang_ssim(prediction, reference):
    """Wang et al.'s SSIM from its formula (Gaussian window, sigma 1.5, 11
    pixels; population covariances), averaged away from the window's
    radius as scikit-image does: an implementation of its own."""
    from scipy import ndimage

    x, y = (np.asarray(a, np.float64) for a in (reference, prediction))

    def smooth(a):
        return ndimage.gaussian_filter(a, sigma=1.5, truncate=3.5)

    mx, my = smooth(x), smooth(y)
    vx, vy, vxy = smooth(x * x) - mx**2, smooth(y * y) - my**2, smooth(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim[5:-5, 5:-5].mean()


def test_ssim_of_two_different_images_is_wangs():
    # Only an image against itself was tested: a uniform window, sample
    # covariances or a 7-pixel window all passed.
    rng = np.random.default_rng(0)
    reference = np.clip(np.kron(rng.uniform(0, 255, (8, 8)), np.ones((6, 6))), 0, 255)
    prediction = np.clip(reference + rng.normal(0, 20, reference.shape), 0, 255)
    expected = _wang_ssim(prediction, reference)
    assert 0.2 < expected < 0.9
    assert image_metrics(prediction, reference)["ssim"] == pytest.approx(expected, abs=1e-6)


def test_auc_of_overlapping_scores_is_the_share_of_ordered_pairs():
    # Perfectly separated scores only: thresholded scores passed too.
    reference = np.array([[255.0, 255.0, 0.0, 0.0]])
    prediction = np.array([[200.0, 100.0, 150.0, 50.0]])
    # Positives 200, 100 against negatives 150, 50: 3 of 4 pairs ordered.
    assert image_metrics(prediction, reference)["auc"] == pytest.approx(0.75)


def test_a_confident_miss_costs_the_bce_of_its_clipped_score():
    # Scores clipped at 1e-7: log(1e-7) = -16.1 for a label 1 scored 0.
    reference = np.array([[255.0, 0.0]])
    prediction = np.array([[0.0, 0.0]])
    expected = -(math.log(1e-7) + math.log(1 - 1e-7)) / 2
    assert image_metrics(prediction, reference)["bce"] == pytest.approx(expected, rel=1e-6)


def test_means_leave_out_an_infinite_psnr():
    # Identical images score inf; in the mean it made every mean inf.
    rng = np.random.default_rng(1)
    reference = rng.uniform(0, 255, (16, 16))
    same = image_metrics(reference, reference)
    other = image_metrics(np.clip(reference + 10, 0, 255), reference)
    assert same["psnr"] == math.inf
    assert mean_metrics([same, other])["psnr"] == other["psnr"]
