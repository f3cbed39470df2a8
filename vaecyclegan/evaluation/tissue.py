"""Errors per tissue class and bone geometry of a synthetic CT, in HU and mm.

Tissue classes are read off the reference CT, inside the mask:

- air: reference below -200 HU;
- soft tissue: reference from -200 to 200 HU, both included;
- bone: reference above 200 HU.

`tissue_errors` gives, per class, the mean absolute error (MAE) and the mean
error (bias: prediction minus reference) in HU; a class with no voxel gives
NaN. Thresholds are configurable. This breaks SynthRAD's MAE down by
tissue (the project's definition); SynthRAD's own code scores the mask as
a whole (https://github.com/SynthRAD2023/metrics, functions/image_metrics.py).

`bone_overlap` thresholds bone (above 200 HU, configurable) on the reference
and on the prediction, each inside the mask, and compares the two:

- Dice: 2 |A and B| / (|A| + |B|).
- HD95, in mm: surface voxels are the voxels of a segmentation with a face
  neighbour outside it (the array's border counts as outside), i.e. the
  segmentation minus its erosion, as MONAI's `get_mask_edges` defines them.
  Each surface voxel of one segmentation gets the Euclidean distance, with
  the voxel spacing, from its centre to the nearest surface voxel centre of
  the other. The default convention ("max") takes the 95th percentile of
  each direction's distances and the larger of the two: MONAI's
  `compute_hausdorff_distance(percentile=95)`, which the SynthRAD2025
  evaluation uses for its segmentation HD95
  (https://github.com/SynthRAD2025/evaluation, segmentation_metrics.py).
  `convention="union"` takes the 95th percentile of both directions'
  distances pooled. Percentiles interpolate linearly (`np.percentile`).
- Empty cases: both segmentations empty, Dice 1 and HD95 0; one empty,
  Dice 0 and HD95 inf.

Nearest surface voxels are found with a k-d tree over the surface voxels'
coordinates in mm, which gives the same distances as `scipy.ndimage.
distance_transform_edt(sampling=spacing)` read at the surface voxels while
holding only the surfaces in memory.

Windowed CT (8-bit images, or HU clipped to the weights' CT window) cannot
show HU beyond the window: a brain window (-160..240 HU) draws all air at
-160. `tissue_thresholds_in_window` moves each threshold into the window,
2 % of its width (`WINDOW_MARGIN`) from either end; in a window whose top
lies below `BONE_SATURATION_HU` bone is its saturated band
(`windowed_thresholds`); `windowed_scores` gives the per-tissue MAE and
bone Dice of one windowed image with them.
"""

import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from vaecyclegan.evaluation.body_mask import check_mask, check_pair, check_spacing

TISSUE_THRESHOLDS_HU = (-200.0, 200.0)
BONE_THRESHOLD_HU = 200.0
TISSUE_CLASSES = ("air", "soft", "bone")
HD95_CONVENTIONS = ("max", "union")
# Thresholds keep this fraction of a CT window's width from its ends.
WINDOW_MARGIN = 0.02
# Partial-volume skull edges pass through 200-400 HU and cortical bone lies
# far above; a window topping out below this cannot tell them apart.
BONE_SATURATION_HU = 400.0
# The keys of `windowed_scores`, in report order.
WINDOWED_KEYS = ("mae_air", "mae_soft", "mae_bone", "bone_dice")
# Voxels per slab of the slab-by-slab loops (16 slices of 512 x 512).
_SLAB_VOXELS = 1 << 22


def tissue_errors(prediction_hu, reference_hu, mask=None, thresholds=TISSUE_THRESHOLDS_HU):
    """MAE and mean error per tissue class, in HU, classes split on the reference.

    Args:
        prediction_hu, reference_hu: (H, W) or (D, H, W) arrays in HU, same shape.
        mask: boolean or numeric array of that shape (above 0: scored);
            None scores every voxel.
        thresholds: (low, high) HU: air below low, soft tissue from low to
            high inclusive, bone above high (default (-200, 200)).

    Returns:
        A dict with `mae_air`, `me_air`, `mae_soft`, `me_soft`, `mae_bone`,
        `me_bone` (floats; NaN for a class with no voxel in the mask).

    Raises:
        ValueError: (one line) on arrays of different shape, a mask of
            another shape or with no voxel, thresholds with low > high, or
            non-finite values inside the mask.

    Example:
        >>> reference = np.array([[-1000.0, 40.0], [700.0, 40.0]])
        >>> errors = tissue_errors(reference + 50.0, reference)
        >>> errors["mae_soft"], errors["me_bone"]
        (50.0, 50.0)
    """
    prediction, reference = check_pair(prediction_hu, reference_hu)
    mask = check_mask(mask, reference.shape)
    low, high = (float(t) for t in thresholds)
    if not low <= high:
        raise ValueError(f"thresholds must be (low, high) with low <= high, got {thresholds}")
    sums = {name: [0.0, 0.0, 0] for name in TISSUE_CLASSES}  # |error|, error, voxels
    for rows in _slabs(reference.shape):
        inside = mask[rows]
        ref = reference[rows][inside].astype(np.float64)
        pred = prediction[rows][inside].astype(np.float64)
        _check_finite(pred, "prediction")
        _check_finite(ref, "reference")
        error = pred - ref
        air = ref < low
        bone = ref > high
        soft = ~(air | bone)
        for name, where in (("air", air), ("soft", soft), ("bone", bone)):
            part = error[where]
            sums[name][0] += float(np.abs(part).sum())
            sums[name][1] += float(part.sum())
            sums[name][2] += part.size
    result = {}
    for name in TISSUE_CLASSES:
        absolute, signed, count = sums[name]
        result[f"mae_{name}"] = absolute / count if count else math.nan
        result[f"me_{name}"] = signed / count if count else math.nan
    return result


def tissue_thresholds_in_window(window_hu, thresholds=TISSUE_THRESHOLDS_HU):
    """Thresholds in HU moved into a CT window, `WINDOW_MARGIN` of its width
    from either end, so that a class the window saturates stays visible.

    A threshold inside the window's inner part is kept. In a brain window
    (-160..240 HU; margin 8 HU) air below -200 HU is drawn at -160, so air
    becomes "below -152 HU" (8-bit levels 0..5); 200 HU is inside, so bone
    stays "above 200 HU" (8-bit levels 230..255). A wide window
    (-1000..2000 HU) keeps -200 and 200.

    Args:
        window_hu: (low, high) HU of the window, low < high.
        thresholds: HU values, any number (default `TISSUE_THRESHOLDS_HU`).

    Returns:
        A tuple of floats, one per threshold, in the same order.

    Example:
        >>> tissue_thresholds_in_window((-160.0, 240.0))
        (-152.0, 200.0)
        >>> tissue_thresholds_in_window((-160.0, 240.0), (BONE_THRESHOLD_HU,))
        (200.0,)
        >>> tissue_thresholds_in_window((0.0, 100.0))
        (2.0, 98.0)
    """
    low, high = (float(v) for v in window_hu)
    margin = WINDOW_MARGIN * (high - low)
    return tuple(min(max(float(t), low + margin), high - margin) for t in thresholds)


def windowed_thresholds(window_hu):
    """The (air, bone) thresholds in HU that split a windowed CT's classes.

    Air is `tissue_thresholds_in_window`'s. Bone too, unless the window's
    top lies below `BONE_SATURATION_HU`: such a window (a brain window,
    -160..240 HU) draws every bone pixel and the dense soft tissue and
    partial-volume edges beside it alike near white, and only its
    saturated band says "bone", as readers of those images use it: bone is
    then above the top minus `WINDOW_MARGIN` of the width (232 HU, 8-bit
    levels 250..255).

    Example:
        >>> windowed_thresholds((-160.0, 240.0))
        (-152.0, 232.0)
        >>> windowed_thresholds((-1000.0, 2000.0))
        (-200.0, 200.0)
    """
    low, high = (float(v) for v in window_hu)
    air, bone = tissue_thresholds_in_window(window_hu)
    if high < BONE_SATURATION_HU:
        bone = high - WINDOW_MARGIN * (high - low)
    return air, bone


def windowed_scores(prediction_hu, reference_hu, window_hu):
    """MAE per tissue class (HU) and bone Dice of one windowed CT image.

    Both images are in HU inside the window (8-bit levels mapped through
    it, or HU clipped to it). Classes are split on the reference at
    `windowed_thresholds` (air, and bone on both images for the Dice).

    Args:
        prediction_hu, reference_hu: (H, W) arrays in HU, same shape.
        window_hu: (low, high) HU of the CT window.

    Returns:
        `{"mae_air", "mae_soft", "mae_bone", "bone_dice"}`: NaN for a class
        the reference lacks; Dice 1 when neither image has bone (`dice`).

    Example:
        >>> reference = np.array([[-160.0, 40.0], [240.0, 40.0]])
        >>> scores = windowed_scores(reference + [[0, 10], [-100, 10]], reference,
        ...                          (-160.0, 240.0))
        >>> scores["mae_soft"], scores["mae_bone"], scores["bone_dice"]
        (10.0, 100.0, 0.0)
    """
    low, bone = windowed_thresholds(window_hu)
    errors = tissue_errors(prediction_hu, reference_hu, thresholds=(low, bone))
    scores = {key: errors[key] for key in WINDOWED_KEYS[:3]}
    scores["bone_dice"] = dice(np.asarray(prediction_hu) > bone, np.asarray(reference_hu) > bone)
    return scores


def bone_overlap(prediction_hu, reference_hu, mask=None, spacing=None, *,
                 threshold=BONE_THRESHOLD_HU, convention="max"):
    """Dice and HD95 (mm) between bone thresholded on the prediction and the reference.

    Args:
        prediction_hu, reference_hu: (H, W) or (D, H, W) arrays in HU, same shape.
        mask: boolean or numeric array of that shape; bone is only looked
            for inside it. None: everywhere.
        spacing: voxel size in mm per axis (2 or 3 values); None: 1 mm.
        threshold: HU above which a voxel is bone (default 200).
        convention: "max" (default; MONAI, SynthRAD2025) or "union", see
            the module docstring.

    Returns:
        A dict with `dice_bone` and `hd95_bone_mm`.

    Raises:
        ValueError: (one line) on arrays of different shape, a bad mask or
            spacing, or an unknown convention.

    Example:
        >>> reference = np.full((12, 12), -1000.0)
        >>> reference[2:6, 3:9] = 1000.0
        >>> prediction = np.roll(reference, 2, axis=0)  # bone 2 rows lower
        >>> bone_overlap(prediction, reference, spacing=(1.5, 1.0))
        {'dice_bone': 0.5, 'hd95_bone_mm': 3.0}
    """
    prediction, reference = check_pair(prediction_hu, reference_hu)
    mask = check_mask(mask, reference.shape)
    spacing = check_spacing(spacing, reference.ndim)
    _check_convention(convention)
    predicted_bone = prediction > threshold
    predicted_bone &= mask
    reference_bone = reference > threshold
    reference_bone &= mask
    # Crop both to the box around either's bone: nothing outside it counts,
    # and the erosion treats outside the box as outside the bone either way.
    box = _bounding_box(predicted_bone | reference_bone)
    if box is None:
        return {"dice_bone": 1.0, "hd95_bone_mm": 0.0}
    predicted_bone = predicted_bone[box]
    reference_bone = reference_bone[box]
    return {
        "dice_bone": dice(predicted_bone, reference_bone),
        "hd95_bone_mm": hd95(predicted_bone, reference_bone, spacing, convention=convention),
    }


def dice(a, b):
    """Dice coefficient of two boolean arrays: 1 when both are empty.

    Args:
        a, b: boolean arrays of one shape.

    Returns:
        2 |a and b| / (|a| + |b|), a float in [0, 1].

    Example:
        >>> dice(np.array([1, 1, 0], bool), np.array([0, 1, 1], bool))
        0.5
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def surface_voxels(segmentation):
    """The voxels of a segmentation with a face neighbour outside it.

    The array's border counts as outside, so a segmentation touching it has
    surface there. Same as MONAI's `get_mask_edges` (erosion XOR mask).

    Args:
        segmentation: boolean array, any dimension.

    Returns:
        A boolean array of the same shape.

    Example:
        >>> surface_voxels(np.ones((3, 3), bool)).astype(int).tolist()
        [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    """
    segmentation = np.asarray(segmentation, dtype=bool)
    return segmentation & ~ndimage.binary_erosion(segmentation, border_value=0)


def surface_distances(a, b, spacing=None):
    """Distances in mm from each surface voxel of `a` to the nearest of `b`'s.

    Args:
        a, b: boolean arrays of one shape, each with at least one voxel.
        spacing: voxel size in mm per axis; None: 1 mm.

    Returns:
        A 1-D float64 array, one distance per surface voxel of `a` (C order).

    Example:
        >>> a = np.zeros((1, 8), bool); a[0, 1] = True
        >>> b = np.zeros((1, 8), bool); b[0, 4] = True
        >>> surface_distances(a, b, (1.0, 0.5)).tolist()
        [1.5]
    """
    a = np.asarray(a, dtype=bool)
    spacing = np.asarray(check_spacing(spacing, a.ndim))
    points_a = np.argwhere(surface_voxels(a)) * spacing
    points_b = np.argwhere(surface_voxels(b)) * spacing
    distances, _ = cKDTree(points_b).query(points_a, k=1)
    return np.asarray(distances, dtype=np.float64)


def hd95(a, b, spacing=None, *, convention="max"):
    """95th-percentile Hausdorff distance in mm between two segmentations.

    Args:
        a, b: boolean arrays of one shape.
        spacing: voxel size in mm per axis; None: 1 mm.
        convention: "max" (the larger directed 95th percentile; MONAI,
            SynthRAD2025) or "union" (95th percentile of both directions
            pooled).

    Returns:
        A float: 0 when both are empty, inf when one is.

    Example:
        >>> a = np.zeros((1, 20), bool); a[0, 5] = True
        >>> b = a.copy(); b[0, 15] = True
        >>> hd95(a, b), hd95(a, b, convention="union")
        (9.5, 9.0)
    """
    _check_convention(convention)
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    has_a, has_b = bool(a.any()), bool(b.any())
    if not (has_a or has_b):
        return 0.0
    if not (has_a and has_b):
        return math.inf
    a_to_b = surface_distances(a, b, spacing)
    b_to_a = surface_distances(b, a, spacing)
    if convention == "union":
        return float(np.percentile(np.concatenate([a_to_b, b_to_a]), 95))
    return float(max(np.percentile(a_to_b, 95), np.percentile(b_to_a, 95)))


def _slabs(shape):
    """Index tuples of consecutive slabs along axis 0, about _SLAB_VOXELS each."""
    rows = max(1, _SLAB_VOXELS // max(1, int(np.prod(shape[1:]))))
    for start in range(0, shape[0], rows):
        yield (slice(start, min(start + rows, shape[0])),)


def _check_finite(values, name):
    if not np.isfinite(values).all():
        raise ValueError(f"{name} has NaN or infinite values inside the mask")


def _check_convention(convention):
    if convention not in HD95_CONVENTIONS:
        raise ValueError(f"convention must be one of {HD95_CONVENTIONS}, got {convention!r}")


def _bounding_box(segmentation):
    """Slices of the smallest box holding every True voxel; None when none."""
    box = []
    for axis in range(segmentation.ndim):
        others = tuple(a for a in range(segmentation.ndim) if a != axis)
        hits = np.flatnonzero(segmentation.any(axis=others))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)
