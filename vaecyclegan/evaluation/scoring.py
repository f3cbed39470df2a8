"""Scoring paired images against two baselines: pure functions of arrays.

Every report puts the model beside the identity baseline (the input itself)
and histogram matching of the input to the target domain. During training
the matching reference is the pooled histogram of the target domain's
*training* images, so no test reference leaks into a baseline (the files
are read in `paired_test_set`).

Where a synthetic CT has a reference in HU (16-bit CT), `evaluate_scans`
also adds SynthRAD's image metrics in HU, per tissue and of bone
(`case_scoring.score_slices`) as the summary's `"synthrad"` section; the
8-bit keys stay as they are.

Every direction that makes CT also gets, for each method and image, the
MAE per tissue class in HU (`mae_air`, `mae_soft`, `mae_bone`) and the
bone Dice (`bone_dice`) of `tissue.windowed_scores`: the 8-bit images are
mapped to HU through the CT window (an HU reference, where there is one,
is used clipped to it; a 16-bit reference array is HU + 1024), and the
tissue thresholds are moved into the window (`tissue.windowed_thresholds`:
in a brain window bone is the saturated band, 8-bit levels 250..255).
A class the reference lacks gives NaN for that image, which the means
leave out (`metrics.mean_metrics`); a method whose every image lacks it
keeps NaN (null in `metrics.json`). The window and thresholds used are
recorded as the summary's `"tissue"`.
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
from vaecyclegan.evaluation.tissue import windowed_scores, windowed_thresholds
from vaecyclegan.evaluation.uncertainty import std_error_correlation
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, unit_to_hu
from vaecyclegan.names import DIRECTION_DOMAINS, REPORTED_METRICS

METHODS = ("model", "identity", "histogram_matching")
# Enough images for a stable histogram without reading a whole domain.
HISTOGRAM_POOL_SIZE = 64
# The CT window of 8-bit images scored without weights (`IntensityConfig`'s default).
DEFAULT_CT_WINDOW_HU = (-1000.0, 2000.0)


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
    # Directions that make CT: per image, (reference bone, model's bone)
    # boolean maps, thresholded as `bone_dice` is.
    bones: list = None


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


def _scale_to_hu(reference, window):
    """The map from the 8-bit scale to HU, clipped to `window`, of images
    scored against `reference` (as given: a 16-bit array holds HU + 1024
    over the full scale, anything else is windowed CT)."""
    if getattr(reference, "dtype", None) == np.uint16:
        full_scale = np.iinfo(np.uint16).max / 255.0
        return lambda v: np.clip(np.asarray(v, np.float64) * full_scale - PNG16_HU_OFFSET,
                                 *window)
    return lambda v: np.clip(unit_to_hu(np.asarray(v, np.float64) / 127.5 - 1.0, window),
                             *window).astype(np.float64)


class _TissueScorer:
    """`tissue.windowed_scores` of each method's images against references
    in HU (module docstring)."""

    def __init__(self, raw_references, references, hu_references, window):
        given = window is not None
        self.window = tuple(float(v) for v in (window if given else DEFAULT_CT_WINDOW_HU))
        self.maps = [_scale_to_hu(r, self.window) for r in raw_references]
        hu_references = hu_references or [None] * len(references)
        self.references_hu = [
            to_hu(r) if hu is None else np.clip(np.asarray(hu, np.float64), *self.window)
            for to_hu, r, hu in zip(self.maps, references, hu_references)]
        thresholds = windowed_thresholds(self.window)
        self.bone = thresholds[1]
        self.settings = {
            "window_hu": list(self.window),
            "window": "given" if given else "default: no CT window known",
            "thresholds_hu": list(thresholds),
            "bone_threshold_hu": self.bone,
            "hu_references": sum(hu is not None for hu in hu_references),
        }

    def score(self, per_image, predictions):
        """Adds the tissue keys to each image's metrics; returns the bone maps."""
        bones = []
        for metrics, prediction, to_hu, reference in zip(per_image, predictions, self.maps,
                                                         self.references_hu):
            predicted = to_hu(prediction)
            metrics.update(windowed_scores(predicted, reference, self.window))
            bones.append((reference > self.bone, predicted > self.bone))
        return bones


def evaluate_predictions(direction, names, inputs, predictions, references, target_pool,
                         hu_references=None, ct_window=None, stds=None, samples=None):
    """Scores given predictions, and both baselines, against references.

    Directions that make CT also get the per-tissue MAE and bone Dice
    (module docstring).

    Args:
        direction: `mri2ct` or `ct2mri` (a label for the reports).
        names: file names, one per image.
        inputs, predictions, references: lists of 2-D 8/16-bit arrays (full
            scale linear) or float arrays already on the 8-bit scale.
        target_pool: pooled target-domain pixels on the 8-bit scale, for the
            histogram-matching baseline (`pooled_pixels`); None scores the
            model alone (baselines do not change while a model trains).
        hu_references: per image, the reference in HU clipped to the window
            (`paired_test_set.evaluate_direction` reads them), or None, for `mae_hu`.
        ct_window: the CT window of the images; None: not known, so
            `DEFAULT_CT_WINDOW_HU` is taken, and the report says so.
        stds: per image, the model's deviation map (8-bit scale), if sampled.
        samples: the latent draws behind `stds`, for the report.

    Returns:
        A `DirectionEvaluation`.
    """
    raw_references = references
    inputs = [_to_8bit_scale(p) for p in inputs]
    references = [_to_8bit_scale(p) for p in references]
    tissue = None
    if DIRECTION_DOMAINS.get(direction, ("", ""))[1] == "ct":
        tissue = _TissueScorer(raw_references, references, hu_references, ct_window)
    candidates = {"model": [_to_8bit_scale(p) for p in predictions]}
    if target_pool is not None:
        candidates["identity"] = inputs
        candidates["histogram_matching"] = [_histogram_matched(p, target_pool) for p in inputs]
    summary, rows = {"n": len(names)}, []
    deviations, bones = {}, None
    for method in candidates:
        per_image = [image_metrics(p, r) for p, r in zip(candidates[method], references)]
        if hu_references:
            for metrics, prediction, hu in zip(per_image, candidates[method], hu_references):
                metrics["mae_hu"] = _mae_hu(prediction, hu, ct_window or DEFAULT_CT_WINDOW_HU)
        if tissue is not None:
            method_bones = tissue.score(per_image, candidates[method])
            if method == "model":
                bones = method_bones
        summary[method] = mean_metrics(per_image)
        deviations[method] = std_metrics(per_image)
        rows += [{"direction": direction, "file": name, "method": method, **metrics}
                 for name, metrics in zip(names, per_image)]
    summary["std"] = deviations
    if tissue is not None:
        summary["tissue"] = tissue.settings
    if stds is not None:
        errors = [np.abs(p - r) for p, r in zip(candidates["model"], references)]
        summary["uncertainty"] = {"samples": samples, **std_error_correlation(stds, errors)}
    return DirectionEvaluation(direction, list(names), inputs, candidates["model"], references,
                               stds, summary, rows, bones=bones)


def evaluate_scans(direction, names, inputs, means, stds, references, target_pool, intensity,
                   hu_references=None, samples=1, *, synthrad_references=None, synthrad=True,
                   window_given=True):
    """Scores translated one-slice scans against reference scans.

    Args:
        direction: "mri2ct" or "ct2mri" (CT-making directions get the CT
            metrics and, with `synthrad`, SynthRAD's), or "none" for
            upscaling alone; a label for the reports.
        names: file names, one per scan (the reports' rows).
        inputs, references: image `Scan`s.
        means, stds: the translations and deviations from
            `Translator.translate_stacks`.
        target_pool: as in `evaluate_predictions`; "references" pools the
            references themselves (when no training data is known).
        intensity: the `IntensityConfig` that maps the scans to [-1, 1]
            (its CT window also maps the 8-bit scale to HU).
        hu_references: HU references; default: the references that are in
            HU (16-bit CT), clipped to the window.
        samples: the latent draws behind `stds`, for the report.
        synthrad_references: per image, the reference in HU, unclipped, or
            None; default: the references that are in HU.
        synthrad: add the `"synthrad"` section where a synthetic CT has an
            HU reference (`add_synthrad`).
        window_given: whether `intensity`'s CT window is known to be the
            images' (a model's, or one the user named); else the report
            says that the default was taken.
    """
    window = intensity.ct_window_hu
    if hu_references is None:
        hu_references = [np.clip(r.values[0], *window) if r.units == "hu" else None
                         for r in references]
    targets = [unit_to_8bit_scale(r.to_unit(intensity)[0], _grey_levels(r)) for r in references]
    if isinstance(target_pool, str) and target_pool == "references":
        target_pool = pooled_pixels(targets)
    # 8-bit results are scored as written: rounded to their grey levels.
    predictions = [unit_to_8bit_scale(m[0], s.source == np.uint8) for m, s in zip(means, inputs)]
    evaluation = evaluate_predictions(
        direction, names,
        [unit_to_8bit_scale(s.to_unit(intensity)[0], _grey_levels(s)) for s in inputs],
        predictions, targets, target_pool,
        hu_references if any(h is not None for h in hu_references) else None,
        window if window_given else None,
        None if stds[0] is None else [s[0] * 127.5 for s in stds], samples)
    # Upscaling alone (`direction` "none") makes no known domain.
    if synthrad and DIRECTION_DOMAINS.get(direction, (None, None))[1] == "ct":
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


def _grey_levels(scan):
    """Whether `scan` holds 8-bit grey levels, which come back from [-1, 1]
    rounded to themselves (unrounded, float32 left 1e-5 of them)."""
    return scan.units == "grey" and scan.source == np.uint8


def unit_to_8bit_scale(unit, quantise=False):
    """[-1, 1] to the 8-bit scale (0..255) the metrics use, as float."""
    scaled = (np.asarray(unit, np.float64) + 1.0) * 127.5
    return np.round(scaled) if quantise else scaled


def format_table(summaries):
    """`{direction: summary}` as a plain-text table of means (NaN: no
    image had the class), then the SynthRAD metrics of the summaries that
    have them."""
    synthrad = format_synthrad_table(summaries)
    summaries = {d: s for d, s in summaries.items() if "model" in s}
    if not summaries:
        return synthrad
    present = [k for k in REPORTED_METRICS
               if any(k in s.get("model", {}) for s in summaries.values())]
    header = f"{'direction':<10}{'method':<20}{'n':>4}" + "".join(f"{k:>10}" for k in present)
    lines = [header, "-" * len(header)]
    for direction, summary in summaries.items():
        for method in METHODS:
            if method not in summary:
                continue
            values = summary[method]
            cells = "".join(
                f"{values[k]:>10.3f}" if k in values else f"{'':>10}" for k in present
            )
            lines.append(f"{direction:<10}{method:<20}{summary['n']:>4}{cells}")
    for direction, summary in summaries.items():
        if "tissue" in summary:
            t = summary["tissue"]
            lines.append(f"{direction}: mae_air/soft/bone in HU, air below "
                         f"{t['thresholds_hu'][0]:g}, bone above {t['thresholds_hu'][1]:g} HU "
                         f"on the reference; bone_dice above {t['bone_threshold_hu']:g} HU "
                         f"(CT window {t['window_hu'][0]:g}..{t['window_hu'][1]:g} HU, "
                         f"{t['window']})")
        if "uncertainty" in summary:
            u = summary["uncertainty"]
            lines.append(f"{direction}: {u['samples']} latent samples; correlation of predicted "
                         f"std with |error|: Pearson {u['pearson']:.3f}, "
                         f"Spearman {u['spearman']:.3f}")
    return "\n".join(lines + (["", synthrad] if synthrad else []))
