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
from vaecyclegan.evaluation.figures import GRID_ROWS, SYNTHRAD_ROWS
from vaecyclegan.evaluation.metrics import image_metrics, mean_metrics, std_metrics
from vaecyclegan.evaluation.tissue import windowed_scores, windowed_thresholds
from vaecyclegan.evaluation.uncertainty import EvenPixelSample, std_error_correlation
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, unit_to_hu
from vaecyclegan.names import DIRECTION_DOMAINS, REPORTED_METRICS

METHODS = ("model", "identity", "histogram_matching")
# Enough images for a stable histogram without reading a whole domain.
HISTOGRAM_POOL_SIZE = 64
# The CT window of 8-bit images scored without weights (`IntensityConfig`'s default).
DEFAULT_CT_WINDOW_HU = (-1000.0, 2000.0)
# The most deviation and error pixels kept for their correlation (about
# 25 MB); a set of more is sampled evenly (`EvenPixelSample`).
UNCERTAINTY_PIXELS = 2**21


@dataclasses.dataclass
class DirectionEvaluation:
    """One direction's evaluation: the summary for `metrics.json`, per-image
    rows for the CSV, and the images the comparison grid is drawn from (its
    first `GRID_ROWS` images: inputs, predictions, references and deviation
    maps on the 8-bit scale, 0..255, and bone maps; `names` has them all)."""

    direction: str
    names: list
    inputs: list
    predictions: list
    references: list
    stds: list  # per-pixel deviation maps, or None without sampling
    summary: dict
    rows: list
    # SynthRAD's `CaseResult`s: every case, those past the figure's without it.
    synthrad: list = None
    # Directions that make CT: per image shown, (reference bone, model's
    # bone) boolean maps, thresholded as `bone_dice` is.
    bones: list = None


def pooled_pixels(images):
    """The pixels of up to `HISTOGRAM_POOL_SIZE` images (spread over the
    list) on the 8-bit scale, as one row: a histogram-matching reference."""
    chosen = [images[i] for i in pooled_indices(len(images))]
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


class DirectionScorer:
    """Scores one direction image by image (`add`), and both baselines
    beside the model, into a `DirectionEvaluation` (`result`).

    Nothing is held for all images but their metrics: of the images
    themselves it keeps the first `shown` (the report's comparison grid)
    and, where latent samples were drawn, the deviations and errors for
    their correlation: every pixel up to `UNCERTAINTY_PIXELS`, past that
    every k-th of all (`EvenPixelSample`). Holding every pair
    with its baselines had taken about 77 bytes a pixel: 80 GB for a test
    set of 4,000 exported 512-px slices.

    Directions that make CT also get the per-tissue MAE and bone Dice
    (module docstring).

    Args:
        direction: `mri2ct`, `ct2mri` or `none` (a label for the reports).
        target_pool: pooled target-domain pixels on the 8-bit scale, for the
            histogram-matching baseline (`pooled_pixels`); None scores the
            model alone (baselines do not change while a model trains).
        ct_window: the CT window of the images; None: not known, so
            `DEFAULT_CT_WINDOW_HU` is taken, and the report says so.
        samples: the latent draws behind the deviation maps, if sampled.
        shown: how many images (the first) the report draws.

    Example:
        >>> scorer = DirectionScorer("ct2mri", target_pool=None)
        >>> image = np.full((16, 16), 100.0)
        >>> scorer.add("a.png", image, image + 5.0, image)
        >>> scorer.result().summary["model"]["mae"]
        5.0
    """

    def __init__(self, direction, target_pool, ct_window=None, samples=None, shown=GRID_ROWS):
        self.direction, self.target_pool, self.samples = direction, target_pool, samples
        self.ct_window, self.shown = ct_window, shown
        self.methods = ["model"] + (["identity", "histogram_matching"]
                                    if target_pool is not None else [])
        self.per_image = {method: [] for method in self.methods}
        self.names, self.kept, self.bones, self.hu_count = [], [], [], 0
        self.makes_ct = DIRECTION_DOMAINS.get(direction, ("", ""))[1] == "ct"
        self.window = tuple(float(v) for v in (ct_window or DEFAULT_CT_WINDOW_HU))
        self.uncertainty = EvenPixelSample(UNCERTAINTY_PIXELS)
        self.sampled = False

    def add(self, name, input_image, prediction, reference, hu_reference=None, std=None):
        """Scores one image and its baselines.

        Args:
            name: the file name (the reports' row).
            input_image, prediction, reference: 2-D 8/16-bit arrays (full
                scale linear) or float arrays already on the 8-bit scale.
            hu_reference: the reference in HU clipped to the window, or
                None, for `mae_hu` (and the tissue scores in place of the
                reference's 8-bit levels).
            std: the model's deviation map (8-bit scale), if sampled.
        """
        raw_reference = reference
        input_image, reference = _to_8bit_scale(input_image), _to_8bit_scale(reference)
        candidates = {"model": _to_8bit_scale(prediction)}
        if self.target_pool is not None:
            candidates["identity"] = input_image
            candidates["histogram_matching"] = _histogram_matched(input_image, self.target_pool)
        to_hu, reference_hu = self._tissue_reference(raw_reference, reference, hu_reference)
        for method, image in candidates.items():
            metrics = image_metrics(image, reference)
            metrics["mae_hu"] = _mae_hu(image, hu_reference, self.window)
            if self.makes_ct:
                predicted = to_hu(image)
                metrics.update(windowed_scores(predicted, reference_hu, self.window))
                if method == "model" and len(self.names) < self.shown:
                    bone = windowed_thresholds(self.window)[1]
                    self.bones.append((reference_hu > bone, predicted > bone))
            self.per_image[method].append(metrics)
        self.hu_count += hu_reference is not None
        if len(self.names) < self.shown:
            self.kept.append((input_image, candidates["model"], reference, std))
        if std is not None:
            self.sampled = True
            self.uncertainty.add(std, np.abs(candidates["model"] - reference))
        self.names.append(name)

    def _tissue_reference(self, raw_reference, reference, hu_reference):
        """The map from the 8-bit scale to HU for this image, and its
        reference in HU (the HU one where given, clipped to the window)."""
        if not self.makes_ct:
            return None, None
        to_hu = _scale_to_hu(raw_reference, self.window)
        if hu_reference is None:
            return to_hu, to_hu(reference)
        return to_hu, np.clip(np.asarray(hu_reference, np.float64), *self.window)

    def result(self):
        """The `DirectionEvaluation` of every image added."""
        if not self.hu_count:  # no image had an HU reference: no mae_hu at all
            for per_image in self.per_image.values():
                for metrics in per_image:
                    del metrics["mae_hu"]
        summary, rows, deviations = {"n": len(self.names)}, [], {}
        for method, per_image in self.per_image.items():
            summary[method] = mean_metrics(per_image) if per_image else {}
            deviations[method] = std_metrics(per_image) if per_image else {}
            rows += [{"direction": self.direction, "file": name, "method": method, **metrics}
                     for name, metrics in zip(self.names, per_image)]
        summary["std"] = deviations
        if self.makes_ct:
            summary["tissue"] = self._tissue_settings()
        if self.sampled:
            stds, errors = self.uncertainty.maps()
            summary["uncertainty"] = {"samples": self.samples,
                                      **std_error_correlation([stds], [errors])}
        inputs, predictions, references, stds = (list(column) for column in
                                                 zip(*self.kept)) if self.kept else ([],) * 4
        return DirectionEvaluation(
            self.direction, list(self.names), inputs, predictions, references,
            stds if self.sampled else None, summary, rows,
            bones=self.bones if self.makes_ct else None)

    def _tissue_settings(self):
        thresholds = windowed_thresholds(self.window)
        return {
            "window_hu": list(self.window),
            "window": "given" if self.ct_window is not None else "default: no CT window known",
            "thresholds_hu": list(thresholds),
            "bone_threshold_hu": thresholds[1],
            "hu_references": self.hu_count,
        }


def evaluate_predictions(direction, names, inputs, predictions, references, target_pool,
                         hu_references=None, ct_window=None, stds=None, samples=None):
    """Scores given predictions, and both baselines, against references
    (`DirectionScorer` over lists).

    Args:
        direction, target_pool, ct_window, samples: as `DirectionScorer`'s.
        names: file names, one per image.
        inputs, predictions, references: lists of 2-D 8/16-bit arrays (full
            scale linear) or float arrays already on the 8-bit scale.
        hu_references: per image, the reference in HU clipped to the window
            (`paired_test_set.evaluate_direction` reads them), or None, for `mae_hu`.
        stds: per image, the model's deviation map (8-bit scale), if sampled.

    Returns:
        A `DirectionEvaluation`.
    """
    scorer = DirectionScorer(direction, target_pool, ct_window, samples)
    hu_references = [None] * len(names) if hu_references is None else hu_references
    stds = [None] * len(names) if stds is None else stds
    for row in zip(names, inputs, predictions, references, hu_references, stds):
        scorer.add(*row)
    return scorer.result()


@dataclasses.dataclass
class ScanPair:
    """One translated one-slice scan with its reference, for `evaluate_scans`.

    `mean` and `std` are the translation and its deviation in [-1, 1]
    (`Translator.translate_stacks`; `std` None without sampling). `hu`
    is the reference in HU, unclipped: a separate 16-bit HU copy of a
    windowed reference, or by default the reference itself where it is
    in HU (16-bit CT).
    """

    name: str
    input: object
    mean: np.ndarray
    std: np.ndarray
    reference: object
    hu: np.ndarray = None

    def reference_hu(self):
        """The reference in HU, unclipped, or None when none is known."""
        if self.hu is not None:
            return self.hu
        return self.reference.values[0] if self.reference.units == "hu" else None


def evaluate_scans(direction, pairs, target_pool, intensity, samples=1, *,
                   synthrad=True, window_given=True):
    """Scores translated one-slice scans against reference scans, one pair
    at a time (`DirectionScorer`).

    Args:
        direction: "mri2ct" or "ct2mri" (CT-making directions get the CT
            metrics and, with `synthrad`, SynthRAD's), or "none" for
            upscaling alone; a label for the reports.
        pairs: `ScanPair`s, any iterable (a generator reads and translates
            each as it is scored).
        target_pool: as in `DirectionScorer` (`scan_pool` pools scans).
        intensity: the `IntensityConfig` that maps the scans to [-1, 1]
            (its CT window also maps the 8-bit scale to HU).
        samples: the latent draws behind the deviations, for the report.
        synthrad: add the `"synthrad"` section where a synthetic CT has an
            HU reference (SynthRAD's image metrics of each slice, 1 mm
            pixels, body mask of the reference).
        window_given: whether `intensity`'s CT window is known to be the
            images' (a model's, or one the user named); else the report
            says that the default was taken.
    """
    window = intensity.ct_window_hu
    scorer = DirectionScorer(direction, target_pool, window if window_given else None, samples)
    # Upscaling alone (`direction` "none") makes no known domain.
    slices = _SlicesInHu(window) if synthrad and scorer.makes_ct else None
    for pair in pairs:
        hu = pair.reference_hu()
        # 8-bit results are scored as written: rounded to their grey levels.
        prediction = unit_to_8bit_scale(pair.mean[0], pair.input.source == np.uint8)
        scorer.add(pair.name, unit_to_8bit_scale(pair.input.to_unit(intensity)[0],
                                                 _grey_levels(pair.input)),
                   prediction,
                   unit_to_8bit_scale(pair.reference.to_unit(intensity)[0],
                                      _grey_levels(pair.reference)),
                   None if hu is None else np.clip(np.asarray(hu, np.float64), *window),
                   None if pair.std is None else pair.std[0] * 127.5)
        if slices is not None and hu is not None:
            slices.add(pair.name, prediction, hu)
    evaluation = scorer.result()
    if slices is not None:
        slices.add_section(evaluation)
    return evaluation


class _SlicesInHu:
    """SynthRAD's image metrics of each synthetic CT slice (as written: the
    8-bit scale back through the window) against its HU reference, for
    the summary's `"synthrad"` section; the figures of the first
    `SYNTHRAD_ROWS` slices are kept, the report's."""

    def __init__(self, window):
        self.window, self.options, self.results = window, HuOptions(wepl=False), []

    def add(self, name, prediction_8bit, reference_hu):
        predicted_hu = unit_to_hu(prediction_8bit / 127.5 - 1.0, self.window)
        for result in score_slices([name], [predicted_hu], [reference_hu], self.options):
            if len(self.results) >= SYNTHRAD_ROWS:
                result.figure = None
            self.results.append(result)

    def add_section(self, evaluation):
        if self.results:
            evaluation.summary["synthrad"] = synthrad_section(
                self.results, self.options, self.options.body_mask_description() + "; 1 mm pixels")
            evaluation.synthrad = self.results


def pooled_indices(count):
    """Which of `count` images `pooled_pixels` pools: up to
    `HISTOGRAM_POOL_SIZE`, spread over them."""
    return list(range(0, count, max(1, count // HISTOGRAM_POOL_SIZE)))[:HISTOGRAM_POOL_SIZE]


def scan_pool(scans, intensity):
    """`pooled_pixels` of image `Scan`s (the chosen ones: `pooled_indices`),
    on the 8-bit scale they are scored on."""
    return pooled_pixels([unit_to_8bit_scale(s.to_unit(intensity)[0], _grey_levels(s))
                          for s in scans])


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
