"""Water-equivalent path length (WEPL): how far a synthetic CT would move a
proton beam's range, compared with the reference CT.

Each CT is turned into relative stopping power (RSP, stopping power relative
to water) through a piecewise-linear HU -> RSP calibration curve, and parallel
rays cast in the axial plane at a set of beam angles integrate RSP along each
ray, from where it enters the body to every voxel:

    WEPL(voxel) = sum over the ray of RSP * step (mm),

counting only voxels inside the body mask (outside it RSP is taken as 0, so
the air the beam crosses before the body, or between the arms and the trunk,
adds nothing; air inside the mask adds its own small RSP). WEPL is measured
to the voxel's centre. The sCT and the CT are traced along the same rays with
the same mask, so a WEPL difference is a range error in mm of water.

Method (`wepl_map`): for each angle the masked RSP volume is resampled
(linear interpolation, `scipy.ndimage.affine_transform`) onto a grid rotated
in the axial plane so that the beam runs along its axis 1, with a step of
half the smaller in-plane spacing along the beam (`OVERSAMPLE`) and the
smaller spacing across it; a cumulative sum along the beam (trapezoid rule:
the samples before, plus half the current one, times the step) gives WEPL on
that grid, which is resampled back to the voxels (linear again). The RSP
field integrated is thus the linear interpolant of the voxels, whose
integral across a tissue edge equals that of the voxels themselves. Where
the beam runs along an array axis (0, 90, 180, 270 degrees, equal in-plane
spacing) the samples fall on voxel centres and midpoints and the result is
the exact voxel sum (tests: a water slab to 1e-4 mm). At oblique angles the
resamplings cost at most about 0.06 voxel spacings of water (0.12 mm at
2 mm voxels) right next to a sharp edge and about 0.01 spacings elsewhere
(tests: a 30 mm water slab crossed at 30, 45 and 315 degrees is within
0.2 % of its slanted path past it, within 0.05 mm inside it).
Cost (`wepl_difference`): two linear resamplings per CT and angle of the
body's bounding box, under a second per 512 x 512 slice for both CTs and the
eight default angles on one core; memory a few copies of the volume plus
8 bytes per scored voxel and angle for the pooled percentiles.

Beam angles are in degrees in the axial (H, W) plane of a (D, H, W) volume:
the beam travels along (rows, columns) = (cos a, sin a), so 0 degrees enters
at row 0 and runs down the rows, 90 enters at column 0 and runs along the
columns, 180 enters at the last row and 270 at the last column. For a CT in
the usual DICOM orientation (row 0 anterior, column 0 the patient's right)
0 is an anterior beam and 90 a beam from the patient's right (these are
array directions, not IEC gantry angles).

The default HU -> RSP curve (`DEFAULT_HU_TO_RSP`) is a *typical* single-energy
CT stoichiometric calibration, not your scanner's: its nodes are
representative values for air, lung, adipose tissue, water, muscle, soft
tissue, cortical bone and dense bone of the shape such calibrations take
(Schneider U, Pedroni E, Lomax A, "The calibration of CT Hounsfield units for
radiotherapy treatment planning", Phys Med Biol 41:111-124, 1996; Schneider W,
Bortfeld T, Schlegel W, "Correlation between CT numbers and tissue parameters
needed for Monte Carlo simulations of clinical dose distributions", Phys Med
Biol 45:459-478, 2000), rounded, with water at exactly 0 HU -> 1.0; it is not
a transcription of one paper's table. Range errors of a few percent between
calibrations of different scanners are normal, so for clinical conclusions
load your own scanner's curve with `load_hu_to_rsp`. The WEPL *difference*
between sCT and CT depends on the curve mostly through its slopes.
"""

import math

import numpy as np
from scipy import ndimage

from vaecyclegan.errors import InputError, printable

# HU, RSP nodes of the typical curve (see the module docstring); between
# nodes linear, outside them constant (HU below -1000 is air, above 3000 the
# densest bone).
DEFAULT_HU_TO_RSP = np.array([
    [-1000.0, 0.001],  # air
    [-200.0, 0.800],   # densest lung / lung-soft tissue transition
    [-100.0, 0.950],   # adipose tissue
    [0.0, 1.000],      # water
    [40.0, 1.040],     # muscle
    [100.0, 1.090],    # dense soft tissue, start of the bone line
    [1300.0, 1.660],   # cortical bone
    [3000.0, 2.500],   # densest bone, end of the curve
])

DEFAULT_ANGLES = tuple(range(0, 360, 45))
# Voxels whose reference WEPL is below this (mm) are left out of the
# summary: right under the surface the percentage difference is meaningless.
WEPL_FLOOR_MM = 10.0
# Samples along the beam per in-plane voxel spacing (see the module docstring).
OVERSAMPLE = 2
# Rotated-grid samples resampled at once (memory: about 12 bytes each).
_GRID_SAMPLES = 2**24


class CurveError(InputError, ValueError):
    """A bad HU -> RSP curve file: one line naming the file and the problem
    (an `InputError` for the command lines, a `ValueError` for callers)."""


def load_hu_to_rsp(path):
    """Reads a scanner's HU -> RSP calibration curve.

    The file holds two columns, HU and RSP, one point a line, separated by a
    comma, a semicolon or white space; lines starting with `#` and a first
    line that is not numbers (a header such as `hu,rsp`) are skipped. HU must
    rise strictly from line to line, every value must be finite, RSP >= 0,
    and there must be at least two points.

    Args:
        path: the curve file.

    Returns:
        A float64 array of shape (N, 2): HU, RSP; pass it as `curve`.

    Raises:
        CurveError (a `ValueError` and an `InputError`): one line, naming the file.

    Example:
        curve.csv holding `hu,rsp`, `-1000,0.001`, `0,1.0`, `3000,2.5` gives
        `load_hu_to_rsp("curve.csv")[:, 1]` == `[0.001, 1.0, 2.5]`.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CurveError(path, f"cannot read the HU -> RSP curve ({error})") from None
    points, header = [], False
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.replace(",", " ").replace(";", " ").split()
        try:
            values = [float(field) for field in fields]
        except ValueError:
            if not (points or header) and not any(ch.isdigit() for ch in text):
                header = True  # one header line; a second is not a curve's
                continue
            raise CurveError(path, f"line {number} is not two numbers: "
                                   f"{printable(text)[:60]}") from None
        if len(values) != 2:
            raise CurveError(path, f"line {number} has {len(values)} values, "
                                   "expected two (HU, RSP)")
        points.append(values)
    if not points:
        raise CurveError(path, "holds no HU, RSP point (two numbers a line, e.g. -1000,0.001)")
    try:
        return _checked_curve(np.array(points, dtype=np.float64).reshape(-1, 2))
    except ValueError as error:
        raise CurveError(path, str(error)) from None


def _checked_curve(curve):
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 2 or curve.shape[1] != 2:
        raise ValueError(f"an HU -> RSP curve is an (N, 2) array of HU, RSP, "
                         f"not shape {curve.shape}")
    if curve.shape[0] < 2:
        raise ValueError(f"the HU -> RSP curve needs at least two points, it has "
                         f"{curve.shape[0]}")
    if not np.all(np.isfinite(curve)):
        raise ValueError("the HU -> RSP curve has a value that is not a finite number")
    steps = np.diff(curve[:, 0])
    if np.any(steps <= 0):
        at = int(np.argmax(steps <= 0)) + 1
        raise ValueError(f"HU must rise strictly from point to point: point {at + 1} "
                         f"({curve[at, 0]:g} HU) follows {curve[at - 1, 0]:g} HU")
    if np.any(curve[:, 1] < 0):
        at = int(np.argmax(curve[:, 1] < 0))
        raise ValueError(f"RSP must not be negative: {curve[at, 1]:g} at {curve[at, 0]:g} HU")
    return curve


def hu_to_rsp(hu, curve=None):
    """Relative stopping power of each voxel.

    Args:
        hu: array of Hounsfield units.
        curve: (N, 2) array of HU, RSP nodes (`load_hu_to_rsp`), default
            `DEFAULT_HU_TO_RSP`; linear between nodes, constant beyond the
            first and the last.

    Returns:
        float32 array of RSP, the shape of `hu`.

    Example:
        `hu_to_rsp([-1000, 0, 40])` is `[0.001, 1.0, 1.04]`.
    """
    curve = DEFAULT_HU_TO_RSP if curve is None else _checked_curve(curve)
    hu = np.asarray(hu, dtype=np.float64)
    return np.interp(hu, curve[:, 0], curve[:, 1]).astype(np.float32)


def _checked_spacing(spacing):
    try:
        spacing = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be three numbers (mm), not {spacing!r}") from None
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive numbers (D, H, W in mm), "
                         f"not {spacing}")
    return spacing


def _checked_volume(name, volume, shape=None):
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"{name} must be a 3-D (D, H, W) array, not {volume.ndim}-D")
    if shape is not None and volume.shape != shape:
        raise ValueError(f"{name} has shape {volume.shape}, the reference CT {shape}")
    return volume


def _rotated_grid(shape, spacing, angle, oversample):
    """The affine maps between the volume and a grid whose axis 1 runs along
    the beam: (matrix, offset, grid shape) for sampling the volume onto the
    grid, (matrix, offset) for sampling the grid back, and the step along
    the beam in mm."""
    _, dy, dx = spacing
    across = min(dy, dx)
    along = across / oversample
    radians = math.radians(angle)
    # Snap so that 90, 180, 270 give exact zeros (the grid then hits voxel centres).
    cos, sin = (round(math.cos(radians), 12) + 0.0, round(math.sin(radians), 12) + 0.0)
    # Rotation centre: a voxel centre, in mm.
    cy, cx = (shape[1] // 2) * dy, (shape[2] // 2) * dx
    # Half extents of the grid in samples: half the volume's extent along and
    # across the beam plus a margin of three samples (the centre is up to half
    # a voxel off), so the first samples along the beam are outside.
    height, width = shape[1] * dy, shape[2] * dx
    ha = int(math.ceil((height * abs(cos) + width * abs(sin)) / 2 / along)) + 3
    hb = int(math.ceil((height * abs(sin) + width * abs(cos)) / 2 / across)) + 3
    # Grid index (a, b) is the point c + (a - ha) * along * u + (b - hb) * across * v,
    # u = (cos, sin) along the beam, v = (-sin, cos) across it; volume index = point / spacing.
    forward = np.array([
        [1.0, 0.0, 0.0],
        [0.0, along * cos / dy, -across * sin / dy],
        [0.0, along * sin / dx, across * cos / dx],
    ])
    forward_offset = np.array([
        0.0,
        (cy - ha * along * cos + hb * across * sin) / dy,
        (cx - ha * along * sin - hb * across * cos) / dx,
    ])
    back = np.array([
        [1.0, 0.0, 0.0],
        [0.0, dy * cos / along, dx * sin / along],
        [0.0, -dy * sin / across, dx * cos / across],
    ])
    back_offset = np.array([
        0.0,
        ha - (cy * cos + cx * sin) / along,
        hb - (-cy * sin + cx * cos) / across,
    ])
    grid_shape = (shape[0], 2 * ha + 1, 2 * hb + 1)
    return (forward, forward_offset, grid_shape), (back, back_offset), along


def wepl_map(rsp, body_mask, spacing, angle):
    """WEPL (mm of water) of every voxel for one beam angle.

    Args:
        rsp: (D, H, W) relative stopping power (`hu_to_rsp`).
        body_mask: (D, H, W) boolean body mask; RSP outside it counts as 0.
        spacing: voxel size (D, H, W) in mm.
        angle: beam angle in degrees in the axial plane (see the module
            docstring: 0 enters at row 0 and runs down the rows, 90 enters at
            column 0).

    Returns:
        float32 (D, H, W) WEPL to each voxel's centre, in mm (0 far outside
        the body; defined everywhere, read it inside the mask).

    Example:
        A body of 10 rows of water (RSP 1) at 2 mm spacing, beam at 0 degrees:
        the last row's WEPL is 19 mm (9.5 rows of water).
    """
    spacing = _checked_spacing(spacing)
    rsp = _checked_volume("rsp", rsp)
    body_mask = _checked_volume("body_mask", body_mask, rsp.shape).astype(bool)
    if not math.isfinite(float(angle)):
        raise ValueError(f"beam angle must be a finite number of degrees, not {angle!r}")
    masked = np.where(body_mask, rsp, 0.0).astype(np.float32)
    (forward, forward_offset, grid_shape), (back, back_offset), step = _rotated_grid(
        rsp.shape, spacing, float(angle), OVERSAMPLE)
    result = np.empty(rsp.shape, dtype=np.float32)
    # Slices in chunks (the rotation is in-plane): the rotated grid of a
    # 512 x 512 slice holds about a million samples.
    chunk = max(1, _GRID_SAMPLES // (grid_shape[1] * grid_shape[2]))
    for start in range(0, rsp.shape[0], chunk):
        part = masked[start:start + chunk]
        on_grid = ndimage.affine_transform(
            part, forward, offset=forward_offset, output_shape=(len(part),) + grid_shape[1:],
            order=1, mode="grid-constant", cval=0.0, prefilter=False, output=np.float32)
        wepl = np.cumsum(on_grid, axis=1, dtype=np.float64)
        wepl -= 0.5 * on_grid
        wepl *= step
        result[start:start + chunk] = ndimage.affine_transform(
            wepl, back, offset=back_offset, output_shape=part.shape, order=1,
            mode="nearest", prefilter=False, output=np.float32)
    return result


def _stats(absolute, percent, signed_sum):
    """Statistics of |difference| (mm) and |difference| / reference (%),
    float32 arrays that are reordered in place."""
    if absolute.size == 0:
        nan = float("nan")
        return {"mean_abs_mm": nan, "p95_abs_mm": nan, "mean_abs_pct": nan,
                "p95_abs_pct": nan, "mean_mm": nan, "n": 0}
    return {
        "mean_abs_mm": float(absolute.mean(dtype=np.float64)),
        "p95_abs_mm": float(np.percentile(absolute, 95, overwrite_input=True)),
        "mean_abs_pct": float(percent.mean(dtype=np.float64)),
        "p95_abs_pct": float(np.percentile(percent, 95, overwrite_input=True)),
        "mean_mm": float(signed_sum / absolute.size),
        "n": int(absolute.size),
    }


def wepl_difference(sct_hu, ct_hu, body_mask, spacing, angles=DEFAULT_ANGLES,
                    target_mask=None, curve=None, floor_mm=WEPL_FLOOR_MM):
    """WEPL of the synthetic CT against the reference CT, over a region.

    Both CTs are converted with the same curve and traced along the same rays
    with the same body mask; differences are sCT minus CT.

    Args:
        sct_hu, ct_hu: (D, H, W) arrays in HU, same shape.
        body_mask: (D, H, W) boolean body mask (rays start where they enter it).
        spacing: voxel size (D, H, W) in mm.
        angles: beam angles in degrees (default 0, 45, ..., 315).
        target_mask: optional (D, H, W) boolean region to score (only its
            voxels inside the body count); default the whole body mask.
        curve: (N, 2) HU, RSP nodes (`load_hu_to_rsp`); default the typical
            curve `DEFAULT_HU_TO_RSP`.
        floor_mm: voxels whose reference WEPL is below this are left out of
            the statistics (default 10 mm).

    Returns:
        `(summary, difference_map)`. `summary` holds `angles_deg`, `floor_mm`,
        `curve` ("default" or "custom"), `map` (what the map shows),
        `per_angle` (a list of dicts, one per angle, with `angle_deg` and the
        statistics below) and `pooled` (the statistics over every voxel and
        angle together). Statistics: `mean_abs_mm`, `p95_abs_mm` (mean and
        95th percentile of |WEPL_sCT - WEPL_CT| in mm), `mean_abs_pct`,
        `p95_abs_pct` (the same as a percentage of the reference WEPL),
        `mean_mm` (signed mean: a positive value means the sCT stops the beam
        earlier) and `n` (voxels counted), all over the region's voxels whose
        reference WEPL is at least `floor_mm`; NaN with `n` 0 if none is.
        `difference_map` is a float32 (D, H, W) array: at each region voxel
        the largest |WEPL difference| over the angles (mm, every depth
        included), 0 elsewhere.

    Example:
        A +100 HU error over 50 mm of water (default curve: RSP 1.09 instead
        of 1.0) gives about 4.5 mm (9 %) at the far side for a beam crossing it:
        `summary, diff = wepl_difference(ct + 100 * inside, ct, body, (2, 1, 1))`.
    """
    spacing = _checked_spacing(spacing)
    ct_hu = _checked_volume("ct_hu", ct_hu)
    sct_hu = _checked_volume("sct_hu", sct_hu, ct_hu.shape)
    body = _checked_volume("body_mask", body_mask, ct_hu.shape).astype(bool)
    for name, volume in (("sct_hu", sct_hu), ("ct_hu", ct_hu)):
        if not np.all(np.isfinite(volume)):
            raise ValueError(f"{name} has a voxel that is not a finite number")
    region = body
    if target_mask is not None:
        region = body & _checked_volume("target_mask", target_mask, ct_hu.shape).astype(bool)
    if not region.any():
        raise ValueError("the region to score has no voxel inside the body mask")
    angles = [float(a) for a in np.atleast_1d(np.asarray(angles, dtype=np.float64))]
    if not angles or not all(math.isfinite(a) for a in angles):
        raise ValueError(f"angles must be one or more finite numbers of degrees, not {angles}")
    floor_mm = float(floor_mm)
    curve = None if curve is None else _checked_curve(curve)
    # Only the body's bounding box (and one voxel around it) matters: RSP
    # outside the body counts as 0.
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(body))
    rsp_sct = hu_to_rsp(sct_hu[box], curve)
    rsp_ct = hu_to_rsp(ct_hu[box], curve)
    body, region = body[box], region[box]

    difference_map = np.zeros(ct_hu.shape, dtype=np.float32)
    map_box = difference_map[box]
    per_angle, pooled_abs, pooled_pct, pooled_sum = [], [], [], 0.0
    for angle in angles:
        reference = wepl_map(rsp_ct, body, spacing, angle)[region]
        difference = wepl_map(rsp_sct, body, spacing, angle)[region]
        difference -= reference
        absolute = np.abs(difference)
        map_box[region] = np.maximum(map_box[region], absolute)
        kept = reference >= floor_mm
        absolute, signed_sum = absolute[kept], float(difference[kept].sum(dtype=np.float64))
        percent = absolute / reference[kept]
        percent *= 100.0
        pooled_abs.append(absolute.copy())
        pooled_pct.append(percent.copy())
        pooled_sum += signed_sum
        per_angle.append({"angle_deg": angle, **_stats(absolute, percent, signed_sum)})
    summary = {
        "angles_deg": angles,
        "floor_mm": floor_mm,
        "curve": "default" if curve is None else "custom",
        "map": "max over angles of |WEPL_sCT - WEPL_CT| (mm)",
        "per_angle": per_angle,
        "pooled": _stats(np.concatenate(pooled_abs), np.concatenate(pooled_pct), pooled_sum),
    }
    return summary, difference_map
