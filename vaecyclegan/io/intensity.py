"""Intensity mappings between scanner units, stored pixels and [-1, 1].

The translators see images in [-1, 1]. CT in Hounsfield units reaches that
range through the config's window (`IntensityConfig.ct_window_hu`); MRI,
which has no absolute unit, through robust percentiles of each image or
volume. 8-bit images are assumed to be already windowed or scaled (as the
Kaggle JPEGs and the phantom's PNGs are) and map linearly.
"""

import logging

import numpy as np

from vaecyclegan.errors import printable

logger = logging.getLogger(__name__)

# 16-bit CT PNGs store HU + 1024 (the usual unsigned CT-number convention,
# as DICOM's RescaleIntercept -1024), so value - 1024 = HU.
PNG16_HU_OFFSET = 1024


# A head CT shows air around the head, in HU. A CT with less air than this
# (voxels at or below AIR_HU) is said to look wrong: MRI in its place, or a
# CT stored as HU + 1024 without the intercept that says so.
AIR_HU = -500.0
LEAST_AIR_FRACTION = 0.005
NO_AIR_QUESTION = "is it MRI, or CT stored without its intercept (HU + 1024 read as HU)?"


def air_fraction(hu):
    """The share of `hu`'s values at or below `AIR_HU`."""
    hu = np.asarray(hu)
    return np.count_nonzero(hu <= AIR_HU) / max(hu.size, 1)


def warn_if_no_air(path, hu, what):
    """Says so when a CT in HU has (almost) no air: scored or translated
    as it is, an intercept left out showed as MAE 568 "HU" and a body mask
    of every voxel, unsaid."""
    share = air_fraction(hu)
    if share < LEAST_AIR_FRACTION:
        logger.warning("%s: only %.1f %% of %s's voxels are air (%g HU or below), where a head "
                       "CT has air around the head: %s", printable(path), 100.0 * share, what,
                       AIR_HU, NO_AIR_QUESTION)


def hu_to_unit(hu, window):
    """Maps HU to [-1, 1] through `window = (low, high)`, clipping outside it."""
    low, high = window
    unit = (np.asarray(hu, dtype=np.float32) - low) / (high - low) * 2.0 - 1.0
    return np.clip(unit, -1.0, 1.0)


def unit_to_hu(unit, window):
    """Inverse of `hu_to_unit` inside the window."""
    low, high = window
    return (np.asarray(unit, dtype=np.float32) + 1.0) / 2.0 * (high - low) + low


def mri_to_unit(image, percentiles):
    """Scales an MRI image or volume so its `percentiles` map to -1 and +1."""
    image = np.asarray(image, dtype=np.float32)
    low, high = np.percentile(image, percentiles)
    if high <= low:
        return np.zeros_like(image) - 1.0
    return np.clip((image - low) / (high - low) * 2.0 - 1.0, -1.0, 1.0)


def stored_to_unit(pixels):
    """Maps stored 8- or 16-bit pixels linearly to [-1, 1]."""
    full_scale = float(np.iinfo(pixels.dtype).max)
    return pixels.astype(np.float32) / full_scale * 2.0 - 1.0


def unit_to_stored(unit, dtype=np.uint8):
    """Maps [-1, 1] to 8- or 16-bit pixels, rounding to the nearest level."""
    full_scale = float(np.iinfo(dtype).max)
    scaled = (np.clip(unit, -1.0, 1.0) + 1.0) / 2.0 * full_scale
    return np.round(scaled).astype(dtype)


# Synthetic MRI written to DICOM or NIfTI spans 0..4095, the 12-bit range
# most scanners store (MRI has no absolute unit to keep).
MR_SIGNAL_MAX = 4095.0


def values_to_unit(values, units, intensity, full_scale=255.0):
    """Maps a scan's values to [-1, 1] by their units.

    Args:
        values: float array (slices, H, W).
        units: "hu" (CT through the window), "signal" (MRI through robust
            percentiles of the whole scan) or "grey" (already windowed or
            scaled grey levels, linear over 0..`full_scale`).
        intensity: an `IntensityConfig`.
        full_scale: for "grey" units, the grey level of white (mapped to
            1): 255 for 8-bit images, 65535 for 16-bit grey ones (a
            synthetic MRI); ignored for the other units.
    """
    if units == "hu":
        return hu_to_unit(values, intensity.ct_window_hu)
    if units == "signal":
        return mri_to_unit(values, intensity.mri_percentiles)
    if units == "grey":
        return np.asarray(values, dtype=np.float32) / full_scale * 2.0 - 1.0
    raise ValueError(f"unknown units {units!r}")


def unit_to_values(unit, units, intensity, full_scale=255.0):
    """Inverse of `values_to_unit` for an output in `units` ("signal" spans
    0..`MR_SIGNAL_MAX`); float32, not rounded."""
    unit = np.clip(np.asarray(unit, dtype=np.float32), -1.0, 1.0)
    if units == "hu":
        return unit_to_hu(unit, intensity.ct_window_hu)
    if units == "signal":
        return (unit + 1.0) / 2.0 * MR_SIGNAL_MAX
    if units == "grey":
        return (unit + 1.0) / 2.0 * full_scale
    raise ValueError(f"unknown units {units!r}")
