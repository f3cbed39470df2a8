"""Body mask of a reference CT, and the input checks every SynthRAD metric shares.

The body mask says which voxels the SynthRAD metrics score. SynthRAD hands
out its own masks (https://github.com/SynthRAD2023/preprocessing: the
patient outline, dilated); `body_mask` makes one from the reference CT when
none is given, in four steps:

1. threshold: voxels above -500 HU (configurable) are body;
2. fill holes slice by slice (2-D, each slice along axis 0), so air inside
   the body (sinuses, airways, the bowel) counts as body wherever a slice
   encloses it;
3. keep the largest connected component (3-D, face connectivity), which
   drops the couch, cables and other detached objects;
4. optionally dilate by a distance in millimetres, using the voxel spacing:
   a voxel joins when its centre lies within that distance of a mask
   voxel's centre (a Euclidean distance transform with `sampling=spacing`,
   which is dilation by an ellipsoid of `distance / spacing` voxels).

Arrays are (H, W) slices or (D, H, W) volumes with axis 0 the slice axis;
spacings are in millimetres, one per axis, in the same order.

`check_pair`, `check_mask` and `check_spacing` raise `ValueError` with a
one-line message on inputs no metric can score.
"""

import math

import numpy as np
from scipy import ndimage

BODY_THRESHOLD_HU = -500.0
# Voxels per slab when dilating slab by slab (16 slices of 512 x 512).
_SLAB_VOXELS = 1 << 22


def check_pair(prediction, reference):
    """Both arrays as real-valued numpy arrays of one shape, 2-D or 3-D.

    Args:
        prediction, reference: array-likes of numbers, (H, W) or (D, H, W).

    Returns:
        The two arrays (views where they already were numpy arrays).

    Raises:
        ValueError: (one line) on a dimension other than 2 or 3, arrays of
            different shape, or values that are not real numbers.

    Example:
        >>> p, r = check_pair(np.zeros((4, 5)), np.ones((4, 5)))
    """
    prediction = np.asarray(prediction)
    reference = np.asarray(reference)
    for name, array in (("prediction", prediction), ("reference", reference)):
        if not _is_real(array):
            raise ValueError(f"{name} must hold real numbers, not {array.dtype}")
        if array.ndim not in (2, 3):
            raise ValueError(
                f"{name} must be 2-D (H, W) or 3-D (D, H, W), not {array.ndim}-D "
                f"{array.shape}"
            )
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} differs from reference shape "
            f"{reference.shape}"
        )
    return prediction, reference


def check_mask(mask, shape):
    """`mask` as a boolean array of `shape` with at least one voxel.

    Values above 0 count as inside (negative ones do not), as in SynthRAD's
    evaluation code (`np.where(mask > 0, 1, 0)`).

    Args:
        mask: array-like of `shape`, boolean or numeric; None means every voxel.
        shape: the shape of the images it masks.

    Returns:
        A boolean array (the input itself when it already was one).

    Raises:
        ValueError: (one line) on a mask of another shape or with no voxel.

    Example:
        >>> bool(check_mask(None, (2, 3)).all())
        True
    """
    shape = tuple(shape)
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {shape}")
    if mask.dtype != bool:
        if not _is_real(mask):
            raise ValueError(f"mask must be boolean or numeric, not {mask.dtype}")
        mask = mask > 0
    if not mask.any():
        raise ValueError("mask has no voxel: nothing to score")
    return mask


def check_spacing(spacing, ndim):
    """Voxel spacing in mm as a tuple of `ndim` positive floats.

    Args:
        spacing: one number per axis (in axis order), or None for 1 mm.
        ndim: 2 or 3, the dimension of the images.

    Returns:
        A tuple of floats.

    Raises:
        ValueError: (one line) on a wrong count or a value that is not a
            positive finite number.

    Example:
        >>> check_spacing((3, 0.8, 0.8), 3)
        (3.0, 0.8, 0.8)
    """
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(s) for s in np.ravel(spacing))
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be {ndim} numbers in mm, got {spacing!r}") from None
    if len(values) != ndim:
        raise ValueError(f"spacing must have {ndim} values for {ndim}-D images, got {len(values)}")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing values must be positive, got {values}")
    return values


def body_mask(reference_hu, spacing=None, *, threshold=BODY_THRESHOLD_HU, dilation_mm=0.0):
    """The body of a reference CT: threshold, fill holes, largest component.

    Args:
        reference_hu: (H, W) or (D, H, W) CT in Hounsfield units.
        spacing: voxel size in mm per axis (2 or 3 values, axis order);
            None means 1 mm. Only used by the dilation.
        threshold: HU above which a voxel is body (default -500).
        dilation_mm: grow the mask by this distance in mm (default 0: none).

    Returns:
        A boolean array of the reference's shape; all False when no voxel
        exceeds the threshold.

    Raises:
        ValueError: (one line) on an array that is not 2-D or 3-D, a bad
            spacing or a negative dilation.

    Example:
        >>> ct = np.full((40, 64, 64), -1000.0, np.float32)
        >>> ct[5:35, 12:52, 12:52] = 40.0
        >>> mask = body_mask(ct, spacing=(2.0, 1.0, 1.0), dilation_mm=2.0)
        >>> int(mask[20, 32].sum())  # 40 voxels wide, grown by 2 on each side
        44
    """
    reference = np.asarray(reference_hu)
    if not _is_real(reference) or reference.ndim not in (2, 3):
        raise ValueError(
            f"reference must be a 2-D or 3-D array of numbers, got {reference.ndim}-D "
            f"{reference.dtype}"
        )
    spacing = check_spacing(spacing, reference.ndim)
    if not (math.isfinite(dilation_mm) and dilation_mm >= 0):
        raise ValueError(f"dilation_mm must be a distance >= 0 in mm, got {dilation_mm}")
    mask = reference > threshold
    if mask.ndim == 3:
        for index in range(mask.shape[0]):
            mask[index] = ndimage.binary_fill_holes(mask[index])
    else:
        mask = ndimage.binary_fill_holes(mask)
    mask = largest_component(mask)
    if dilation_mm > 0 and mask.any():
        mask = dilate_mm(mask, spacing, dilation_mm)
    return mask


def largest_component(mask):
    """The largest face-connected component of a boolean array (a copy).

    Ties go to the component found first in C order. An empty mask comes
    back empty.

    Args:
        mask: boolean array, any dimension.

    Returns:
        A boolean array of the same shape.

    Example:
        >>> largest_component(np.array([1, 1, 0, 1], bool)).tolist()
        [True, True, False, False]
    """
    labels, count = ndimage.label(mask)
    if count <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def dilate_mm(mask, spacing, distance_mm):
    """Grow a boolean mask by a distance in mm (Euclidean, voxel centres).

    A voxel joins when its centre lies within `distance_mm` of the centre of
    a mask voxel, measured with the spacing. Done slab by slab along axis 0,
    each slab with enough neighbouring slices to see every voxel within the
    distance, so the result equals one distance transform of the whole
    array while memory stays at a slab's.

    Args:
        mask: boolean (H, W) or (D, H, W) array.
        spacing: voxel size in mm per axis.
        distance_mm: how far to grow, in mm.

    Returns:
        A new boolean array of the mask's shape.

    Example:
        >>> dilate_mm(np.eye(1, 7, 3, dtype=bool), (1.0, 1.0), 2.0).astype(int).tolist()
        [[0, 1, 1, 1, 1, 1, 0]]
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = check_spacing(spacing, mask.ndim)
    # Distances come out of a square root: allow for its rounding.
    limit = distance_mm * (1.0 + 1e-9) + 1e-9
    halo = int(math.floor(limit / spacing[0]))
    rows = max(1, _SLAB_VOXELS // max(1, int(np.prod(mask.shape[1:]))))
    out = np.zeros_like(mask)
    for start in range(0, mask.shape[0], rows):
        stop = min(start + rows, mask.shape[0])
        low, high = max(start - halo, 0), min(stop + halo, mask.shape[0])
        slab = mask[low:high]
        if not slab.any():
            continue
        distance = ndimage.distance_transform_edt(~slab, sampling=spacing)
        out[start:stop] = distance[start - low:stop - low] <= limit
    return out


def _is_real(array):
    return array.dtype == bool or (
        np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
    )
