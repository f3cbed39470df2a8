"""Reading one domain's training folder as slices in [-1, 1].

Every scan in the folder and its subfolders counts (images, DICOM series,
NIfTI volumes; a volume becomes its slices), converted exactly as inference converts its
input. Unreadable files are skipped with a warning that lists them; blank
slices (one value throughout, e.g. air above the head) are dropped.

Slices are brought to one side: the training size itself (whole slices,
CycleGAN's `--preprocess resize`), or, with a crop factor, the slices'
median side divided by it (training then draws crops of the training size
from them). Slices whose file gives a spacing (DICOM, NIfTI) are first
resampled to one size in mm of a pixel, as inference resamples them, and
then centre-cropped or padded to that side: the networks see all of them
at one physical scale. The pixel scale the networks see is recorded
(`DomainSlices.resize_factor`, `mm_per_pixel`) for inference to apply.
"""

import collections
import dataclasses
import logging
import math

import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.formats import find_scan_sources, format_of, read_scan
from vaecyclegan.io.intensity import AIR_HU, LEAST_AIR_FRACTION, NO_AIR_QUESTION, hu_to_unit
from vaecyclegan.io.memory_budget import NotEnoughMemory, check_fits_in_memory
from vaecyclegan.io.resampling import resample_planes, scaled_shape

logger = logging.getLogger(__name__)

# Below this range (in [-1, 1] units) a slice holds nothing to learn from.
BLANK_RANGE = 1e-3
# Bytes a loaded training pixel holds: the float32 slice in the list and
# its copy in the stacked array.
HELD_BYTES_PER_PIXEL = 8


@dataclasses.dataclass
class DomainSlices:
    """One domain's slices and what they came from.

    Args:
        slices: float32 (n, size, size, 1) in [-1, 1].
        kinds: files per kind, e.g. {"PNG 8-bit": 180, "DICOM": 20}.
        sizes: slices per original size, e.g. {"256x256": 200}.
        skipped: one "path: problem" line per unreadable file.
        blank: slices dropped for holding a single value.
        resize_factor: the median over slices of original pixels per
            loaded pixel (for a slice without spacing: original side /
            loaded side).
        mm_per_pixel: the size in mm of a loaded pixel of every slice
            whose file gives a spacing (None: none did).
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


def _resized(plane, shape):
    """One slice resampled to `shape` (rows, columns) as inference
    resamples its input, in the slice's own precision."""
    return resample_planes(plane[None], shape, dtype=None)[0]


def _at_mm(plane, pixel_mm, mm_per_pixel):
    """A slice of `(rows, columns)` mm pixels resampled to square
    `mm_per_pixel` mm pixels, each axis by its own factor, rounded as
    inference rounds its shape."""
    return _resized(plane, scaled_shape(plane.shape, tuple(mm_per_pixel / mm
                                                           for mm in pixel_mm)))


def _fitted(plane, side):
    """A slice without spacing shrunk (or enlarged) by one factor, its
    longest side to `side`, then padded square (`_square`): inference
    scales both axes by the one recorded factor, so a non-square image
    stretched to a square here would have shown the network anatomy of
    another aspect than at inference."""
    return _square(_resized(plane, scaled_shape(plane.shape, max(plane.shape) / side)), side)


def _square(plane, side):
    """`plane` centre-cropped or padded to `side` x `side`. Padding takes
    the slice's minimum, its background (air): a slice that shrank to less
    than the side shows the field of view it had, not invented anatomy."""
    background = float(plane.min())
    top, left = (max(0, (n - side) // 2) for n in plane.shape)
    plane = plane[top:top + side, left:left + side]
    pad = [((side - n) // 2, side - n - (side - n) // 2) for n in plane.shape]
    if not any(before or after for before, after in pad):
        return plane
    return np.pad(plane, pad, constant_values=background)


def _stop_if_held_slices_are_the_cause(error, planes, domain, folder):
    """Every slice is held until training. Where the slices held already
    are what leaves too little memory for a file, the files after it would
    be skipped too and training go on with part of the data: stopped. So
    is a file whose decoding ran out of memory (its header had been found
    to fit) after slices were held. A file too large on its own (or a
    header that says so) is left to be skipped as unreadable."""
    held = sum(plane.nbytes for plane, _ in planes)
    ran_out = error.needed is None  # a MemoryError while decoding
    if held and (ran_out or error.needed <= (error.available or 0) + held):
        raise NotEnoughMemory(error.path, f"{error.problem}, with {len(planes)} "
                              f"{domain.upper()} slice(s) of {folder} held already: training "
                              "holds every slice; train on fewer scans or on a machine with "
                              "more memory") from None


def _warn_if_no_air(folder, planes, intensity):
    """MRI in the CT folder trains without a word otherwise: its signal read
    as HU is all tissue and bone. `planes`: the slices kept, as read."""
    # Where the window starts above AIR_HU (a brain window), air is black:
    # the window's bottom twentieth, as 8-bit images do not hold grey 0 exactly.
    air = max(float(hu_to_unit(AIR_HU, intensity.ct_window_hu)), -0.95)
    air_pixels = sum(int(np.count_nonzero(plane <= air)) for plane, _ in planes)
    pixels = sum(plane.size for plane, _ in planes)
    if air_pixels < LEAST_AIR_FRACTION * pixels:
        logger.warning("%s: only %.1f %% of its CT pixels are air (%g HU or below), where a "
                       "head CT has air around the head: %s CT goes in the A folders, MRI in "
                       "the B folders (--ct-dir/--mri-dir)", folder,
                       100.0 * air_pixels / pixels, AIR_HU, NO_AIR_QUESTION)


def load_domain_slices(folder, domain, intensity, image_size, axis="axial", crop_factor=None,
                       mm_per_pixel=None, apart_from=()):
    """Reads every scan of a folder and its subfolders as square slices of one side.

    The side is `image_size` (whole slices, as CycleGAN's `--preprocess
    resize`), or, with `crop_factor`, the slices' median side divided by it
    (at least `image_size`), for training on crops; the whole domain is
    kept in memory. A slice without spacing (an image file) is resized by
    one factor, its longest side to the side (area interpolation when
    shrinking), and padded square (`_fitted`). Slices with a spacing are
    resampled to one size of pixel in mm, keeping their aspect, and then
    centre-cropped or padded with their background to the side; that size
    is `mm_per_pixel` if given, else the median over them of what resizing
    to the side would give (so square slices of one spacing and size load
    exactly as a plain resize loads them; a non-square one is no longer
    stretched). Inference resamples a spaced input to the recorded mm the
    same way, so a millimetre of anatomy spans as many network pixels in
    training as in use, whatever each file's spacing. Spaced slices wait
    at their own size until that mm is known (as all slices wait for the
    side with a crop factor); given `mm_per_pixel`, they shrink as read.

    Args:
        folder: the domain's folder.
        domain: "ct" or "mri".
        intensity: the `IntensityConfig` that inference will use too.
        image_size: training side in pixels.
        axis: the plane volumes are cut along.
        crop_factor: original pixels per loaded pixel (1: native
            resolution); None loads whole slices at `image_size`.
        mm_per_pixel: the mm per loaded pixel for spaced slices, e.g. the
            other domain's, so that both share one scale; None: this
            domain's own (see above). With a crop factor, the side is then
            the slices' median side at that scale.
        apart_from: the dataset's other folders (the other domain's, the
            test folders), which no link in `folder` may lead into.

    Returns:
        A `DomainSlices`.

    Raises:
        InputError: the folder is missing, or no readable slice is left.
    """
    # A slice at the training side must fit (cv2 raised a traceback for a
    # --image-size of 100,000); the whole domain is checked once read.
    check_fits_in_memory(folder, image_size**2, f"a training slice of {image_size}x"
                         f"{image_size}", bytes_per_pixel=HELD_BYTES_PER_PIXEL)
    # Per slice: its longest side in pixels, its pixel size (rows, columns)
    # in mm (None: no spacing) and that side's length in mm.
    planes, sides, spacings, extents, skipped, blank = [], [], [], [], [], 0
    kinds, sizes = collections.Counter(), collections.Counter()
    # Subfolders too: a PACS export keeps each series in a folder of its own.
    for source in find_scan_sources(folder, recursive=True, apart_from=apart_from):
        try:
            scan = read_scan(source, domain, axis)
        except InputError as error:
            if isinstance(error, NotEnoughMemory):
                _stop_if_held_slices_are_the_cause(error, planes, domain, folder)
            skipped.append(str(error))
            continue
        kinds[format_of(scan).describe(scan)] += len(source.paths)
        pixel_mm = scan.pixel_mm
        for plane in scan.to_unit(intensity):
            if float(plane.max() - plane.min()) < BLANK_RANGE:
                blank += 1
                continue
            sizes[f"{plane.shape[1]}x{plane.shape[0]}"] += 1
            sides.append(max(plane.shape))
            spacings.append(pixel_mm)
            extents.append(pixel_mm and max(n * mm for n, mm in zip(plane.shape, pixel_mm)))
            # Slices shrink as they are read where their scale is known
            # already, to hold less; the others wait for the medians. Each
            # is kept with the mm of its pixels now (None: no spacing).
            if pixel_mm and mm_per_pixel:
                planes.append((_at_mm(plane, pixel_mm, mm_per_pixel),
                               (mm_per_pixel, mm_per_pixel)))
            elif not (pixel_mm or crop_factor):
                planes.append((_fitted(plane, image_size), None))
            else:
                planes.append((plane, pixel_mm))
    if skipped:
        logger.warning("skipped %d unreadable file(s) in %s:\n  %s", len(skipped), folder,
                       "\n  ".join(skipped))
    if not planes:
        raise InputError(folder, f"no readable {domain.upper()} slice left to train on "
                         f"({len(skipped)} unreadable files, {blank} blank slices)")
    if domain == "ct":
        _warn_if_no_air(folder, planes, intensity)
    side = image_size if crop_factor is None else max(
        image_size, int(round(float(np.median(sides)) / crop_factor)))
    spaced = [extent for extent in extents if extent]
    target = mm_per_pixel or (float(np.median([extent / side for extent in spaced]))
                              if spaced else None)
    if crop_factor is not None and spaced:
        # The median slice at the loaded scale fills the side: with this
        # domain's own mm and every slice spaced, the side above; with
        # another domain's, no wide margin of padding around small slices.
        side = max(image_size, int(round(float(np.median(
            [e / target if e else n / crop_factor for n, e in zip(sides, extents)])))))
    check_fits_in_memory(folder, len(planes) * side**2, f"{len(planes)} training slices of "
                         f"{side}x{side}", bytes_per_pixel=HELD_BYTES_PER_PIXEL)
    slices = [_square(_at_mm(p, m, target), side) if m else _fitted(p, side)
              for p, m in planes]
    factors = [target / math.sqrt(m[0] * m[1]) if m else n / side
               for n, m in zip(sides, spacings)]
    return DomainSlices(np.stack(slices)[..., None].astype(np.float32), kinds, sizes, skipped,
                        blank, float(np.median(factors)), target if spaced else None)
