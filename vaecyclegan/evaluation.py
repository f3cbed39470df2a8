"""Evaluation on paired test images against two baselines (DESIGN section 5).

Every report puts the model beside the identity baseline (the input itself)
and histogram matching of the input to the target domain. During training
the matching reference is the pooled histogram of the target domain's
*training* images, so no test reference leaks into a baseline.
"""

import dataclasses
import math
import os

import numpy as np
from skimage.exposure import match_histograms

from vaecyclegan.image_io import list_images, read_grey
from vaecyclegan.intensity import PNG16_HU_OFFSET, stored_to_unit, unit_to_hu
from vaecyclegan.metrics import image_metrics, mean_metrics, std_metrics
from vaecyclegan.uncertainty import std_error_correlation

METHODS = ("model", "identity", "histogram_matching")
# Enough images for a stable histogram without reading a whole domain.
HISTOGRAM_POOL_SIZE = 64


@dataclasses.dataclass
class DirectionEvaluation:
    """One direction's evaluation: the summary for `metrics.json`, per-image
    rows for the CSV, and the images the pictures are drawn from (all on the
    8-bit scale, 0..255)."""

    direction: str
    names: list
    inputs: list
    predictions: list
    references: list
    stds: list  # per-pixel deviation maps, or None without sampling
    summary: dict
    rows: list


def paired_files(input_folder, reference_folder):
    """Returns `[(input_path, reference_path), ...]` for file names in both."""
    references = {os.path.basename(p): p for p in list_images(reference_folder)}
    return [
        (path, references[os.path.basename(path)])
        for path in list_images(input_folder)
        if os.path.basename(path) in references
    ]


def pooled_pixels(images):
    """The pixels of up to `HISTOGRAM_POOL_SIZE` images (spread over the
    list) on the 8-bit scale, as one row: a histogram-matching reference."""
    step = max(1, len(images) // HISTOGRAM_POOL_SIZE)
    chosen = images[::step][:HISTOGRAM_POOL_SIZE]
    return np.concatenate([_to_8bit_scale(p).ravel() for p in chosen])[None, :]


def histogram_pool(folder):
    """`pooled_pixels` of a folder's images, reading only those it uses."""
    paths = list_images(folder)
    step = max(1, len(paths) // HISTOGRAM_POOL_SIZE)
    return pooled_pixels([read_grey(p) for p in paths[::step][:HISTOGRAM_POOL_SIZE]])


def _to_8bit_scale(pixels):
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float64)
    return pixels.astype(np.float64) * (255.0 / np.iinfo(pixels.dtype).max)


def _histogram_matched(image_8bit, pool):
    return np.clip(match_histograms(image_8bit, pool), 0.0, 255.0)


def _hu_reference(hu_path, window):
    """A 16-bit HU reference (HU + 1024) clipped to the window (a windowed
    prediction cannot express HU outside it), or None when missing."""
    if not os.path.isfile(hu_path):
        return None
    return np.clip(read_grey(hu_path).astype(np.float64) - PNG16_HU_OFFSET, *window)


def _mae_hu(prediction_8bit, reference_hu, window):
    if reference_hu is None:
        return math.nan
    predicted = unit_to_hu(stored_to_unit(np.round(prediction_8bit).astype(np.uint8)), window)
    return float(np.mean(np.abs(predicted - reference_hu)))


def evaluate_predictions(direction, names, inputs, predictions, references, target_pool,
                         hu_paths=None, ct_window=None, stds=None, samples=None):
    """Scores given predictions, and both baselines, against references.

    Args:
        direction: `mri2ct` or `ct2mri` (a label for the reports).
        names: file names, one per image.
        inputs, predictions, references: lists of 2-D 8/16-bit arrays.
        target_pool: pooled target-domain pixels on the 8-bit scale, for the
            histogram-matching baseline (`pooled_pixels`); None scores the
            model alone (baselines do not change while a model trains).
        hu_paths: per image, a 16-bit HU reference (HU + 1024) for `mae_hu`.
        ct_window: the CT window, needed with `hu_paths`.
        stds: per image, the model's deviation map (8-bit scale), if sampled.
        samples: the latent draws behind `stds`, for the report.

    Returns:
        A `DirectionEvaluation`.
    """
    inputs = [_to_8bit_scale(p) for p in inputs]
    references = [_to_8bit_scale(p) for p in references]
    candidates = {"model": [_to_8bit_scale(p) for p in predictions]}
    if target_pool is not None:
        candidates["identity"] = inputs
        candidates["histogram_matching"] = [_histogram_matched(p, target_pool) for p in inputs]
    hu_references = [_hu_reference(p, ct_window) for p in hu_paths] if hu_paths else None
    summary, rows = {"n": len(names)}, []
    deviations = {}
    for method in candidates:
        per_image = [image_metrics(p, r) for p, r in zip(candidates[method], references)]
        if hu_references:
            for metrics, prediction, hu in zip(per_image, candidates[method], hu_references):
                metrics["mae_hu"] = _mae_hu(prediction, hu, ct_window)
        summary[method] = mean_metrics(per_image)
        deviations[method] = std_metrics(per_image)
        rows += [{"direction": direction, "file": name, "method": method, **metrics}
                 for name, metrics in zip(names, per_image)]
    summary["std"] = deviations
    if stds is not None:
        errors = [np.abs(p - r) for p, r in zip(candidates["model"], references)]
        summary["uncertainty"] = {"samples": samples, **std_error_correlation(stds, errors)}
    return DirectionEvaluation(direction, list(names), inputs, candidates["model"], references,
                               stds, summary, rows)


def evaluate_direction(translator, direction, pairs, target_pool, hu_folder=None,
                       ct_window=None, batch_size=8, samples=1):
    """Translates the inputs of `pairs` and scores them (`evaluate_predictions`).

    Args:
        translator: a `Translator` for this direction.
        pairs: `[(input_path, reference_path), ...]`.
        hu_folder: folder of 16-bit HU references with the same file names,
            for directions that produce CT.
        samples: latent draws per image; above 1 the mean is scored and the
            deviation maps are correlated with the error.
    """
    inputs = [read_grey(a) for a, _ in pairs]
    references = [read_grey(b) for _, b in pairs]
    if samples > 1:
        predictions, stds = translator.sample_stored(inputs, samples, batch_size)
    else:
        predictions, stds = translator.translate_stored(inputs, batch_size), None
    names = [os.path.basename(a) for a, _ in pairs]
    hu_paths = [os.path.join(hu_folder, n) for n in names] if hu_folder else None
    return evaluate_predictions(direction, names, inputs, predictions, references,
                                target_pool, hu_paths, ct_window, stds, samples)


def format_table(summaries):
    """`{direction: summary}` as a plain-text table of means."""
    keys = ["psnr", "ssim", "mae", "mae_hu", "bce", "auc", "f1"]
    present = [k for k in keys if any(k in s.get("model", {}) for s in summaries.values())]
    header = f"{'direction':<10}{'method':<20}{'n':>4}" + "".join(f"{k:>9}" for k in present)
    lines = [header, "-" * len(header)]
    for direction, summary in summaries.items():
        for method in METHODS:
            values = summary[method]
            cells = "".join(
                f"{values[k]:>9.3f}" if k in values else f"{'':>9}" for k in present
            )
            lines.append(f"{direction:<10}{method:<20}{summary['n']:>4}{cells}")
    for direction, summary in summaries.items():
        if "uncertainty" in summary:
            u = summary["uncertainty"]
            lines.append(f"{direction}: {u['samples']} latent samples; correlation of predicted "
                         f"std with |error|: Pearson {u['pearson']:.3f}, "
                         f"Spearman {u['spearman']:.3f}")
    return "\n".join(lines)
