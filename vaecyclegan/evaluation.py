"""Evaluation on paired test images against two baselines (DESIGN section 5).

Every report puts the model beside the identity baseline (the input itself)
and histogram matching of the input to the target domain. The matching
reference is the pooled histogram of the target domain's *training* images,
so no test reference leaks into a baseline.
"""

import json
import math
import os

import numpy as np
from skimage.exposure import match_histograms

from vaecyclegan.atomic_write import atomic_write_text
from vaecyclegan.image_io import list_images, read_grey
from vaecyclegan.intensity import PNG16_HU_OFFSET, stored_to_unit, unit_to_hu
from vaecyclegan.metrics import image_metrics, mean_metrics

# Enough images for a stable histogram without reading a whole domain.
HISTOGRAM_POOL_SIZE = 64


def paired_files(input_folder, reference_folder):
    """Returns `[(input_path, reference_path), ...]` for file names in both."""
    references = {os.path.basename(p): p for p in list_images(reference_folder)}
    return [
        (path, references[os.path.basename(path)])
        for path in list_images(input_folder)
        if os.path.basename(path) in references
    ]


def histogram_pool(folder):
    """The pooled pixels of up to `HISTOGRAM_POOL_SIZE` images, as one row."""
    paths = list_images(folder)
    step = max(1, len(paths) // HISTOGRAM_POOL_SIZE)
    pixels = [read_grey(p).ravel() for p in paths[::step][:HISTOGRAM_POOL_SIZE]]
    return np.concatenate(pixels)[None, :]


def _match(pixels, pool):
    matched = match_histograms(pixels, pool.astype(pixels.dtype))
    return np.round(matched).astype(pixels.dtype)


def _to_8bit_scale(pixels):
    return pixels.astype(np.float64) * (255.0 / np.iinfo(pixels.dtype).max)


def evaluate_direction(translator, pairs, target_pool, hu_folder=None, ct_window=None,
                       batch_size=8):
    """Model, identity and histogram-matching metrics for one direction.

    Args:
        translator: a `Translator` for this direction.
        pairs: `[(input_path, reference_path), ...]`.
        target_pool: pooled target-domain training pixels (`histogram_pool`).
        hu_folder: folder of 16-bit HU references (HU + 1024) with the same
            file names, for `mae_hu`; only for directions that produce CT.
        ct_window: the config's CT window, needed with `hu_folder`.
        batch_size: images per forward pass.

    Returns:
        `{"n": ..., "model": {...}, "identity": {...}, "histogram_matching": {...}}`.
    """
    inputs = [read_grey(a) for a, _ in pairs]
    references = [_to_8bit_scale(read_grey(b)) for _, b in pairs]
    predictions = translator.translate_stored(inputs, batch_size)
    candidates = {
        "model": [_to_8bit_scale(p) for p in predictions],
        "identity": [_to_8bit_scale(p) for p in inputs],
        "histogram_matching": [_to_8bit_scale(_match(p, target_pool)) for p in inputs],
    }
    report = {"n": len(pairs)}
    for name, images in candidates.items():
        per_image = [image_metrics(p, r) for p, r in zip(images, references)]
        if hu_folder:
            hu_pairs = [
                (prediction, os.path.join(hu_folder, os.path.basename(b)))
                for prediction, (_, b) in zip(images, pairs)
            ]
            for metrics, (prediction, hu_path) in zip(per_image, hu_pairs):
                metrics["mae_hu"] = _mae_hu(prediction, hu_path, ct_window)
        report[name] = mean_metrics(per_image)
    return report


def _mae_hu(prediction_8bit, hu_path, window):
    """MAE in HU against the reference clipped to the window (a windowed
    prediction cannot express HU outside it)."""
    if not os.path.isfile(hu_path):
        return math.nan
    reference = read_grey(hu_path).astype(np.float64) - PNG16_HU_OFFSET
    reference = np.clip(reference, *window)
    predicted = unit_to_hu(stored_to_unit(np.round(prediction_8bit).astype(np.uint8)), window)
    return float(np.mean(np.abs(predicted - reference)))


def format_table(report):
    """The report as a plain-text table, one row per direction and method."""
    keys = ["psnr", "ssim", "mae", "mae_hu", "bce", "auc", "f1"]
    present = [k for k in keys if any(k in r.get("model", {}) for r in report.values())]
    header = f"{'direction':<10}{'method':<20}{'n':>4}" + "".join(f"{k:>9}" for k in present)
    lines = [header, "-" * len(header)]
    for direction, result in report.items():
        for method in ("model", "identity", "histogram_matching"):
            values = result[method]
            cells = "".join(
                f"{values[k]:>9.3f}" if k in values else f"{'':>9}" for k in present
            )
            lines.append(f"{direction:<10}{method:<20}{result['n']:>4}{cells}")
    return "\n".join(lines)


def _json_safe(value):
    # JSON has no NaN or Infinity: an undefined metric is written as null.
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics_json(path, report):
    atomic_write_text(path, json.dumps(_json_safe(report), indent=2) + "\n")
