"""Paired image metrics, on 8-bit scale images.

PSNR (data range 255), SSIM (scikit-image, Gaussian weights, sigma 1.5,
population covariance: Wang et al.'s settings), MAE, and the original
work's BCE, AUC-ROC and F1, for which the reference scaled to [0, 1] and
binarised at 0.5 gives the labels and the prediction scaled to [0, 1] the
scores (for CT through the default window, label 1 means bone).
"""

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from vaecyclegan.names import METRIC_KEYS  # noqa: F401 (the keys image_metrics returns)

# Scores are clipped away from 0 and 1 so a confident miss costs a finite BCE.
_BCE_EPSILON = 1e-7
# scikit-image's Gaussian SSIM window: 2 * int(3.5 * 1.5 + 0.5) + 1 pixels.
SSIM_WINDOW = 11


def image_metrics(prediction, reference):
    """All metrics of one predicted image against its reference.

    Args:
        prediction, reference: 2-D arrays on the 0..255 scale, same shape.

    Returns:
        A dict with `METRIC_KEYS`. `auc` is NaN when the reference has one
        class only (ROC AUC is undefined there), `ssim` when a side is shorter
        than the 11-pixel window; PSNR is inf for identical images.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    labels = (reference / 255.0 > 0.5).ravel().astype(np.int32)
    scores = np.clip(prediction / 255.0, _BCE_EPSILON, 1.0 - _BCE_EPSILON).ravel()
    both_classes = 0 < labels.sum() < labels.size
    return {
        "psnr": _psnr(prediction, reference),
        "ssim": _ssim(prediction, reference),
        "mae": float(np.mean(np.abs(prediction - reference))),
        "bce": float(log_loss(labels, scores, labels=[0, 1])),
        "auc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "f1": float(f1_score(labels, scores > 0.5, zero_division=1.0)),
    }


def _psnr(prediction, reference):
    # Identical images: inf, without scikit-image's divide-by-zero warning.
    if np.array_equal(prediction, reference):
        return math.inf
    return float(peak_signal_noise_ratio(reference, prediction, data_range=255))


def _ssim(prediction, reference):
    if min(reference.shape) < SSIM_WINDOW:
        return math.nan
    return float(structural_similarity(
        reference, prediction, data_range=255, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False,
    ))


def _aggregate(per_image, reduce):
    summary = {}
    for key in per_image[0]:
        values = np.array([m[key] for m in per_image], dtype=np.float64)
        finite = values[np.isfinite(values)]
        summary[key] = float(reduce(finite)) if finite.size else math.nan
    return summary


def mean_metrics(per_image):
    """Means over images of each metric, ignoring non-finite values (an
    image without both classes has no AUC, identical images an infinite
    PSNR, a CT reference without a tissue class no MAE of that class); a
    metric with no finite value stays NaN."""
    return _aggregate(per_image, np.mean)


def std_metrics(per_image):
    """Standard deviations over images, with `mean_metrics`' rules."""
    return _aggregate(per_image, np.std)
