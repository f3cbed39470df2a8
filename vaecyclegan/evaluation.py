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

from vaecyclegan.errors import InputError
from vaecyclegan.image_io import list_images, read_grey, read_image_scan
from vaecyclegan.intensity import PNG16_HU_OFFSET, unit_to_hu
from vaecyclegan.metrics import image_metrics, mean_metrics, std_metrics
from vaecyclegan.scan_io import find_scan_sources, read_scan
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


def histogram_pool(folder, domain, intensity):
    """`pooled_pixels` of a domain folder's scans (the middle slice of a
    volume), read as training reads them, sampling only those it uses."""
    sources = find_scan_sources(folder)
    step = max(1, len(sources) // HISTOGRAM_POOL_SIZE)
    planes = []
    for source in sources[::step][:HISTOGRAM_POOL_SIZE]:
        try:
            unit = read_scan(source, domain).to_unit(intensity)
        except InputError:
            continue  # training skips it too, with a warning
        planes.append((unit[len(unit) // 2] + 1.0) * 127.5)
    if not planes:
        raise InputError(folder, f"no readable {domain.upper()} image for the baseline")
    return pooled_pixels(planes)


def _to_8bit_scale(pixels):
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float64)
    return pixels.astype(np.float64) * (255.0 / np.iinfo(pixels.dtype).max)


def _histogram_matched(image_8bit, pool):
    return np.clip(match_histograms(image_8bit, pool), 0.0, 255.0)


def read_hu_reference(hu_path, window):
    """A 16-bit HU reference (HU + 1024) clipped to the window (a windowed
    prediction cannot express HU outside it), or None when missing."""
    if not os.path.isfile(hu_path):
        return None
    return np.clip(read_grey(hu_path).astype(np.float64) - PNG16_HU_OFFSET, *window)


def _mae_hu(prediction_8bit, reference_hu, window):
    if reference_hu is None:
        return math.nan
    predicted = unit_to_hu(np.asarray(prediction_8bit, np.float32) / 127.5 - 1.0, window)
    return float(np.mean(np.abs(predicted - reference_hu)))


def evaluate_predictions(direction, names, inputs, predictions, references, target_pool,
                         hu_references=None, ct_window=None, stds=None, samples=None):
    """Scores given predictions, and both baselines, against references.

    Args:
        direction: `mri2ct` or `ct2mri` (a label for the reports).
        names: file names, one per image.
        inputs, predictions, references: lists of 2-D 8/16-bit arrays (full
            scale linear) or float arrays already on the 8-bit scale.
        target_pool: pooled target-domain pixels on the 8-bit scale, for the
            histogram-matching baseline (`pooled_pixels`); None scores the
            model alone (baselines do not change while a model trains).
        hu_references: per image, the reference in HU clipped to the window
            (`read_hu_reference`), or None, for `mae_hu`.
        ct_window: the CT window, needed with `hu_references`.
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


def evaluate_direction(translator, direction, pairs, target_pool, intensity, hu_folder=None,
                       batch_size=8, samples=1):
    """Translates the inputs of `pairs` and scores them (`evaluate_predictions`).

    Inputs and references are read as `infer.py` reads them (16-bit CT as
    HU, 16-bit MRI by percentiles) and scored on the 8-bit scale of [-1, 1].

    Args:
        translator: a `Translator` for this direction.
        pairs: `[(input_path, reference_path), ...]` of image files.
        intensity: the `IntensityConfig` of the weights.
        hu_folder: folder of 16-bit HU references with the same file names,
            for directions that produce CT (a 16-bit CT reference is its own).
        samples: latent draws per image; above 1 the mean is scored and the
            deviation maps are correlated with the error.
    """
    domain_in, domain_out = ("mri", "ct") if direction == "mri2ct" else ("ct", "mri")
    inputs = [read_image_scan(a, domain_in) for a, _ in pairs]
    references = [read_image_scan(b, domain_out) for _, b in pairs]
    means, stds = translator.translate_stacks([s.to_unit(intensity) for s in inputs],
                                              batch_size, samples)
    names = [os.path.basename(a) for a, _ in pairs]
    hu_references = [read_hu_reference(os.path.join(hu_folder, n), intensity.ct_window_hu)
                     for n in names] if hu_folder else None
    return evaluate_scans(direction, names, inputs, means, stds, references, target_pool,
                          intensity, hu_references, samples)


def evaluate_scans(direction, names, inputs, means, stds, references, target_pool, intensity,
                   hu_references=None, samples=1):
    """Scores translated one-slice scans against reference scans.

    Args:
        inputs, references: image `Scan`s.
        means, stds: the translations and deviations from
            `Translator.translate_stacks`.
        target_pool: as in `evaluate_predictions`; "references" pools the
            references themselves (when no training data is known).
        hu_references: HU references; default: the references that are in
            HU (16-bit CT), clipped to the window.
    """
    window = intensity.ct_window_hu
    if hu_references is None:
        hu_references = [np.clip(r.values[0], *window) if r.units == "hu" else None
                         for r in references]
    targets = [unit_to_8bit_scale(r.to_unit(intensity)[0]) for r in references]
    if isinstance(target_pool, str) and target_pool == "references":
        target_pool = pooled_pixels(targets)
    # 8-bit results are scored as written: rounded to their grey levels.
    predictions = [unit_to_8bit_scale(m[0], s.source == np.uint8) for m, s in zip(means, inputs)]
    return evaluate_predictions(
        direction, names, [unit_to_8bit_scale(s.to_unit(intensity)[0]) for s in inputs],
        predictions, targets, target_pool,
        hu_references if any(h is not None for h in hu_references) else None,
        window, None if stds[0] is None else [s[0] * 127.5 for s in stds], samples)


def unit_to_8bit_scale(unit, quantise=False):
    """[-1, 1] to the 8-bit scale (0..255) the metrics use, as float."""
    scaled = (np.asarray(unit, np.float64) + 1.0) * 127.5
    return np.round(scaled) if quantise else scaled


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
