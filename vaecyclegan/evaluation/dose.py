"""Dose computed on the synthetic CT against dose computed on the reference
CT (same plan, same grid): gamma pass rates, the SynthRAD dose MAE above
90 % of the prescription, and readers for the dose grids.

Gamma (`gamma_pass_rates`) goes through `pymedphys.gamma` (pymedphys 0.41,
its scipy interpolation, so numba is not needed): global normalisation to
the reference's maximum, reference points below 10 % of it left out, at
2 %/2 mm and 1 %/1 mm; the CT's dose is the reference, the sCT's dose the
evaluated grid that is searched. Only the pass rate (percentage of the
reference points computed with gamma <= 1) is reported, so the search is cut
short where that is decided: `max_gamma` 1.1 (no search beyond 1.1 times the
distance criterion; larger gammas are reported as 1.1, a fail either way)
and `skip_once_passed` (a point stops at the first gamma below 1); these two
change no pass rate and save 3 to 6 times the time. The search step stays
pymedphys' default, a tenth of the distance criterion (`interp_fraction` 10,
as Low and Dempsey recommend; a coarser step misses passing points: 5 cost
0.5 % of pass rate on a test plan, 20 gained 0.3 % at 2 %/2 mm for four
times the time). At most 20 000 reference points are computed, drawn at
random with a fixed seed (`random_subset`): at a 95 % pass rate that is a
sampling error of 0.15 % (one standard deviation). On a 100 x 100 x 50 grid
(190 000 points above 10 %) both criteria take about 1.5 s on one core
(`random_subset=None`: about 15 s).

Dose MAE (`dose_mae`) as SynthRAD 2023 computes it (`mae_dose` in the
challenge's metrics repository, SynthRAD2023/metrics,
functions/dose_metrics.py, called with threshold 0.9): over the voxels whose
*reference* dose is at least 90 % of the prescribed dose, the mean of
|D_sCT - D_CT| divided by the prescribed dose (a fraction; SynthRAD 2023
used 2 Gy for brain and 3 Gy for pelvis plans, `SYNTHRAD2023_PRESCRIPTION_GY`).
Pass the plan's prescription; without one the reference's 98th-percentile
dose over the voxels at or above 10 % of its maximum stands in for it (in a
plan whose target receives at least its prescription this lands near the
prescription; over the whole grid, mostly low dose, it would not).

Dose grids (`read_dose`): DICOM RTDOSE (pydicom; DoseGridScaling required,
DoseUnits GY, axial orientation, z from GridFrameOffsetVector, x and y from
ImagePositionPatient and PixelSpacing) and NIfTI (nibabel; values taken as
Gy, axes from the affine, which must not rotate). Both are returned as a
float32 (z, y, x) array in Gy and its three axes in mm in DICOM patient
coordinates (NIfTI's RAS x and y are negated into DICOM's LPS), each axis
increasing. Grids of the sCT and the CT must match (same shape, axes within
0.01 mm); they are not resampled, a mismatch is refused with one line.
"""

import logging
import math
import os

import numpy as np

from vaecyclegan.errors import InputError

GAMMA_CRITERIA = ((2.0, 2.0), (1.0, 1.0))  # (dose %, distance mm)
LOWER_DOSE_CUTOFF_PERCENT = 10.0
MAX_GAMMA = 1.1
INTERP_FRACTION = 10
RANDOM_SUBSET = 20_000
GAMMA_SEED = 0
MAE_THRESHOLD = 0.9  # of the prescription
PRESCRIPTION_PERCENTILE = 98.0
SYNTHRAD2023_PRESCRIPTION_GY = {"brain": 2.0, "pelvis": 3.0}
GRID_TOLERANCE_MM = 0.01

_AXIAL = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def criterion_name(dose_percent, distance_mm):
    """The key of a gamma criterion in the results: `2%/2mm`."""
    return f"{dose_percent:g}%/{distance_mm:g}mm"


def _checked_axes(axes, shape):
    try:
        axes = tuple(np.asarray(axis, dtype=np.float64).ravel() for axis in axes)
    except (TypeError, ValueError):
        raise ValueError("axes must be one array of mm coordinates per dose "
                         "dimension") from None
    if tuple(axis.size for axis in axes) != tuple(shape):
        raise ValueError(f"axes of lengths {tuple(a.size for a in axes)} do not match "
                         f"the dose grid's shape {tuple(shape)}")
    for name, axis in zip("zyx"[-len(axes):], axes):
        if not np.all(np.isfinite(axis)):
            raise ValueError(f"the {name} axis has a coordinate that is not finite")
        if axis.size > 1 and np.any(np.diff(axis) <= 0):
            raise ValueError(f"the {name} axis must increase strictly")
    return axes


def _checked_doses(dose_eval, dose_ref, axes):
    dose_eval = np.asarray(dose_eval, dtype=np.float64)
    dose_ref = np.asarray(dose_ref, dtype=np.float64)
    if dose_ref.ndim not in (1, 2, 3):
        raise ValueError(f"a dose grid is 1-, 2- or 3-D, not {dose_ref.ndim}-D")
    if dose_eval.shape != dose_ref.shape:
        raise ValueError(f"the evaluated dose has shape {dose_eval.shape}, the reference "
                         f"{dose_ref.shape}: grids of different geometry are not compared")
    for name, dose in (("evaluated", dose_eval), ("reference", dose_ref)):
        if not np.all(np.isfinite(dose)):
            raise ValueError(f"the {name} dose has a value that is not a finite number")
    axes = None if axes is None else _checked_axes(axes, dose_ref.shape)
    return dose_eval, dose_ref, axes


class _QuietRoot:
    """pymedphys logs through the root logger's module functions, which
    install a stderr handler on a root logger that has none; a NullHandler
    for the call's duration keeps the root logger as it was."""

    def __enter__(self):
        root = logging.getLogger()
        self.handler = None if root.handlers else logging.NullHandler()
        if self.handler is not None:
            root.addHandler(self.handler)

    def __exit__(self, *exc):
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)


def gamma_pass_rates(dose_eval, dose_ref, axes, criteria=GAMMA_CRITERIA,
                     lower_percent_cutoff=LOWER_DOSE_CUTOFF_PERCENT, max_gamma=MAX_GAMMA,
                     interp_fraction=INTERP_FRACTION, random_subset=RANDOM_SUBSET,
                     seed=GAMMA_SEED):
    """Gamma pass rates of an evaluated dose grid against a reference on the
    same grid, through `pymedphys.gamma`, global normalisation to the
    reference's maximum.

    Args:
        dose_eval: dose on the synthetic CT (Gy), a 1- to 3-D array.
        dose_ref: dose on the reference CT (Gy), same shape.
        axes: one increasing array of mm coordinates per dimension, e.g.
            `(z, y, x)` from `read_dose`.
        criteria: (dose %, distance mm) pairs; default 2 %/2 mm and 1 %/1 mm.
        lower_percent_cutoff: reference points below this percentage of the
            reference maximum are left out (default 10).
        max_gamma, interp_fraction, random_subset: the search settings
            (module docstring); `random_subset=None` computes every point.
        seed: the seed of the random subset (the caller's numpy global random
            state is restored afterwards).

    Returns:
        `{"2%/2mm": {"pass_rate_percent": float, "n_points": int}, ...}`:
        the percentage of the computed reference points with gamma <= 1, and
        how many were computed (NaN and 0 if none).

    Example:
        `gamma_pass_rates(dose, dose, (z, y, x))["2%/2mm"]["pass_rate_percent"]`
        is 100.0 for any dose grid with a positive maximum.
    """
    dose_eval, dose_ref, axes = _checked_doses(dose_eval, dose_ref, axes)
    maximum = float(dose_ref.max()) if dose_ref.size else 0.0
    if maximum <= 0:
        raise ValueError("the reference dose has no positive value to normalise gamma to")
    try:
        import pymedphys
    except ImportError:
        raise ImportError("gamma needs pymedphys: pip install pymedphys==0.41.0") from None

    results = {}
    for dose_percent, distance_mm in criteria:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            with _QuietRoot():
                gamma = pymedphys.gamma(
                    axes, dose_ref, axes, dose_eval, dose_percent, distance_mm,
                    lower_percent_dose_cutoff=lower_percent_cutoff,
                    interp_fraction=interp_fraction, max_gamma=max_gamma,
                    local_gamma=False, global_normalisation=maximum,
                    skip_once_passed=True, random_subset=random_subset,
                    interp_algo="scipy",
                )
        finally:
            np.random.set_state(state)
        computed = gamma[np.isfinite(gamma)]
        results[criterion_name(dose_percent, distance_mm)] = {
            "pass_rate_percent": (float(100.0 * np.mean(computed <= 1.0))
                                  if computed.size else float("nan")),
            "n_points": int(computed.size),
        }
    return results


def default_prescription(dose_ref, lower_percent_cutoff=LOWER_DOSE_CUTOFF_PERCENT,
                         percentile=PRESCRIPTION_PERCENTILE):
    """The stand-in prescription (Gy) when none is given: the reference's
    98th-percentile dose over its voxels at or above 10 % of its maximum.

    Args:
        dose_ref: the reference dose grid (Gy).
        lower_percent_cutoff, percentile: the two percentages above.

    Example:
        A grid of 90 voxels at 2 Gy and 10 at 2.1 Gy: 2.1 Gy.
    """
    dose_ref = np.asarray(dose_ref, dtype=np.float64)
    maximum = float(dose_ref.max()) if dose_ref.size else 0.0
    if maximum <= 0:
        raise ValueError("the reference dose has no positive value")
    return float(np.percentile(dose_ref[dose_ref >= maximum * lower_percent_cutoff / 100],
                               percentile))


def dose_mae(dose_eval, dose_ref, prescription=None, threshold=MAE_THRESHOLD):
    """SynthRAD's dose MAE: over the voxels whose reference dose is at least
    `threshold` times the prescription, the mean |dose_eval - dose_ref|.

    Args:
        dose_eval: dose on the synthetic CT (Gy).
        dose_ref: dose on the reference CT (Gy), same shape.
        prescription: prescribed dose in Gy (for SynthRAD's numbers, the
            dose the plan's grid holds for it: 2 Gy brain, 3 Gy pelvis in
            2023); default `default_prescription(dose_ref)`.
        threshold: fraction of the prescription (default 0.9).

    Returns:
        `{"prescription_gy", "prescription_from" ("given" or "reference
        98th percentile"), "threshold_gy", "n_voxels", "mae_gy", "mae_relative"}`:
        `mae_relative` is `mae_gy / prescription_gy`, SynthRAD's number (a
        fraction; x100 for percent). NaN with `n_voxels` 0 if no voxel is
        above the threshold.

    Example:
        Reference 2 Gy in a target and 1 Gy elsewhere, the sCT's dose 0.1 Gy
        higher in the target: `dose_mae(sct, ct, prescription=2.0)` gives
        `mae_gy` 0.1 and `mae_relative` 0.05.
    """
    dose_eval, dose_ref, _ = _checked_doses(dose_eval, dose_ref, None)
    if prescription is None:
        prescription, source = default_prescription(dose_ref), "reference 98th percentile"
    else:
        prescription, source = float(prescription), "given"
    if not (math.isfinite(prescription) and prescription > 0):
        raise ValueError(f"the prescription must be a positive number of Gy, not {prescription}")
    threshold_gy = float(threshold) * prescription
    inside = dose_ref >= threshold_gy
    n = int(inside.sum())
    mae = float(np.mean(np.abs(dose_eval[inside] - dose_ref[inside]))) if n else float("nan")
    return {
        "prescription_gy": prescription,
        "prescription_from": source,
        "threshold_gy": threshold_gy,
        "n_voxels": n,
        "mae_gy": mae,
        "mae_relative": mae / prescription,
    }


def compare_doses(dose_sct, dose_ct, axes, prescription=None, **gamma_settings):
    """Gamma pass rates and dose MAE of the sCT's dose against the CT's.

    Args:
        dose_sct, dose_ct: dose grids (Gy) of the same shape.
        axes: their common axes in mm (`read_dose`).
        prescription: prescribed dose in Gy (see `dose_mae`).
        gamma_settings: passed on to `gamma_pass_rates`.

    Returns:
        `{"gamma": gamma_pass_rates(...), "mae": dose_mae(...)}`.

    Example:
        `compare_doses(d_sct, d_ct, axes)["gamma"]["2%/2mm"]["pass_rate_percent"]`
    """
    return {
        "gamma": gamma_pass_rates(dose_sct, dose_ct, axes, **gamma_settings),
        "mae": dose_mae(dose_sct, dose_ct, prescription),
    }


def compare_dose_files(sct_path, ct_path, prescription=None, **gamma_settings):
    """`compare_doses` on two dose files (RTDOSE or NIfTI, `read_dose`).

    Args:
        sct_path: dose computed on the synthetic CT.
        ct_path: dose computed on the reference CT (same plan, same grid).
        prescription, gamma_settings: as `compare_doses`.

    Raises:
        InputError: a file cannot be read, or the grids differ (one line,
            naming the sCT's file).

    Example:
        `compare_dose_files("sct_dose.dcm", "ct_dose.dcm", prescription=60.0)`
    """
    dose_ct, axes_ct = read_dose(ct_path)
    dose_sct, axes_sct = read_dose(sct_path)
    problem = grid_mismatch(axes_sct, axes_ct)
    if problem:
        raise InputError(sct_path, f"dose grid differs from {os.fspath(ct_path)}'s: {problem}")
    return compare_doses(dose_sct, dose_ct, axes_ct, prescription, **gamma_settings)


def grid_mismatch(axes_a, axes_b, tolerance_mm=GRID_TOLERANCE_MM):
    """How two grids' axes differ, in words, or "" when they match.

    Args:
        axes_a, axes_b: `(z, y, x)` axes in mm.
        tolerance_mm: largest difference of a coordinate taken as equal.

    Example:
        `grid_mismatch((z, y, x), (z, y, x + 1.0))` is
        `"x axes differ by up to 1 mm"`.
    """
    shape_a = tuple(len(a) for a in axes_a)
    shape_b = tuple(len(b) for b in axes_b)
    if shape_a != shape_b:
        return f"{'x'.join(map(str, shape_a))} voxels against {'x'.join(map(str, shape_b))}"
    for name, a, b in zip("zyx"[-len(axes_a):], axes_a, axes_b):
        worst = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if len(a) else 0.0
        if worst > tolerance_mm:
            return f"{name} axes differ by up to {worst:.3g} mm"
    return ""


def read_dose(path):
    """A dose grid from a DICOM RTDOSE or a NIfTI file (`.nii`, `.nii.gz`).

    Args:
        path: the file.

    Returns:
        `(dose, (z, y, x))`: float32 array (z, y, x) in Gy and its axes in mm
        (DICOM patient coordinates, each increasing).

    Raises:
        InputError: one line naming the file, for a file that cannot be read,
            an RTDOSE without DoseGridScaling, dose units other than GY, a
            non-axial or rotated grid, a 4-D NIfTI, non-finite values.

    Example:
        `dose, (z, y, x) = read_dose("RD.plan.dcm")`; `dose.shape == (len(z), len(y), len(x))`.
    """
    name = os.fspath(path)
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    if not os.path.isfile(path):
        raise InputError(path, "no such dose file")
    if name.lower().endswith((".nii", ".nii.gz")):
        dose, axes = _read_nifti(path)
    else:
        dose, axes = _read_rtdose(path)
    if not np.all(np.isfinite(dose)):
        raise InputError(path, "the dose grid has a value that is not a finite number")
    return _increasing(dose, axes)


def _increasing(dose, axes):
    axes = list(axes)
    for dim, axis in enumerate(axes):
        if axis.size > 1 and axis[1] < axis[0]:
            axes[dim] = axis[::-1].copy()
            dose = np.flip(dose, axis=dim)
    return np.ascontiguousarray(dose, dtype=np.float32), tuple(axes)


def _read_rtdose(path):
    # The image reader's: its errors as one line (a deflated file's zlib
    # error had escaped), and a deflated data set counted before pydicom
    # inflates it whole (a bomb was inflated before it was refused).
    from vaecyclegan.io.dicom_format import read_header

    ds = read_header(path, pixels=True)
    modality = str(ds.get("Modality", ""))
    if modality != "RTDOSE":
        raise InputError(path, f"not an RT dose (Modality {modality or 'missing'})")
    if ds.get("DoseGridScaling") in (None, ""):
        raise InputError(path, "RTDOSE without DoseGridScaling: its pixel values cannot "
                               "be turned into Gy")
    units = str(ds.get("DoseUnits") or "GY").upper()
    if units != "GY":
        raise InputError(path, f"dose units {units}, not GY: absolute dose in Gy is needed")
    for keyword in ("ImagePositionPatient", "PixelSpacing", "PixelData", "Rows", "Columns"):
        if keyword not in ds:
            raise InputError(path, f"RTDOSE without {keyword}")
    try:
        scaling = float(ds.DoseGridScaling)
        orientation = np.asarray(ds.get("ImageOrientationPatient", _AXIAL), dtype=np.float64)
        x0, y0, z0 = (float(v) for v in ds.ImagePositionPatient)
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        rows, columns = int(ds.Rows), int(ds.Columns)
        offsets = (np.asarray(ds.GridFrameOffsetVector, dtype=np.float64).ravel()
                   if "GridFrameOffsetVector" in ds else None)
    except (TypeError, ValueError) as error:
        raise InputError(path, f"malformed RTDOSE geometry or scaling ({error})") from None
    if not (math.isfinite(scaling) and scaling > 0):
        raise InputError(path, f"DoseGridScaling {scaling:g} is not a positive number")
    if orientation.shape != (6,) or not np.allclose(orientation, _AXIAL, atol=1e-4):
        raise InputError(path, "dose grid not in the axial orientation (ImageOrientationPatient "
                               f"{[round(v, 4) for v in orientation.tolist()]}); not supported")
    if not all(math.isfinite(v) for v in (x0, y0, z0)) or not (
            row_spacing > 0 and column_spacing > 0):
        raise InputError(path, "ImagePositionPatient or PixelSpacing is not usable")
    z = _frame_positions(path, z0, frames, offsets)
    try:
        pixels = np.asarray(ds.pixel_array).reshape(frames, rows, columns)
    except Exception as error:  # any decoder failure is the file's
        raise InputError(path, f"dose pixel data cannot be decoded: {error}".splitlines()[0]
                         ) from None
    dose = (pixels.astype(np.float64) * scaling).astype(np.float32)
    y = y0 + row_spacing * np.arange(rows)
    x = x0 + column_spacing * np.arange(columns)
    return dose, (z, y, x)


def _frame_positions(path, z0, frames, offsets):
    """The z of each frame of an RTDOSE, from GridFrameOffsetVector (relative
    to ImagePositionPatient, the usual form, or absolute)."""
    if frames > 1 and offsets is None:
        raise InputError(path, f"multi-frame RTDOSE ({frames} frames) without "
                               "GridFrameOffsetVector")
    if offsets is None:
        z = np.array([z0])
    elif offsets.size != frames:
        raise InputError(path, f"GridFrameOffsetVector has {offsets.size} values for "
                               f"{frames} frames")
    elif abs(offsets[0]) <= GRID_TOLERANCE_MM:
        z = z0 + offsets
    elif abs(offsets[0] - z0) <= GRID_TOLERANCE_MM:
        z = offsets
    else:
        raise InputError(path, f"GridFrameOffsetVector starts at {offsets[0]:g}, neither "
                               f"0 nor ImagePositionPatient's z {z0:g}")
    steps = np.diff(z)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise InputError(path, "GridFrameOffsetVector is not strictly monotonic")
    return z


def _read_nifti(path):
    import nibabel

    try:
        image = nibabel.load(path)
        shape = image.shape
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            raise InputError(path, f"a dose grid is 3-D, this NIfTI is "
                                   f"{'x'.join(map(str, image.shape))}")
        data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)
    except InputError:
        raise
    except Exception as error:  # nibabel raises many types for a bad file
        raise InputError(path, f"not a readable NIfTI file ({type(error).__name__})") from None
    affine = np.asarray(image.affine, dtype=np.float64)
    linear = affine[:3, :3]
    steps = np.diag(linear)
    off_diagonal = linear - np.diag(steps)
    if np.any(steps == 0) or np.max(np.abs(off_diagonal)) > 1e-6 * np.max(np.abs(steps)):
        raise InputError(path, "the NIfTI affine rotates or shears the grid; only grids "
                               "along the axes are supported")
    # RAS (NIfTI) to LPS (DICOM): x and y change sign.
    x = -(affine[0, 3] + steps[0] * np.arange(shape[0]))
    y = -(affine[1, 3] + steps[1] * np.arange(shape[1]))
    z = affine[2, 3] + steps[2] * np.arange(shape[2])
    return np.transpose(data, (2, 1, 0)), (z, y, x)
