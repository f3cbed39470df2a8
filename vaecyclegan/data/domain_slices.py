"""Reading one domain's training folder as slices in [-1, 1].

Every scan in the folder counts (images, DICOM series, NIfTI volumes; a
volume becomes its slices), converted exactly as inference converts its
input. Unreadable files are skipped with a warning that lists them; blank
slices (one value throughout, e.g. air above the head) are dropped.

Slices are brought to one side: the training size itself (whole slices,
CycleGAN's `--preprocess resize`), or, with a crop factor, the slices'
median side divided by it (training then draws crops of the training size
from them). Either way the pixel scale the networks see is recorded
(`DomainSlices.resize_factor`, `mm_per_pixel`) for inference to apply.
"""

import collections
import dataclasses
import logging

import cv2
import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.formats import find_scan_sources, format_of, read_scan

logger = logging.getLogger(__name__)

# Below this range (in [-1, 1] units) a slice holds nothing to learn from.
BLANK_RANGE = 1e-3


@dataclasses.dataclass
class DomainSlices:
    """One domain's slices and what they came from.

    Args:
        slices: float32 (n, size, size, 1) in [-1, 1].
        kinds: files per kind, e.g. {"PNG 8-bit": 180, "DICOM": 20}.
        sizes: slices per original size, e.g. {"256x256": 200}.
        skipped: one "path: problem" line per unreadable file.
        blank: slices dropped for holding a single value.
        resize_factor: the median of original side / loaded side.
        mm_per_pixel: the median size in mm of a loaded pixel, over the
            slices whose file gives a spacing (None: none did).
    """

    slices: np.ndarray
    kinds: dict
    sizes: dict
    skipped: list
    blank: int
    resize_factor: float = 1.0
    mm_per_pixel: float = None

    def describe(self):
        def counts(counter):
            return ", ".join(f"{key} x{count}" for key, count in counter.most_common(4)) + (
                ", ..." if len(counter) > 4 else "")

        text = (f"{len(self.slices)} slices from {sum(self.kinds.values())} files "
                f"({counts(self.kinds)}); sizes {counts(self.sizes)}")
        if self.blank:
            text += f"; {self.blank} blank slices dropped"
        if self.skipped:
            text += f"; {len(self.skipped)} unreadable files skipped"
        side = self.slices.shape[1]
        text += f"; loaded at {side}x{side}, {self.resize_factor:.3g} original pixels a pixel"
        if self.mm_per_pixel:
            text += f" ({self.mm_per_pixel:.3g} mm)"
        return text


def _resized(plane, size):
    if plane.shape == (size, size):
        return plane
    shrink = plane.shape[0] > size or plane.shape[1] > size
    resized = cv2.resize(plane, (size, size),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.clip(resized, -1.0, 1.0)


def load_domain_slices(folder, domain, intensity, image_size, axis="axial", crop_factor=None):
    """Reads every scan of a folder as square slices of one side.

    Slices are resized (area interpolation when shrinking) to `image_size`,
    as CycleGAN's `--preprocess resize` does, or, with `crop_factor`, to
    their median side divided by it (at least `image_size`), for training
    on crops; the whole domain is kept in memory.

    Args:
        folder: the domain's folder.
        domain: "ct" or "mri".
        intensity: the `IntensityConfig` that inference will use too.
        image_size: training side in pixels.
        axis: the plane volumes are cut along.
        crop_factor: original pixels per loaded pixel (1: native
            resolution); None loads whole slices at `image_size`.

    Returns:
        A `DomainSlices`.

    Raises:
        InputError: the folder is missing, or no readable slice is left.
    """
    planes, sides, spacings, skipped, blank = [], [], [], [], 0
    kinds, sizes = collections.Counter(), collections.Counter()
    for source in find_scan_sources(folder):
        try:
            scan = read_scan(source, domain, axis)
        except InputError as error:
            skipped.append(str(error))
            continue
        kinds[format_of(scan).describe(scan)] += len(source.paths)
        for plane in scan.to_unit(intensity):
            if float(plane.max() - plane.min()) < BLANK_RANGE:
                blank += 1
                continue
            sizes[f"{plane.shape[1]}x{plane.shape[0]}"] += 1
            sides.append(max(plane.shape))
            spacings.append(scan.pixel_mm)
            # Whole slices shrink as they are read; crops need the median
            # side first, so their slices are kept as they are until then.
            planes.append(plane if crop_factor else _resized(plane, image_size))
    if skipped:
        logger.warning("skipped %d unreadable file(s) in %s:\n  %s", len(skipped), folder,
                       "\n  ".join(skipped))
    if not planes:
        raise InputError(folder, f"no readable {domain.upper()} slice left to train on "
                         f"({len(skipped)} unreadable files, {blank} blank slices)")
    side = image_size if crop_factor is None else max(
        image_size, int(round(float(np.median(sides)) / crop_factor)))
    factors = [s / side for s in sides]
    mm = [m * f for m, f in zip(spacings, factors) if m]
    return DomainSlices(np.stack([_resized(p, side) for p in planes])[..., None]
                        .astype(np.float32), kinds, sizes, skipped, blank,
                        float(np.median(factors)), float(np.median(mm)) if mm else None)
