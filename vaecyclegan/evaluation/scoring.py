"""Scoring paired images against two baselines: pure functions of arrays.

Every report puts the model beside the identity baseline (the input itself)
and histogram matching of the input to the target domain. During training
the matching reference is the pooled histogram of the target domain's
*training* images, so no test reference leaks into a baseline (the files
are read in `test_pairs`).

Where a synthetic CT has a reference in HU (16-bit CT), `evaluate_scans`
also adds SynthRAD's image metrics in HU, per tissue and of bone
(`case_scoring.score_slices`) as the summary's `"synthrad"` section; the
8-bit keys stay as they are.
"""

import dataclasses
import math

import numpy as np
from skimage.exposure import match_histograms

from vaecyclegan.evaluation.case_scoring import (
    HuOptions,
    format_synthrad_table,
    score_slices,
    synthrad_section,
)
from vaecyclegan.evaluation.metrics import image_metrics, mean_metrics, std_metrics
from vaecyclegan.evaluation.uncertainty import std_error_correlation
from vaecyclegan.io.intensity import unit_to_hu
from vaecyclegan.names import DIRECTION_DOMAINS, REPORTED_METRICS

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
    synthrad: list = None


def pooled_pixels(images):
    """The pixels of up to `HISTOGRAM_POOL_SIZE` images (spread over the
    list) on the 8-bit scale, as one row: a histogram-matching reference."""
    step = max(1, len(images) // HISTOGRAM_POOL_SIZE)
    chosen = images[::step][:HISTOGRAM_POOL_SIZE]
    return np.concatenate([_to_8bit_scale(p).ravel() for p in chosen])[None, :]


def _to_8bit_scale(pixels):
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float64)
    return pixels.astype(np.float64) * (255.0 / np.iinfo(pixels.dtype).max)


def _histogram_matched(image_8bit, pool):
    return np.clip(match_histograms(image_8bit, pool), 0.0, 255.0)


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
            (`test_pairs.evaluate_direction` reads them), or None, for `mae_hu`.
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


def evaluate_scans(direction, names, inputs, means, stds, references, target_pool, intensity,
                   hu_references=None, samples=1, *, synthrad_references=None, synthrad=True):
    """Scores translated one-slice scans against reference scans.

    Args:
        inputs, references: image `Scan`s.
        means, stds: the translations and deviations from
            `Translator.translate_stacks`.
        target_pool: as in `evaluate_predictions`; "references" pools the
            references themselves (when no training data is known).
        hu_references: HU references; default: the references that are in
            HU (16-bit CT), clipped to the window.
        synthrad_references: per image, the reference in HU, unclipped, or
            None; default: the references that are in HU.
        synthrad: add the `"synthrad"` section where a synthetic CT has an
            HU reference (`add_synthrad`).
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
    evaluation = evaluate_predictions(
        direction, names, [unit_to_8bit_scale(s.to_unit(intensity)[0]) for s in inputs],
        predictions, targets, target_pool,
        hu_references if any(h is not None for h in hu_references) else None,
        window, None if stds[0] is None else [s[0] * 127.5 for s in stds], samples)
    if synthrad and DIRECTION_DOMAINS[direction][1] == "ct":
        if synthrad_references is None:
            synthrad_references = [r.values[0] if r.units == "hu" else None for r in references]
        add_synthrad(evaluation, synthrad_references, window)
    return evaluation


def add_synthrad(evaluation, references_hu, window):
    """Scores the model's synthetic CTs (as written: the 8-bit scale back
    through the window) against HU references with SynthRAD's image
    metrics, and adds them as `summary["synthrad"]` and `synthrad`.

    Args:
        evaluation: a `DirectionEvaluation` of a direction that makes CT.
        references_hu: per image, the reference in HU (unclipped) or None.
        window: the CT window of the weights.
    """
    if not any(r is not None for r in references_hu):
        return
    predictions_hu = [unit_to_hu(p / 127.5 - 1.0, window) for p in evaluation.predictions]
    options = HuOptions(wepl=False)
    results = score_slices(evaluation.names, predictions_hu, references_hu, options)
    if results:
        evaluation.summary["synthrad"] = synthrad_section(
            results, options, options.body_mask_description() + "; 1 mm pixels")
        evaluation.synthrad = results


def unit_to_8bit_scale(unit, quantise=False):
    """[-1, 1] to the 8-bit scale (0..255) the metrics use, as float."""
    scaled = (np.asarray(unit, np.float64) + 1.0) * 127.5
    return np.round(scaled) if quantise else scaled


def format_table(summaries):
    """`{direction: summary}` as a plain-text table of means, then the
    SynthRAD metrics of the summaries that have them."""
    synthrad = format_synthrad_table(summaries)
    summaries = {d: s for d, s in summaries.items() if "model" in s}
    if not summaries:
        return synthrad
    present = [k for k in REPORTED_METRICS
               if any(k in s.get("model", {}) for s in summaries.values())]
    header = f"{'direction':<10}{'method':<20}{'n':>4}" + "".join(f"{k:>9}" for k in present)
    lines = [header, "-" * len(header)]
    for direction, summary in summaries.items():
        for method in METHODS:
            if method not in summary:
                continue
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
    return "\n".join(lines + (["", synthrad] if synthrad else []))
