"""Scoring synthetic CTs in HU case by case, as a radiotherapy physicist
reads them, and the `"synthrad"` section of `metrics.json` that gathers
the cases.

Per case (`score_case`): SynthRAD's image metrics inside a mask (given, or
the body mask of the reference), the errors per tissue and the bone
geometry (`synthrad.synthrad_metrics`); the water-equivalent path length
difference along beam angles (`wepl.wepl_difference`; by default on cases
of at most `WEPL_AUTO_MAX_VOXELS` voxels, about 30 s for 64 slices of
512 x 512 on one core); gamma pass rates and the dose MAE between dose grids
(`dose.compare_dose_files`) when dose files are given. A 2-D case's WEPL is
traced in its plane. `score_slices` does the image metrics of 2-D HU slices
for `infer.py --reference` and `train.py`'s closing evaluation.

The section (`synthrad_section`): `{"n", "settings", "mean", "std",
"cases"}`, means and standard deviations over cases of each flat key in
`CASE_KEYS`, ignoring non-finite values (an infinite PSNR of identical
images, an HD95 with no predicted bone) as the 8-bit summary does.
"""

import dataclasses
import logging
import math

import numpy as np

from vaecyclegan.errors import printable
from vaecyclegan.evaluation.body_mask import BODY_THRESHOLD_HU, body_mask
from vaecyclegan.evaluation.synthrad import METRIC_KEYS, synthrad_metrics
from vaecyclegan.evaluation.tissue import BONE_THRESHOLD_HU, TISSUE_THRESHOLDS_HU
from vaecyclegan.evaluation.wepl import DEFAULT_ANGLES, wepl_difference

logger = logging.getLogger(__name__)

# WEPL runs by default on cases up to this many voxels (64 slices of 512 x 512).
WEPL_AUTO_MAX_VOXELS = 64 * 512 * 512
WEPL_KEYS = ("wepl_mean_abs_mm", "wepl_p95_abs_mm", "wepl_mean_abs_pct", "wepl_p95_abs_pct",
             "wepl_mean_mm")
DOSE_KEYS = ("gamma_pass_2pct_2mm", "gamma_pass_1pct_1mm", "dose_mae_gy", "dose_mae_relative")
CASE_KEYS = METRIC_KEYS + WEPL_KEYS + DOSE_KEYS
_GAMMA_KEYS = {"2%/2mm": "gamma_pass_2pct_2mm", "1%/1mm": "gamma_pass_1pct_1mm"}


@dataclasses.dataclass
class HuOptions:
    """How cases are scored (the `vaecyclegan-eval` options of the same names).

    Args:
        tissue_thresholds: (low, high) HU: air below, bone above, soft between.
        bone_threshold: HU above which a voxel is bone (Dice, HD95).
        body_threshold: HU of the body mask made from the reference.
        mask_dilation_mm: grows the body mask made from the reference.
        wepl: True, False, or None (auto: cases up to `wepl_max_voxels`).
        wepl_max_voxels: the auto limit.
        angles: beam angles in degrees.
        curve: (N, 2) HU -> RSP nodes, None for the default curve.
        curve_file: where `curve` came from, for the record.
        prescription_gy: the plan's prescription for the dose MAE.
    """

    tissue_thresholds: tuple = TISSUE_THRESHOLDS_HU
    bone_threshold: float = BONE_THRESHOLD_HU
    body_threshold: float = BODY_THRESHOLD_HU
    mask_dilation_mm: float = 0.0
    wepl: bool = None
    wepl_max_voxels: int = WEPL_AUTO_MAX_VOXELS
    angles: tuple = DEFAULT_ANGLES
    curve: np.ndarray = None
    curve_file: str = None
    prescription_gy: float = None

    def wants_wepl(self, size):
        return self.wepl if self.wepl is not None else size <= self.wepl_max_voxels

    def describe(self, mask):
        """The settings as recorded in `metrics.json`; `mask` says where the
        masks came from."""
        wepl = "off" if self.wepl is False else {
            "when": "every case" if self.wepl else f"cases up to {self.wepl_max_voxels:,} voxels",
            "angles_deg": [float(a) for a in self.angles],
            "hu_to_rsp": self.curve_file or "default (typical single-energy CT curve)",
        }
        return {
            "units": "HU; hd95 in mm; wepl in mm of water or % of the reference WEPL; "
                     "gamma in % of points; dose MAE in Gy or a fraction of the prescription",
            "mask": mask,
            "tissue_thresholds_hu": [float(t) for t in self.tissue_thresholds],
            "bone_threshold_hu": float(self.bone_threshold),
            "hd95_convention": "max (MONAI)",
            "wepl": wepl,
        }

    def body_mask_description(self):
        dilation = (f", dilated {self.mask_dilation_mm:g} mm" if self.mask_dilation_mm
                    else "")
        return (f"body mask of the reference: above {self.body_threshold:g} HU, holes filled "
                f"per slice, largest component{dilation}")


# Where a case's `spacing_mm` came from (its `details["spacing_from"]`):
# mm, distances and WEPL of a 2-D image file scale with a pixel size the
# file does not hold.
SPACING_FROM_FILE = "the file"
SPACING_GIVEN = "--spacing"
SPACING_ASSUMED = "assumed: 1 mm, the file holds no pixel spacing"


@dataclasses.dataclass
class CaseFigure:
    """What a case's report figure shows: one slice (the middle of the
    mask's extent) of each image, in HU."""

    slice_index: int
    reference: np.ndarray
    prediction: np.ndarray
    mask: np.ndarray
    wepl: np.ndarray = None  # max |WEPL difference| over angles, mm


@dataclasses.dataclass
class CaseResult:
    """One scored case: flat metrics (`CASE_KEYS` that were computed), the
    details for `metrics.json` (geometry, mask file, WEPL per angle, dose)
    and its figure."""

    name: str
    metrics: dict
    details: dict
    figure: CaseFigure


def case_mask(reference, spacing, options):
    """The body mask `score_case` makes when none is given."""
    return body_mask(reference, spacing, threshold=options.body_threshold,
                     dilation_mm=options.mask_dilation_mm)


def score_case(name, prediction, reference, spacing, options, mask=None, target=None,
               dose=None):
    """Scores one synthetic CT against its reference.

    Args:
        name: the case name.
        prediction, reference: arrays in HU, (H, W) or (D, H, W), same shape.
        spacing: mm per axis.
        options: `HuOptions`.
        mask: boolean array; None: the body mask of the reference (`case_mask`).
        target: boolean array restricting the WEPL statistics, or None.
        dose: (sCT dose file, CT dose file), or None.

    Returns:
        A `CaseResult`.

    Raises:
        ValueError: from the metrics (an empty body mask, a WEPL target
            outside the body, a reference dose with no positive value).
        InputError: a dose file that cannot be read, or grids that differ.
    """
    if mask is None:
        mask = case_mask(reference, spacing, options)
        if not mask.any():
            raise ValueError(f"the body mask is empty: no voxel above "
                             f"{options.body_threshold:g} HU; pass --mask")
    metrics = synthrad_metrics(prediction, reference, mask, spacing,
                               tissue_thresholds=options.tissue_thresholds,
                               bone_threshold=options.bone_threshold)
    details = {"shape": list(reference.shape), "spacing_mm": [float(s) for s in spacing]}
    wepl_map = None
    if options.wants_wepl(reference.size):
        summary, wepl_map = _wepl(prediction, reference, mask, spacing, options, target)
        metrics.update({f"wepl_{k}": summary["pooled"][k] for k in
                        ("mean_abs_mm", "p95_abs_mm", "mean_abs_pct", "p95_abs_pct",
                         "mean_mm")})
        details["wepl"] = summary
    if dose is not None:
        details["dose"] = _dose(dose, options)
        metrics.update(_dose_metrics(details["dose"]))
    return CaseResult(name, metrics, details, _figure(prediction, reference, mask, wepl_map))


def _wepl(prediction, reference, mask, spacing, options, target):
    """`wepl_difference` of a volume, or of a slice as a one-slice volume."""
    planar = reference.ndim == 2

    def volume(array):
        return None if array is None else (array[None] if planar else array)

    summary, difference = wepl_difference(
        volume(prediction), volume(reference), volume(mask),
        (1.0, *spacing) if planar else spacing, angles=options.angles,
        target_mask=volume(target), curve=options.curve)
    return summary, difference[0] if planar else difference


def _dose(dose, options):
    from vaecyclegan.errors import InputError
    from vaecyclegan.evaluation.dose import compare_dose_files

    sct_path, ct_path = dose
    try:
        result = compare_dose_files(sct_path, ct_path, prescription=options.prescription_gy)
    except ValueError as error:
        raise InputError(ct_path, str(error)) from None
    except ImportError as error:
        raise InputError(ct_path, str(error)) from None
    return {"dose_sct": str(sct_path), "dose_ct": str(ct_path), **result}


def _dose_metrics(dose):
    flat = {key: dose["gamma"][name]["pass_rate_percent"]
            for name, key in _GAMMA_KEYS.items() if name in dose["gamma"]}
    flat["dose_mae_gy"] = dose["mae"]["mae_gy"]
    flat["dose_mae_relative"] = dose["mae"]["mae_relative"]
    return flat


def _figure(prediction, reference, mask, wepl_map):
    if reference.ndim == 2:
        return CaseFigure(0, reference.copy(), prediction.copy(), mask.copy(),
                          None if wepl_map is None else wepl_map.copy())
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    index = int((slices[0] + slices[-1]) // 2) if slices.size else reference.shape[0] // 2
    return CaseFigure(index, np.array(reference[index]), np.array(prediction[index]),
                      np.array(mask[index]),
                      None if wepl_map is None else np.array(wepl_map[index]))


def score_slices(names, predictions_hu, references_hu, options=None):
    """Image metrics of 2-D slices in HU (1 mm pixels, body mask of each
    reference, no WEPL): for `infer.py --reference` and `train.py`'s
    closing evaluation. A slice that cannot be scored (no body in the
    reference) is left out with a warning.

    Returns:
        A list of `CaseResult`.
    """
    options = options or HuOptions(wepl=False)
    results = []
    for name, prediction, reference in zip(names, predictions_hu, references_hu):
        if reference is None:
            continue
        try:
            result = score_case(name, prediction, reference, (1.0, 1.0), options)
        except ValueError as error:
            logger.warning(f"{name}: left out of the SynthRAD metrics: {error}")
            continue
        result.details["spacing_from"] = SPACING_ASSUMED
        results.append(result)
    return results


def aggregate(per_case, reduce):
    """`reduce` (np.mean, np.std) over cases of each key of `CASE_KEYS`
    that some case has, ignoring non-finite values; NaN when none is."""
    summary = {}
    for key in CASE_KEYS:
        values = np.array([m[key] for m in per_case if key in m], dtype=np.float64)
        if values.size:
            finite = values[np.isfinite(values)]
            summary[key] = float(reduce(finite)) if finite.size else math.nan
    return summary


def synthrad_section(results, options, mask):
    """The `"synthrad"` section of `metrics.json` for a set of cases.

    Args:
        results: `CaseResult`s.
        options: the `HuOptions` they were scored with.
        mask: where the masks came from, in words.
    """
    per_case = [r.metrics for r in results]
    _say_where_wepl_was_left_out(results, options)
    return {
        "n": len(results),
        "settings": options.describe(mask),
        "mean": aggregate(per_case, np.mean),
        "std": aggregate(per_case, np.std),
        "cases": {r.name: {**r.metrics, **r.details} for r in results},
    }


def _say_where_wepl_was_left_out(results, options):
    """A warning naming the cases the automatic WEPL limit left out: the
    table had only dropped its column, and a whole head never had it."""
    if options.wepl is not None:
        return
    left_out = [printable(r.name) for r in results if "wepl_mean_abs_mm" not in r.metrics]
    if left_out:
        logger.warning("WEPL left out of %d case(s) above %s voxels (%s%s), as it takes minutes "
                       "a head; --wepl computes it for every case", len(left_out),
                       f"{options.wepl_max_voxels:,}", ", ".join(left_out[:3]),
                       ", ..." if len(left_out) > 3 else "")


# The printed table's columns: (key, header, format).
TABLE_COLUMNS = (
    ("mae", "MAE", ".1f"), ("me", "ME", ".1f"), ("psnr_2023", "PSNR23", ".2f"),
    ("psnr_2025", "PSNR25", ".2f"), ("ssim_2023", "SSIM23", ".3f"),
    ("ms_ssim_2025", "MSSSIM25", ".3f"), ("mae_air", "MAEair", ".1f"),
    ("mae_soft", "MAEsoft", ".1f"), ("mae_bone", "MAEbone", ".1f"),
    ("dice_bone", "Dice", ".3f"), ("hd95_bone_mm", "HD95mm", ".2f"),
    ("wepl_mean_abs_mm", "WEPLmm", ".2f"), ("gamma_pass_2pct_2mm", "g2/2%", ".1f"),
    ("gamma_pass_1pct_1mm", "g1/1%", ".1f"), ("dose_mae_relative", "doseMAE", ".4f"),
)
# Cases listed one by one in the printed table up to this many.
PRINTED_CASES = 20


def format_synthrad_table(summaries):
    """`{direction: summary}` summaries holding a `"synthrad"` section as a
    plain-text table: each case (up to `PRINTED_CASES`), then the mean."""
    sections = {d: s["synthrad"] for d, s in summaries.items() if s.get("synthrad")}
    if not sections:
        return ""
    columns = [c for c in TABLE_COLUMNS if any(c[0] in s["mean"] for s in sections.values())]
    header = f"{'SynthRAD (HU)':<24}" + "".join(f"{title:>10}" for _, title, _ in columns)
    lines = [header, "-" * len(header)]
    for direction, section in sections.items():
        rows = list(section["cases"].items()) if section["n"] <= PRINTED_CASES else []
        rows.append((f"{direction} mean (n={section['n']})", section["mean"]))
        for label, values in rows:
            cells = "".join(_text_cell(values.get(key), spec) for key, _, spec in columns)
            lines.append(f"{label[:23]:<24}{cells}")
    return "\n".join(lines)


def _text_cell(value, spec):
    if value is None or not math.isfinite(value):
        return f"{'n/a' if value is None or math.isnan(value) else value:>10}"
    return f"{value:>10{spec}}"
