"""Cases in Hounsfield units for `vaecyclegan-eval`: finding the cases a
file or folder holds, pairing predictions with references by name, reading
each as an array in HU with its voxel spacing in mm, reading masks of the
same grid, and writing the mask used beside the results.

A case is one scan of the format registry (`vaecyclegan.io.formats`): a
NIfTI volume (`.nii`, `.nii.gz`), a DICOM series (a folder per case, or the
files of a folder grouped by SeriesInstanceUID), a 16-bit PNG of HU + 1024
or a single DICOM slice. Names: a file's name without its extension; a
series grouped from a folder's files, its first file's; a sub-folder
holding one scan, the sub-folder's. A scan of one slice is scored as a 2-D
image (H, W), anything else as a volume (D, H, W) cut in axial slices, as
`infer.py` cuts it (radiological display orientation: slices running
superior, rows posterior, columns to the patient's left).

Spacing, in mm per array axis, is the one the format's reader found
(`Scan.spacing`: NIfTI from the affine, DICOM from PixelSpacing and the
distance between slice positions); image files have none and take 1 mm,
or what `--spacing` says. Two cases are on the same grid when their arrays
have the same shape and spacing (to 0.1 %) and, where both files place
their voxels in the patient (`Scan.world`: NIfTI, DICOM, MetaImage), the
same axis directions and first-voxel position (to a tenth of a voxel). A
prediction whose header says another orientation than the reference's
would otherwise be cut into slices flipped against it and scored so.
Voxels of the reference's grid stored in another axis order (a MetaImage,
kept as stored, against a NIfTI or DICOM file of its voxels, which are cut
into axial slices) are put in the reference's order first
(`in_reference_order`). The mask written beside the results lies on a
NIfTI reference's own file grid (its voxel order, affine and header), and
for other references is placed where the reference is (its `world`;
origin 0 in the axial orientation where the reference has none), so it
goes back in as `--mask` either way; a mask at
that origin-0 placement is read on shape and spacing alone, as masks of
earlier versions were written so, unless the reference's voxels were cut
in another order than stored (`HuImage.turned`), where such a mask would
lie reversed.
"""

import dataclasses
import functools
import logging
import os

import numpy as np

from vaecyclegan.errors import InputError, printable
from vaecyclegan.io.formats import find_scan_sources, format_of, read_scan
from vaecyclegan.io.image_format import write_png
from vaecyclegan.io.intensity import unit_to_hu, values_to_unit
from vaecyclegan.io.scan import list_folder

logger = logging.getLogger(__name__)

_SUFFIXES = (".nii.gz", ".nii", ".png", ".tif", ".tiff", ".dcm", ".dicom", ".ima")
# Spacings of one grid differ by at most this fraction.
SPACING_TOLERANCE = 1e-3
# Axis directions (unit vectors) of one grid differ by at most this much,
# and first-voxel positions by at most this fraction of the smallest voxel.
DIRECTION_TOLERANCE = 1e-3
POSITION_TOLERANCE = 0.1


@dataclasses.dataclass
class HuImage:
    """One scan in HU (or a mask's raw values) with its geometry.

    Args:
        name: the case name.
        path: its file (a series' first file), for messages.
        values: float32 (H, W) or (D, H, W).
        spacing: mm per array axis.
        world: the scan's `Scan.world` (indices (slice, row, column) to
            RAS+ mm), or None where its file does not place it.
        turned: whether its reader cut the voxels in another order than
            they are stored (a DICOM series of another plane, feet-first or
            prone): masks written before placements were kept are in the
            stored order.
        scan: the `Scan` it was read from, for a mask on its file's grid.
    """

    name: str
    path: str
    values: np.ndarray
    spacing: tuple
    world: np.ndarray = None
    turned: bool = False
    scan: object = None


def case_name(path):
    """A file's name without its (double) extension."""
    name = os.path.basename(os.path.normpath(path))
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


def find_cases(path):
    """`{name: ScanSource}` of a file, or of a folder's scans and its
    sub-folders' (one level down).

    Raises:
        InputError: nothing readable there, or two cases of one name.
    """
    if not os.path.isdir(path):
        [source] = find_scan_sources(path)
        return {case_name(path): source}
    entries = sorted(e for e in list_folder(path) if not e.startswith("."))
    cases = {}
    if any(os.path.isfile(os.path.join(path, e)) for e in entries):
        try:
            for source in find_scan_sources(path):
                _add_case(cases, case_name(source.paths[0]), source)
        except InputError:
            if not any(os.path.isdir(os.path.join(path, e)) for e in entries):
                raise
    for entry in entries:
        folder = os.path.join(path, entry)
        if not os.path.isdir(folder):
            continue
        try:
            sources = find_scan_sources(folder)
        except InputError:
            continue  # a folder of other things (an overview, a README)
        for source in sources:
            name = entry if len(sources) == 1 else f"{entry}/{case_name(source.paths[0])}"
            _add_case(cases, name, source)
    if not cases:
        raise InputError(path, "no NIfTI, DICOM or image file here or one folder down")
    return cases


def _add_case(cases, name, source):
    if name in cases:
        raise InputError(source.paths[0], f"two cases are named {name!r} "
                         f"(also {cases[name].paths[0]}); rename one")
    cases[name] = source


def pair_cases(predictions, references):
    """`[(name, prediction ScanSource, reference ScanSource), ...]` of the
    case names in both (a single case on each side pairs whatever its name).

    Raises:
        InputError: no name in both.
    """
    predicted, referenced = find_cases(predictions), find_cases(references)
    names = [name for name in referenced if name in predicted]
    if not names and len(predicted) == 1 and len(referenced) == 1:
        [(name, reference)] = referenced.items()
        return [(name, next(iter(predicted.values())), reference)]
    if not names:
        raise InputError(predictions, f"no case name is also in {references} "
                         f"(cases here: {', '.join(sorted(predicted)[:5])})")
    say_unpartnered(names, predicted, referenced, "case(s)")
    return [(name, predicted[name], referenced[name]) for name in names]


def say_unpartnered(paired, predictions, references, what, count=None):
    """Names the predictions and references left out of scoring for want
    of a partner: a left-out patient changes the means. Said on stdout, so
    that an error after it stays the one line on stderr.

    Args:
        paired: the names scored (of either side).
        predictions, references: every name on each side.
        what: what a name is, e.g. "case(s)", "image(s)".
        count: how many are scored (default: `len(paired)`).
    """
    alone = sorted(set(predictions) - set(paired)), sorted(set(references) - set(paired))
    if any(alone):
        logger.info(f"Scoring {len(paired) if count is None else count} {what} found in both "
                    "folders; "
                    f"{len(alone[0])} prediction(s) and {len(alone[1])} reference(s) have "
                    f"no partner: {', '.join((alone[0] + alone[1])[:5])}"
                    f"{', ...' if len(alone[0]) + len(alone[1]) > 5 else ''}")


def aux_source(path, name, count, option):
    """The scan of `option` (a mask, a target) for case `name`: `path`
    itself when it is a file and there is one case, else the case of that
    name in the folder `path`; None when the folder has none."""
    if not os.path.isdir(path):
        if count > 1:
            raise InputError(path, f"one {option} file for {count} cases: give a folder of "
                             "files named after the cases")
        return find_cases(path)[case_name(path)]
    return _folder_cases(os.path.abspath(path), os.stat(path).st_mtime_ns).get(name)


@functools.lru_cache(maxsize=4)
def _folder_cases(folder, modified):
    # A mask or target folder is listed (and its DICOM headers grouped) once
    # for all the cases that look a file up in it, not once per case; the
    # folder's modification time in the key makes a changed listing a miss.
    # Sources hold paths, not pixels, so a file's new content is read anew.
    return dict(find_cases(folder))


def read_hu(source, name, role, spacing_2d=None, grey_window=None):
    """A case's scan in HU, as a `HuImage` (see the module docstring).

    Args:
        source: its `ScanSource`.
        name: the case name.
        role: "prediction" or "reference", for messages.
        spacing_2d: (row, column) mm of image files; None: 1 mm.
        grey_window: (low, high) HU that an 8-bit image's black and white
            stand for (a synthetic CT written by `infer.py` from 8-bit
            input); None: 8-bit images are refused.

    Raises:
        InputError: unreadable, or not in HU (an 8-bit image without
            `grey_window`).
    """
    scan = read_scan(source, "ct")
    if scan.units == "grey" and grey_window is not None:
        unit = values_to_unit(scan.values, "grey", None, scan.full_scale)
        scan = dataclasses.replace(scan, values=unit_to_hu(unit, grey_window).astype(np.float32),
                                   units="hu")
    if scan.units != "hu":
        raise InputError(scan.path, f"the {role} is an 8-bit image, which carries no HU: "
                         "give 16-bit PNGs of HU + 1024, DICOM CT or NIfTI, or --inputs "
                         "for the 8-bit evaluation")
    if scan.spacing_problem:
        # Masks, HD95 and WEPL are measured on a regular grid.
        raise InputError(scan.path, f"{scan.spacing_problem}: the 3-D metrics need evenly "
                         "spaced slices")
    return _hu_image(scan, name, spacing_2d)


def read_mask(source, like, option="--mask"):
    """A mask of `like`'s geometry (above 0: inside) as a boolean array.

    Raises:
        InputError: unreadable, another shape or grid, or no voxel.
    """
    scan = _read_raw(source)
    # An image file has no spacing: it takes the reference's in-plane one
    # (a volume's last two axes), so that only a real difference is refused.
    in_plane = like.spacing[-2:] if scan.spacing is None else None
    mask = _hu_image(scan, like.name, in_plane)
    if (mask.world is not None and not like.turned
            and np.allclose(mask.world, slice_affine(mask.spacing))):
        # At the origin, in the reference's order: see the module's notes.
        # (Of a turned reference, such a mask is in its stored order: it is
        # checked as placed, and refused.)
        mask = dataclasses.replace(mask, world=None)
        in_order = True
    else:
        in_order = False
    mask = in_reference_order(mask, like)
    check_same_grid(mask, like, f"the {option} mask ", mask_in_order=in_order)
    inside = mask.values > 0
    if not inside.any():
        raise InputError(mask.path, f"the {option} mask has no voxel (nothing above 0)")
    return inside


def _read_raw(source):
    """A mask's values as stored: read as MRI (NIfTI and image values as
    they are), or as CT where the reader wants CT (a DICOM mask of Modality
    CT, rescale applied)."""
    try:
        return read_scan(source, "mri")
    except InputError as error:
        if "Modality" not in error.problem:
            raise
        return read_scan(source, "ct")


def _hu_image(scan, name, spacing_2d):
    values, spacing = scan.values, scan.spacing
    if spacing is None:
        row, column = (1.0, 1.0) if spacing_2d is None else spacing_2d
        spacing = (1.0, float(row), float(column))
    if values.shape[0] == 1:
        values, spacing = values[0], spacing[1:]
    return HuImage(name, scan.path, values, tuple(round(float(s), 6) for s in spacing),
                   scan.world, scan.turned, scan)


def in_reference_order(image, reference):
    """`image` with its voxels in the reference's index order where both
    are placed in the patient and the image's axes are the reference's
    swapped or reversed (the same voxels stored in another order); else
    `image` as it is, for `check_same_grid` to judge."""
    if (image.world is None or reference.world is None or image.values.ndim != 3
            or reference.values.ndim != 3):
        return image
    # Reference index -> image index; a signed permutation where only the
    # storage order differs.
    try:
        to_image = np.linalg.inv(image.world) @ reference.world
    except np.linalg.LinAlgError:
        return image
    turn = np.round(to_image[:3, :3])
    if (np.abs(to_image[:3, :3] - turn).max() > DIRECTION_TOLERANCE
            or not np.array_equal(np.abs(turn).sum(axis=0), [1, 1, 1])
            or not np.array_equal(np.abs(turn).sum(axis=1), [1, 1, 1])
            or np.array_equal(turn, np.eye(3))):
        return image
    axes = [int(np.flatnonzero(turn[:, a])[0]) for a in range(3)]
    reversed_axes = [a for a in range(3) if turn[axes[a], a] < 0]
    values = np.flip(np.transpose(image.values, axes), axis=reversed_axes)
    # New index r holds old index turn @ r + offset (n - 1 on reversed axes).
    index = np.eye(4)
    index[:3, :3] = turn
    for a in reversed_axes:
        index[axes[a], 3] = image.values.shape[axes[a]] - 1
    return dataclasses.replace(image, values=np.ascontiguousarray(values),
                               spacing=tuple(image.spacing[b] for b in axes),
                               world=image.world @ index)


def check_same_grid(image, reference, what="", mask_in_order=False):
    """Raises InputError (naming `image.path`) unless `image` has the
    reference's shape and spacing and, where both are placed in the patient,
    its axis directions and first-voxel position. A volume placed where the
    other is not is refused, unless `mask_in_order` (a mask written at the
    origin, read in the reference's order)."""
    if image.values.shape != reference.values.shape:
        raise InputError(image.path, f"{what}has {_size(image.values.shape)} voxels, the "
                         f"reference {reference.path} {_size(reference.values.shape)}")
    spacing, want = np.array(image.spacing), np.array(reference.spacing)
    if np.any(np.abs(spacing - want) > SPACING_TOLERANCE * want):
        raise InputError(image.path, f"{what}has voxels of {_mm(spacing)} mm, the reference "
                         f"{reference.path} {_mm(want)} mm: resample it onto the reference's "
                         "grid first")
    # A volume: (slices, rows, columns) of more than one slice; a 2-D image
    # is (rows, columns), placed or not (a PNG mask of a 2-D case).
    volume = image.values.ndim == 3 and image.values.shape[0] > 1
    if (image.world is None) != (reference.world is None) and volume and not mask_in_order:
        # A volume whose header does not place it (a NIfTI without qform or
        # sform codes) was read with nibabel's guess of its orientation and
        # scored mirrored against a placed reference, unsaid.
        unplaced, placed = (image, reference) if image.world is None else (reference, image)
        raise InputError(image.path, f"{printable(unplaced.path)} has no position in the "
                         f"patient (a NIfTI with qform and sform codes 0, its orientation "
                         f"nibabel's guess), {printable(placed.path)} has: their voxels cannot "
                         "be matched in orientation; write both with the reference's affine")
    if image.world is None or reference.world is None:
        return
    # Both were cut into slices by their own headers: a header that puts the
    # voxels elsewhere (another orientation flips the array; another origin
    # shifts it) shows as a first voxel elsewhere or axes turned.
    axes, want_axes = (_unit_axes(w) for w in (image.world, reference.world))
    if np.abs(axes - want_axes).max() > DIRECTION_TOLERANCE:
        cosines = np.clip(np.sum(axes * want_axes, axis=0), -1.0, 1.0)
        raise InputError(image.path, f"{what}has its voxel axes ({_codes(image.world)}) turned "
                         f"{np.degrees(np.arccos(cosines.min())):.3g} degrees against the "
                         f"reference's {reference.path} ({_codes(reference.world)}): resample "
                         "it onto the reference's grid first")
    shift = np.linalg.norm(image.world[:3, 3] - reference.world[:3, 3])
    if shift > POSITION_TOLERANCE * min(reference.spacing):
        raise InputError(image.path, f"{what}starts {shift:.3g} mm away from the reference "
                         f"{reference.path} (first voxel at {_mm(image.world[:3, 3])} mm, the "
                         f"reference's at {_mm(reference.world[:3, 3])} mm, RAS): its header "
                         "places it elsewhere or flipped; write it on the reference's grid "
                         "first")


def _unit_axes(world):
    return world[:3, :3] / np.linalg.norm(world[:3, :3], axis=0)


def _codes(world):
    """The anatomical directions of the (slice, row, column) axes, as
    "SPL"."""
    import nibabel as nib

    return "".join(nib.aff2axcodes(world))


def _size(shape):
    return "x".join(str(n) for n in shape)


def _mm(values):
    return "x".join(f"{v:g}" for v in values)


def mask_file_name(name, planar):
    """`mask_<case>.nii.gz`, or `.png` for a 2-D case."""
    safe = name.replace("/", "_").replace(os.sep, "_")
    return f"mask_{safe}.png" if planar else f"mask_{safe}.nii.gz"


def slice_affine(spacing):
    """A NIfTI affine for an array of axial slices (slices running superior,
    rows posterior, columns to the patient's left) of `spacing` mm, origin 0."""
    depth, row, column = spacing
    return np.array([[0.0, 0.0, -column, 0.0], [0.0, -row, 0.0, 0.0],
                     [depth, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def write_mask(folder, reference, mask):
    """Writes the mask used beside the results: a NIfTI volume (uint8 0/1)
    on the grid of a NIfTI reference's file (its voxel order, affine and
    header), else of the reference's slices placed where the reference is
    (`world`; at `slice_affine` where it has no placement); or an 8-bit PNG
    (0, 255) for a 2-D case. Returns the file name."""
    import nibabel as nib

    os.makedirs(folder, exist_ok=True)
    name = mask_file_name(reference.name, mask.ndim == 2)
    path = os.path.join(folder, name)
    if mask.ndim == 2:
        write_png(path, np.where(mask, 255, 0).astype(np.uint8))
        return name
    scan = reference.scan
    if scan is not None and scan.values.shape == mask.shape and format_of(scan).write_mask(
            scan, mask.astype(np.uint8), path):
        return name
    affine = slice_affine(reference.spacing) if reference.world is None else reference.world
    image = nib.Nifti1Image(mask.astype(np.uint8), affine)
    image.header["descrip"] = b"vaecyclegan-eval: voxels scored"
    nib.save(image, path)
    return name
