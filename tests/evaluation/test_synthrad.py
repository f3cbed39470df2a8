"""SynthRAD image metrics: known answers, and agreement with independent
implementations written here from the published formulas (scipy.ndimage
filters in float64, no scikit-image)."""

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from vaecyclegan.evaluation import synthrad
from vaecyclegan.evaluation.body_mask import body_mask
from vaecyclegan.evaluation.synthrad import (
    HU_RANGE_2023,
    HU_RANGE_2025,
    METRIC_KEYS,
    MS_SSIM_WEIGHTS,
    mean_errors,
    ms_ssim_2025,
    psnr,
    ssim_2023,
    synthrad_metrics,
)


def head(shape, seed=0, noise=20.0):
    """A head: soft-tissue ellipsoid, a bone shell, an air cavity, air outside."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    radius = sum(((grid[i] - (n - 1) / 2) / (0.42 * n)) ** 2 for i, n in enumerate(shape))
    ct = np.full(shape, -1000.0, np.float32)
    ct[radius < 1.0] = 40.0
    ct[(radius < 1.0) & (radius > 0.75)] = 1200.0
    ct[radius < 0.08] = -950.0
    ct += rng.normal(0.0, noise, shape).astype(np.float32)
    return ct


def degraded(ct, seed=1):
    """Offset, blurred and noisy, with values beyond both HU ranges."""
    rng = np.random.default_rng(seed)
    out = ndimage.gaussian_filter(ct, 1.0) + 25.0 + rng.normal(0.0, 40.0, ct.shape)
    out = out.astype(np.float32)
    out.reshape(-1)[::97] = 3600.0
    out.reshape(-1)[5::89] = -2000.0
    return out


def _prepared(image, mask, low, high):
    out = np.clip(np.asarray(image, np.float64), low, high)
    out[~mask] = low
    return out - low


def independent_ssim(prediction, reference, mask, window):
    """Wang et al.'s SSIM map from the formula, averaged over the mask
    cropped by the window's radius (SynthRAD2023)."""
    low, high = HU_RANGE_2023
    data_range = high - low
    x = _prepared(reference, mask, low, high)
    y = _prepared(prediction, mask, low, high)
    if window == "uniform":
        def smooth(a):
            return ndimage.uniform_filter(a, size=7)
        n = 7 ** x.ndim
        norm, radius = n / (n - 1), 3
    else:
        def smooth(a):
            return ndimage.gaussian_filter(a, sigma=1.5, truncate=3.5)
        norm, radius = 1.0, 5
    mx, my = smooth(x), smooth(y)
    vx = norm * (smooth(x * x) - mx * mx)
    vy = norm * (smooth(y * y) - my * my)
    vxy = norm * (smooth(x * y) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    inner = tuple(slice(radius, n - radius) for n in x.shape)
    return ssim_map[inner][mask[inner]].mean()


def independent_ms_ssim(prediction, reference, mask, weights=MS_SSIM_WEIGHTS):
    """SynthRAD2025's masked MS-SSIM from its definition, in float64."""
    low, high = HU_RANGE_2025
    data_range = high - low
    x = _prepared(reference, mask, low, high)
    y = _prepared(prediction, mask, low, high)
    pad = [((97 - n) // 2, 97 - n - (97 - n) // 2) if n < 97 else (0, 0) for n in x.shape]
    x, y, mask = (np.pad(a, pad, mode="edge") for a in (x, y, mask))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    c3 = c2 / 2
    n = 7 ** x.ndim
    result = 1.0
    for weight in weights:
        def smooth(a):
            return ndimage.uniform_filter(a, size=7)
        mx, my = smooth(x), smooth(y)
        vx = n / (n - 1) * (smooth(x * x) - mx * mx)
        vy = n / (n - 1) * (smooth(y * y) - my * my)
        vxy = n / (n - 1) * (smooth(x * y) - mx * my)
        sx, sy = np.sqrt(np.clip(vx, 0, None)), np.sqrt(np.clip(vy, 0, None))
        lum = np.clip((2 * mx * my + c1) / (mx**2 + my**2 + c1), 0, None)
        con = np.clip((2 * sx * sy + c2) / (vx + vy + c2), 0, None)
        stru = np.clip((vxy + c3) / (sx * sy + c3), 0, None)
        ssim_map = lum**weight * con**weight * stru**weight
        inner = tuple(slice(3, k - 3) for k in x.shape)
        result *= np.clip(ssim_map[inner][mask[inner]].mean(), 0, 1)
        x, y = _average_down(x), _average_down(y)
        mask = mask[(slice(None, None, 2),) * mask.ndim]
    return result


def _average_down(a):
    """Mean of voxels i - 1 and i along every axis (zero before the first),
    then every other voxel: a 2^d box filter in 'same' mode, subsampled."""
    padded = np.pad(a, [(1, 0)] * a.ndim)
    total = np.zeros_like(a)
    for offsets in itertools.product((0, 1), repeat=a.ndim):
        total += padded[tuple(slice(o, o + n) for o, n in zip(offsets, a.shape))]
    return (total / 2**a.ndim)[(slice(None, None, 2),) * a.ndim]


def test_an_offset_inside_soft_tissue_gives_that_mae_there_and_zero_elsewhere():
    reference = head((20, 40, 36))
    mask = body_mask(reference)
    soft = mask & (reference >= -200) & (reference <= 200)
    prediction = reference + np.where(soft, 50.0, 0.0).astype(np.float32)
    scores = synthrad_metrics(prediction, reference, mask)
    assert scores["mae_soft"] == pytest.approx(50.0)
    assert scores["me_soft"] == pytest.approx(50.0)
    for key in ("mae_air", "me_air", "mae_bone", "me_bone"):
        assert scores[key] == 0.0
    fraction = soft.sum() / mask.sum()
    assert scores["mae"] == pytest.approx(50.0 * fraction)
    assert scores["me"] == pytest.approx(50.0 * fraction)
    assert scores["dice_bone"] == 1.0 and scores["hd95_bone_mm"] == 0.0


def test_mean_error_is_prediction_minus_reference():
    reference = np.zeros((4, 4))
    mae, me = mean_errors(reference - 30.0, reference)
    assert (mae, me) == (30.0, -30.0)


@pytest.mark.parametrize("hu_range", [HU_RANGE_2023, HU_RANGE_2025])
def test_psnr_agrees_with_the_formula_on_clipped_images_inside_the_mask(hu_range):
    reference = head((12, 30, 28))
    prediction = degraded(reference)
    mask = body_mask(reference)
    low, high = hu_range
    error = np.clip(prediction, low, high).astype(np.float64) - np.clip(reference, low, high)
    expected = 10 * math.log10((high - low) ** 2 / np.mean(error[mask] ** 2))
    assert psnr(prediction, reference, mask, hu_range) == pytest.approx(expected, abs=1e-9)


def test_psnr_ranges_are_the_challenges():
    reference = np.zeros((8, 8))
    prediction = reference + 40.24
    assert psnr(prediction, reference) == pytest.approx(40.0)  # 2023: 4024 HU
    assert psnr(prediction, reference, hu_range=HU_RANGE_2025) == pytest.approx(
        20 * math.log10(4095 / 40.24))
    assert psnr(reference, reference) == math.inf


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
@pytest.mark.parametrize("shape", [(40, 36), (14, 26, 23)])
def test_masked_ssim_agrees_with_the_formula(shape, window):
    reference = head(shape)
    prediction = degraded(reference)
    mask = body_mask(reference)
    expected = independent_ssim(prediction, reference, mask, window)
    assert 0.3 < expected < 0.99
    got = ssim_2023(prediction, reference, mask, window=window)
    assert got == pytest.approx(expected, abs=2e-5)


def test_masked_ssim_ignores_what_lies_outside_the_mask():
    reference = head((40, 36))
    prediction = degraded(reference)
    mask = body_mask(reference)
    changed = np.where(mask, prediction, 3000.0)
    assert ssim_2023(changed, reference, mask) == ssim_2023(prediction, reference, mask)
    assert ssim_2023(changed, reference) < ssim_2023(prediction, reference)


def test_ssim_is_nan_for_an_image_smaller_than_the_window():
    image = np.zeros((6, 30))
    assert math.isnan(ssim_2023(image, image))
    assert not math.isnan(ssim_2023(np.zeros((7, 30)), np.zeros((7, 30))))


def test_ms_ssim_of_identical_images_is_one_and_drops_with_blur():
    reference = head((24, 40, 40))
    mask = body_mask(reference)
    assert ms_ssim_2025(reference, reference, mask) == pytest.approx(1.0, abs=1e-6)
    blurred = [ms_ssim_2025(ndimage.gaussian_filter(reference, sigma), reference, mask)
               for sigma in (0.7, 1.5, 3.0)]
    assert 1.0 > blurred[0] > blurred[1] > blurred[2] > 0.0


@pytest.mark.parametrize("shape", [(130, 117), (16, 33, 30)])
def test_ms_ssim_agrees_with_its_definition(shape, monkeypatch):
    reference = head(shape)
    prediction = degraded(reference)
    mask = body_mask(reference)
    expected = independent_ms_ssim(prediction, reference, mask)
    assert 0.5 < expected < 0.999
    assert ms_ssim_2025(prediction, reference, mask) == pytest.approx(expected, abs=1e-5)
    # Slab by slab (a few rows a slab) gives the same.
    monkeypatch.setattr(synthrad, "_SLAB_VOXELS", 4 * int(np.prod(shape[1:])))
    assert ms_ssim_2025(prediction, reference, mask) == pytest.approx(expected, abs=1e-5)


def test_results_do_not_depend_on_the_slab_size(monkeypatch):
    reference = head((23, 30, 26))
    prediction = degraded(reference)
    whole = synthrad_metrics(prediction, reference, spacing=(2.0, 1.0, 1.0))
    monkeypatch.setattr(synthrad, "_SLAB_VOXELS", 3 * 30 * 26)
    slabs = synthrad_metrics(prediction, reference, spacing=(2.0, 1.0, 1.0))
    for key in METRIC_KEYS:
        assert slabs[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key


def test_all_keys_on_a_slice_and_a_volume_and_the_default_body_mask():
    reference = head((36, 40))
    prediction = degraded(reference)
    scores = synthrad_metrics(prediction, reference, spacing=(0.8, 0.8))
    assert tuple(scores) == METRIC_KEYS
    assert all(isinstance(value, float) for value in scores.values())
    explicit = synthrad_metrics(prediction, reference, body_mask(reference), spacing=(0.8, 0.8))
    assert scores == explicit
    volume = head((10, 24, 24))
    scores = synthrad_metrics(degraded(volume), volume, spacing=(3.0, 1.0, 1.0))
    assert tuple(scores) == METRIC_KEYS
    assert 0.0 < scores["dice_bone"] < 1.0
    assert 0.0 < scores["ssim_2023"] < 1.0 and 0.0 < scores["ms_ssim_2025"] < 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: synthrad_metrics(np.zeros((8, 9)), np.zeros((8, 8))), "differs from reference"),
    (lambda: synthrad_metrics(np.zeros((8, 8)), np.zeros((8, 8)), np.ones((8, 9))),
     "mask shape"),
    (lambda: synthrad_metrics(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8))),
     "no voxel"),
    (lambda: synthrad_metrics(np.zeros((8, 8)), np.full((8, 8), -1000.0)), "body mask is empty"),
    (lambda: synthrad_metrics(np.zeros(8), np.zeros(8)), "must be 2-D"),
    (lambda: synthrad_metrics(np.zeros((8, 8)), np.zeros((8, 8)), spacing=(1, 1, 1)),
     "spacing must have 2 values"),
    (lambda: synthrad_metrics(np.full((8, 8), np.nan), np.zeros((8, 8))), "NaN or infinite"),
    (lambda: psnr(np.zeros((8, 8)), np.zeros((8, 8)), hu_range=(5, 5)), "hu_range"),
    (lambda: ssim_2023(np.zeros((8, 8)), np.zeros((8, 8)), window="box"), "window"),
])
def test_bad_inputs_raise_one_line(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
