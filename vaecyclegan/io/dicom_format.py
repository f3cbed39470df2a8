"""DICOM in and out: single files and series, Hounsfield units kept.

A series is read slice by slice (pydicom), sorted by position along the
slice normal, with the modality LUT applied (RescaleSlope/Intercept: CT in
HU). A series of several slices whose geometry is whole (positions and one
orientation on every slice, evenly spaced) is then cut along the axial
plane (or the one asked for) in radiological display orientation, as NIfTI
volumes are: its axes swapped and reversed as its direction cosines say,
nothing resampled (an oblique series is cut along its nearest plane). A
sagittal 3-D T1 series gives axial slices, a feet-first or prone one
slices the right way up; a series without that geometry is kept as stored.
A result is written as a new series of the same geometry: one file per
input file, with the input's file name, in the input's study, with new
Series/SOP UIDs, the input's frame of reference (so it overlays the input
in any viewer or planning system), `ImageType` DERIVED and a description
that says it is synthetic (and, for CT, through which HU window). An input
without plane geometry (position, orientation, spacing) gives Secondary
Capture files without a frame of reference, which no planning system
places. Synthetic CT is int16 HU (slope 1, intercept 0); synthetic MRI
is unsigned 0..4095 (`MR_SIGNAL_MAX`). `DicomFormat` is the `ScanFormat` of
DICOM files: a folder's files are grouped into series by SeriesInstanceUID.

Before a slice's pixels are used its header is checked: Modality CT or MR
(the one the direction translates), one frame, one sample, MONOCHROME1 or
MONOCHROME2, 8, 16 or 32 bits allocated and more than one stored, a size,
and the rescale (CT: RescaleSlope and RescaleIntercept required; CT and MR:
one finite number each, slope non-zero). MONOCHROME1 only says the lowest
value shows as white: CT stays in HU, MR grey levels are flipped over their
range so that they look as a viewer shows them. Anything pydicom or numpy
raise while reading, decoding or rescaling a file ends as one single-line
`InputError` naming the file, whatever its bytes.
"""

import contextlib
import dataclasses
import datetime
import io
import logging
import math
import os
import re
import struct
import warnings
import zlib

import numpy as np
import pydicom
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

import vaecyclegan
from vaecyclegan.errors import InputError, printable
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.image_format import MIN_SIDE, check_min_size, write_std_heat_maps
from vaecyclegan.io.intensity import MR_SIGNAL_MAX, unit_to_values
from vaecyclegan.io.memory_budget import (
    NotEnoughMemory,
    available_memory_bytes,
    check_fits_in_memory,
)
from vaecyclegan.io.scan import SLICE_ORIENTATION, Scan, ScanFormat

logger = logging.getLogger(__name__)

DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# Written where the input gives no plane geometry: CT and MR Image Storage
# require the Image Plane module, and a frame of reference without it would
# place the slices nowhere in particular.
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
PLANE_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
MODALITY = {"ct": "CT", "mri": "MR"}
# Type 2 elements (present, empty where unknown) of the patient, study and
# image modules a CT or MR Image Storage file carries; strict archives and
# validators reject a file without them.
TYPE2_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
              "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
              "InstanceNumber")
TYPE2_IMAGE_TAGS = {
    "ct": ("KVP", "AcquisitionNumber"),
    "mri": ("ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
            "EchoTrainLength"),
}
# Tags copied from each input slice: patient and study context, and the
# geometry that places the slice in the patient.
COPIED_TAGS = (
    "SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "PatientAge", "PatientWeight", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
    "ReferringPhysicianName", "StudyDescription", "BodyPartExamined", "PatientPosition",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "SliceLocation", "InstanceNumber", "AcquisitionNumber",
)
GEOMETRY_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                 "SliceThickness", "SpacingBetweenSlices", "SliceLocation", "FrameOfReferenceUID")
# Monochrome photometric interpretations; MONOCHROME1 shows its lowest value
# as white.
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
BITS_ALLOCATED = (8, 16, 32)
RESCALE_REQUIRED = ("a CT slice needs RescaleSlope and RescaleIntercept to give Hounsfield units "
                    "(the CT Image IOD requires both)")
# What pydicom and numpy raise on malformed files: reading, converting a
# header value, decoding pixels, rescaling (numpy's UFuncTypeError is a
# TypeError; warnings count where a caller turned them into errors).
# Groups of elements every image file holds (identification, patient,
# relationship, image); a file of none is not DICOM.
DESCRIBING_GROUPS = (0x0008, 0x0010, 0x0020, 0x0028)
# First bytes of formats a file named .dcm may really hold.
OTHER_FORMATS = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"II*\x00", "TIFF"),
                 (b"MM\x00*", "TIFF"), (b"BM", "BMP"), (b"\x1f\x8b", "gzip"),
                 (b"PK\x03\x04", "zip"))
READ_ERRORS = (InvalidDicomError, BytesLengthException, OSError, EOFError, ValueError, TypeError,
               AttributeError, LookupError, ArithmeticError, struct.error, zlib.error,
               MemoryError, RuntimeError, Warning)
# Bytes inflated at a time while a deflated data set's size is counted.
INFLATE_PIECE = 1 << 20
DECODER_HINT = ("pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, or python-gdcm, "
                "adds decoders pydicom can use")


@dataclasses.dataclass
class DicomSource:
    """What writing a result back needs: the input's headers (pixel data
    dropped) and file names, in the order the series is stored (sorted along
    its normal), and the orientation transform from the cut slices back to
    that order (None: they are that order)."""

    datasets: list
    file_names: list
    to_stored: np.ndarray = None

    def stored(self, volume):
        """`volume` (slices, H, W) of the cut slices in the stored order."""
        if self.to_stored is None:
            return volume
        return np.ascontiguousarray(apply_orientation(volume, self.to_stored))


def is_dicom_file(path):
    """A DICOM extension, or the DICM mark at byte 128 whatever the name:
    PACS exports name files by their UID (`1.2.840.113619.2.55.3.1234`,
    whose "extension" is `.1234`) or with none. Never raises: anything it
    cannot open is not DICOM."""
    try:
        extension = os.path.splitext(path)[1].lower()
        if extension in DICOM_EXTENSIONS:
            return True
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except (OSError, ValueError, TypeError):
        return False


@contextlib.contextmanager
def _quiet():
    """pydicom's and numpy's warnings silenced: what matters is checked
    and, when wrong, refused in one line; the rest would only add lines of
    noise to a command's output (or, turned into errors, stop it)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def read_header(path, pixels=False):
    """The dataset of a DICOM file, with its (still encoded) pixel data only
    when `pixels` is true."""
    try:
        if not os.path.exists(path):
            raise InputError(path, "file not found")
        if not os.path.isfile(path):
            raise InputError(path, "not a regular file")
        if os.path.getsize(path) == 0:
            raise InputError(path, "empty file (0 bytes)")
        _check_inflated_size(path)
        with _quiet():
            # force: files written without the 128-byte preamble are common.
            header = pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)
    except READ_ERRORS as error:
        raise InputError(path, f"not a readable DICOM file ({_reason(error)})") from None
    if header.preamble is None and not any(tag.group in DESCRIBING_GROUPS
                                           for tag in header.keys()):
        # Read by force, any file parses as some elements: one without the
        # preamble and without a single describing element is not DICOM (a
        # PNG named .dcm was "DICOM without pixel data").
        raise InputError(path, f"not a DICOM file ({_other_format(path)})")
    return header


def _check_inflated_size(path):
    """Refuses a deflated DICOM whose data set inflates past an eighth of
    the memory available, found by inflating it piece by piece and
    counting: pydicom inflates it whole before reading a single element
    (at twice the inflated size), so a file of a few megabytes that
    inflates to tens of gigabytes (a decompression bomb) took all the
    memory there was. No slice that could be translated comes near: its
    pixels, at most 4 bytes each, would need 12 times as much again
    (`memory_budget.BYTES_PER_PIXEL`). A file that is not deflated, or whose bytes
    pydicom will refuse anyway, passes untouched."""
    with open(path, "rb") as f, _quiet():
        try:
            pydicom.filereader.read_preamble(f, True)
            # pydicom inflates what follows the file meta and any command
            # set elements, which are never deflated.
            meta = pydicom.filereader._read_file_meta_info(f)
            pydicom.filereader._read_command_set_elements(f)
            deflated = meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
        except READ_ERRORS:
            return
        available = available_memory_bytes()
        if not deflated or available is None:
            return
        limit, inflated = available // 8, 0
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            # Bytes after the stream's end are ignored (pydicom does too).
            while not inflater.eof and inflated <= limit and (pending := f.read(INFLATE_PIECE)):
                while pending and inflated <= limit and not inflater.eof:
                    inflated += len(inflater.decompress(pending, INFLATE_PIECE))
                    pending = inflater.unconsumed_tail
        except zlib.error:
            return  # not a deflate stream: dcmread's message says so
    if inflated > limit:
        # A damaged or hostile file, not a shortfall of memory: training
        # skips it as unreadable.
        raise InputError(path, f"its deflated data set inflates to more than "
                         f"{limit / 2**30:,.3g} GiB, an eighth of the "
                         f"{available / 2**30:,.3g} GiB of memory available, more than any "
                         "image slice that could be translated: a decompression bomb?")


def _other_format(path):
    """What a file that is not DICOM looks like, from its first bytes."""
    with open(path, "rb") as f:
        start = f.read(8)
    for magic, name in OTHER_FORMATS:
        if start.startswith(magic):
            return f"it is a {name} file; name it for its format"
    return "no DICM preamble and no DICOM header element"


def group_series(paths):
    """Groups DICOM files by SeriesInstanceUID, keeping first-seen order; a
    file whose header cannot be read stays alone (reading it will say why).
    Never raises for what a file holds."""
    groups = {}
    for path in paths:
        key = ("file", path)
        try:
            with _quiet():
                uid = read_header(path).get("SeriesInstanceUID")
                if uid:
                    key = ("series", str(uid))
        except (InputError, *READ_ERRORS):
            pass
        groups.setdefault(key, []).append(path)
    return list(groups.values())


@dataclasses.dataclass
class _Slice:
    """A checked slice: its header and what reading its pixels needs."""

    path: str
    dataset: object
    position: tuple
    shape: tuple
    ct: bool
    rescale: tuple  # (slope, intercept), or None: the modality LUT sequence, or none
    invert: tuple  # (low, high) of the values to flip MONOCHROME1 MR over, or None


def read_dicom_series(paths, domain, name, axis="axial"):
    """Reads the files of one series as a `Scan`, cut along `axis` where its
    geometry allows (see the module's notes).

    Args:
        paths: the series' files (any order).
        domain: "ct" or "mri", what the translation expects.
        name: the scan's name in messages and reports.
        axis: "axial", "coronal" or "sagittal".

    Raises:
        InputError: unreadable file, no pixel data, a compression no
            installed decoder handles, another modality, a header that
            contradicts itself or the modality's rules (frames, samples,
            photometric interpretation, bit depths, size, rescale), mixed
            sizes; and whatever else pydicom or numpy raise on the file.
    """
    with _quiet():
        slices = sorted((_read_slice(path, domain) for path in paths),
                        key=lambda item: item.position)
        shapes = {item.shape for item in slices}
        if len(shapes) > 1:
            raise InputError(slices[0].path, f"series mixes slice sizes {sorted(shapes)}")
        values = np.stack([_slice_values(item) for item in slices])
    for item in slices:
        del item.dataset.PixelData  # the writer needs headers only
    ct = slices[0].ct
    spacing, world, to_stored = _series_spacing(slices), _series_world(slices), None
    if len(slices) > 1 and world is not None:
        cut = _cut(values, spacing, world, axis)
        rows, columns = cut[0].shape[1:]
        if cut[3] is None:
            pass
        elif min(rows, columns) < MIN_SIDE:
            # A few slices of another plane give slivers: kept as stored.
            logger.info("%s: its %d %s slices are translated as stored (cut along the %s "
                        "plane they would give %dx%d slices; --axis chooses the plane)", name,
                        len(slices), _plane(world), axis, columns, rows)
        else:
            logger.info("%s: %d %s slices, cut into %d %s slices of %dx%d", name, len(slices),
                        _plane(world), len(cut[0]), axis, columns, rows)
            values, spacing, world, to_stored = cut
    elif len(slices) > 1 and all(item.position[0] == 0 for item in slices):
        # A three-plane localizer is one series: in training it would mix
        # planes into one domain, unannounced. Said as the cuts are (a
        # command refusing the series says so in its one error line).
        planes = len(_orientations(slices))
        if planes > 1:
            logger.info("%s: its %d slices lie in %d orientations (a localizer?); each is "
                        "taken in its own plane, as stored", printable(name), len(slices),
                        planes)
    source = DicomSource([item.dataset for item in slices],
                         [os.path.basename(item.path) for item in slices], to_stored)
    return Scan(slices[0].path, DicomFormat.name, domain, values, "hu" if ct else "signal", name,
                source=source, spacing=spacing, spacing_problem=_spacing_problem(slices),
                world=world)


def _plane(world):
    """The plane of a world's slices: "axial", "coronal" or "sagittal"."""
    code = aff2axcodes(world)[0]
    return {"S": "axial", "I": "axial", "A": "coronal", "P": "coronal"}.get(code, "sagittal")


def _cut(values, spacing, world, axis):
    """A stored series' voxels, spacing and world turned to the slices of
    `axis`, with the transform back (None where nothing turns)."""
    stored = io_orientation(world)
    wanted = axcodes2ornt(SLICE_ORIENTATION[axis])
    to_slices = ornt_transform(stored, wanted)
    if np.array_equal(to_slices, [[0, 1], [1, 1], [2, 1]]):
        return values, spacing, world, None
    cut = np.ascontiguousarray(apply_orientation(values, to_slices))
    turned = [1.0, 1.0, 1.0]
    for stored_axis, (target, _) in enumerate(to_slices):
        turned[int(target)] = spacing[stored_axis]
    return (cut, tuple(turned), world @ inv_ornt_aff(to_slices, values.shape),
            ornt_transform(wanted, stored))


def _series_spacing(slices):
    """Voxel size in mm (slices, rows, columns): the mean distance between
    consecutive slices along the normal (SpacingBetweenSlices or
    SliceThickness for one slice, else 1), and PixelSpacing; None without
    a usable PixelSpacing."""
    try:
        header = slices[0].dataset
        row, column = (float(v) for v in header.PixelSpacing)
        distance = 0.0
        if len(slices) > 1 and all(item.position[0] == 0 for item in slices):
            distance = (slices[-1].position[1] - slices[0].position[1]) / (len(slices) - 1)
        if not distance:
            distance = float(header.get("SpacingBetweenSlices") or header.get("SliceThickness")
                             or 1.0)
    except Exception:  # any header bytes reach here: a spacing is optional
        return None
    spacing = (abs(distance), row, column)
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        return None
    return tuple(round(v, 6) for v in spacing)


# DICOM's patient coordinates (LPS+) to NIfTI's (RAS+).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _series_world(slices):
    """`Scan.world` of a series: the first slice's ImagePositionPatient,
    the in-plane axes of ImageOrientationPatient times PixelSpacing, and the
    step between the first and last slice's positions (one slice: the
    normal times SliceThickness). None without geometry on every slice, with
    several orientations, or with uneven spacing."""
    spacing = _series_spacing(slices)
    if (spacing is None or _spacing_problem(slices)
            or not all(item.position[0] == 0 for item in slices)
            or len(_orientations(slices)) != 1):
        return None
    try:
        first, last = (np.asarray([float(v) for v in item.dataset.ImagePositionPatient])
                       for item in (slices[0], slices[-1]))
        orientation = np.asarray([float(v) for v in slices[0].dataset.ImageOrientationPatient])
    except Exception:  # any header bytes reach here: the geometry is optional
        return None
    along_row, along_column = orientation[:3], orientation[3:]
    if len(slices) > 1:
        step = (last - first) / (len(slices) - 1)
    else:
        step = np.cross(along_row, along_column) * spacing[0]
    world = np.eye(4)
    # Index order (slice, row, column): a row index moves down a column
    # (the second direction cosine), a column index along a row (the first).
    world[:3, 0] = step
    world[:3, 1] = along_column * spacing[1]
    world[:3, 2] = along_row * spacing[2]
    world[:3, 3] = first
    world = LPS_TO_RAS @ world
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(world)):
            return None
        try:
            axes = io_orientation(world)
        except (ValueError, np.linalg.LinAlgError):
            return None
    # Finite but degenerate (a step far longer than the pixels, spacings
    # near the float limit): no axis of the world is a slice axis, and
    # cutting the series along one failed with a traceback.
    return None if np.isnan(axes).any() else world


def _spacing_problem(slices):
    """What makes a series' slices unevenly spaced, or None: the mean
    distance `_series_spacing` gives would put a slice after a gap (a
    missing slice), two slices at one position (two echoes, say) or slices
    of several orientations in the wrong place for anything measured in
    3-D."""
    if len(slices) < 2 or not all(item.position[0] == 0 for item in slices):
        return None
    orientations = _orientations(slices)
    if len(orientations) > 1:
        # Each slice sorted along its own normal: no one axis orders them.
        return (f"the series' slices lie in {len(orientations)} orientations "
                "(ImageOrientationPatient)")
    gaps = np.diff([item.position[1] for item in slices])
    if np.any(gaps < 1e-3):
        return "two slices of the series lie at one position"
    # Half a percent: positions are written with a few decimals.
    if gaps.max() - gaps.min() > 0.005 * gaps.mean() + 1e-3:
        return (f"the series' slices are unevenly spaced ({gaps.min():.3g} to "
                f"{gaps.max():.3g} mm apart; a slice missing?)")
    return None


def _orientations(slices):
    """The distinct ImageOrientationPatient of `slices` (to 1e-3), as read
    for their positions (which checked them)."""
    return {tuple(np.round(np.asarray([float(v) for v in item.dataset.ImageOrientationPatient]),
                           3) + 0.0) for item in slices}


def _read_slice(path, domain):
    header = read_header(path, pixels=True)
    try:
        return _checked_slice(path, header, domain)
    except READ_ERRORS as error:
        raise InputError(path, f"DICOM header cannot be read ({_reason(error)})") from None


def _checked_slice(path, header, domain):
    """The checks a slice's header must pass before its pixels are used."""
    if "PixelData" not in header:
        raise InputError(path, f"DICOM without pixel data ({_kind(header)}): nothing to "
                         "translate")
    modality = _modality(path, header)
    expected = MODALITY[domain]
    if modality != expected:
        # Worded for every reader: an input to translate, a prediction or
        # a reference to score, training data.
        raise InputError(path, f"Modality is {modality} where {expected} is expected")
    frames = _integer(path, header, "NumberOfFrames", default=1)
    if frames < 1:
        raise InputError(path, f"NumberOfFrames is {frames}: a slice needs at least one frame")
    if frames > 1:
        raise InputError(path, "multi-frame DICOM is not supported; export the series as "
                         "single-frame files")
    photometric = _text(path, header, "PhotometricInterpretation")
    if _integer(path, header, "SamplesPerPixel", default=1) != 1:
        raise InputError(path, f"colour DICOM ({photometric or 'SamplesPerPixel > 1'}): "
                         "CT and MR slices are monochrome")
    if photometric not in MONOCHROME:
        shown = _show(photometric) if photometric else "missing"
        raise InputError(path, f"PhotometricInterpretation {shown}: CT and MR slices are "
                         "monochrome (MONOCHROME1 or MONOCHROME2)")
    _check_bits(path, header)
    rows, columns = _integer(path, header, "Rows"), _integer(path, header, "Columns")
    if rows < 1 or columns < 1:
        raise InputError(path, f"Rows {rows}, Columns {columns}: a slice needs at least one "
                         "row and one column")
    check_min_size(path, (rows, columns))
    _check_pixel_data_length(path, header, rows, columns)
    check_fits_in_memory(path, rows * columns, f"slice is {columns}x{rows}")
    ct = modality == "CT"
    rescale = _rescale(path, header, ct)
    invert = None
    if photometric == "MONOCHROME1" and not ct:
        # MONOCHROME1 shows the lowest value as white. CT values are
        # Hounsfield units whatever the display, but MR values are only grey
        # levels: flipped over their range, they look as a viewer shows them.
        invert = _value_range(header, rescale)
    position = _slice_position(path, header)
    _check_copyable(path, header)
    return _Slice(path, header, position, (rows, columns), ct, rescale, invert)


def _check_pixel_data_length(path, header, rows, columns):
    """Refuses uncompressed pixel data shorter than the header's size:
    a file cut short, or a header that is wrong. Checked before the memory
    a slice needs, which a Rows x Columns of 65535 x 65535 over a few
    bytes had been refused for ("needs 192 GiB"), sending the user the
    wrong way. Compressed data's length says nothing of its size."""
    if _compression(header) is not None:
        return
    bits = _integer(path, header, "BitsAllocated")
    needed = (rows * columns * bits + 7) // 8
    try:
        held = len(header.PixelData)
    except READ_ERRORS as error:
        raise InputError(path, f"pixel data cannot be read ({_reason(error)})") from None
    if held < needed:
        raise InputError(path, f"its pixel data holds {held:,} bytes where the header's "
                         f"{columns}x{rows} pixels of {bits} bits need {needed:,}: the file "
                         "is cut short or its header is wrong")


def _kind(header):
    """"Modality X" or "SOP class Y", for a message; "unknown" where
    neither can be read."""
    for keyword, label in (("Modality", "Modality"), ("SOPClassUID", "SOP class")):
        try:
            value = header.get(keyword)
        except READ_ERRORS:
            value = None
        if value:
            return f"{label} {_show(value)}"
    return "Modality unknown"


def _check_copyable(path, header):
    """Refuses a header whose copied tags the writer could not write: a
    value pydicom keeps on reading (as text) may fail once set on the
    result."""
    scratch = Dataset()
    for keyword in COPIED_TAGS:
        value = _element(path, header, keyword)
        if keyword not in header:
            continue
        try:
            setattr(scratch, keyword, header.data_element(keyword).value)
        except READ_ERRORS as error:
            raise InputError(path, f"{keyword} {_show(value)} cannot be copied into the result "
                             f"({_reason(error)})") from None
    try:
        scratch.SeriesDescription = str(header.get("SeriesDescription", "")).strip()[:64]
        scratch.DerivationDescription = f"from series {header.get('SeriesInstanceUID')}"
        scratch.ReferencedSOPClassUID = header.get("SOPClassUID", "")
        scratch.ReferencedSOPInstanceUID = header.get("SOPInstanceUID", "")
        scratch.SeriesNumber = _series_number(header) + 1000
        pydicom.dcmwrite(io.BytesIO(), scratch, implicit_vr=False, little_endian=True)
    except READ_ERRORS as error:
        raise InputError(path, f"header cannot be copied into the result ({_reason(error)})") \
            from None


def _modality(path, header):
    """CT or MR (from Modality, else from the SOP class); InputError for
    anything else."""
    modality = _text(path, header, "Modality")
    if not modality:
        sop_class = _text(path, header, "SOPClassUID")
        known = {CT_IMAGE_STORAGE: "CT", MR_IMAGE_STORAGE: "MR"}
        if sop_class in known:
            return known[sop_class]
        raise InputError(path, f"no Modality (SOP class {_show(sop_class or 'missing')}): "
                         "only CT and MR slices can be translated")
    if modality not in MODALITY.values():
        raise InputError(path, f"Modality {_show(modality)}: only CT and MR slices can be "
                         "translated")
    return modality


def _check_bits(path, header):
    allocated = _integer(path, header, "BitsAllocated")
    stored = _integer(path, header, "BitsStored", default=allocated)
    if allocated == 1 or stored == 1:
        raise InputError(path, "1-bit pixel data is a mask (a segmentation), not a CT or MR "
                         "image")
    if allocated not in BITS_ALLOCATED:
        raise InputError(path, f"BitsAllocated is {allocated}: only 8, 16 or 32 bits per pixel "
                         "are read")
    if not 1 <= stored <= allocated:
        raise InputError(path, f"BitsStored is {stored}, outside 1..{allocated} "
                         f"(BitsAllocated)")
    representation = _integer(path, header, "PixelRepresentation", default=0)
    if representation not in (0, 1):
        raise InputError(path, f"PixelRepresentation is {representation}: 0 (unsigned) or 1 "
                         "(signed)")


def _rescale(path, header, ct):
    """(slope, intercept) to apply, after checking them; None where an MR
    slice has none (its modality LUT sequence, if any, then applies)."""
    present = [keyword for keyword in ("RescaleSlope", "RescaleIntercept") if keyword in header]
    if ct:
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword not in present:
                raise InputError(path, f"{keyword} missing: {RESCALE_REQUIRED}")
    elif not present:
        return None
    slope = _number(path, header, "RescaleSlope", 1.0, RESCALE_REQUIRED if ct else "")
    intercept = _number(path, header, "RescaleIntercept", 0.0, RESCALE_REQUIRED if ct else "")
    if slope == 0:
        raise InputError(path, "RescaleSlope is 0: every pixel would get the same value")
    return slope, intercept


def _value_range(header, rescale):
    """The lowest and highest value the modality LUT can give."""
    if rescale is None and header.get("ModalityLUTSequence"):
        depth = int(header.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    bits = int(header.BitsStored)
    low, high = (0, 2**bits - 1) if int(header.get("PixelRepresentation", 0)) == 0 else (
        -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if rescale is not None:
        slope, intercept = rescale
        low, high = sorted((low * slope + intercept, high * slope + intercept))
    return float(low), float(high)


def _element(path, header, keyword):
    """The value of `keyword` (None when absent); InputError naming it when
    pydicom cannot convert it."""
    try:
        return header.get(keyword)
    except READ_ERRORS as error:
        raise InputError(path, f"{keyword} cannot be read ({_reason(error)})") from None


def _single(path, keyword, value):
    """The one value of a single-valued element; InputError when it holds
    several."""
    if isinstance(value, (list, tuple, MultiValue)):
        if len(value) != 1:
            raise InputError(path, f"{keyword} holds {len(value)} values ({_show(value)}), "
                             "not one")
        value = value[0]
    return value


def _text(path, header, keyword):
    """A code string's value, stripped ("" when absent or empty)."""
    value = _single(path, keyword, _element(path, header, keyword))
    return "" if value is None else str(value).strip()


def _integer(path, header, keyword, default=None):
    """A whole number; `default` when absent or empty (None: required)."""
    value = _single(path, keyword, _element(path, header, keyword))
    if value is None or value == "":
        if default is None:
            raise InputError(path, f"{keyword} {'missing' if value is None else 'is empty'}")
        return default
    try:
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, bytes):
            raise ValueError(value)
        return int(str(value).strip())
    except (ValueError, TypeError, OverflowError):
        raise InputError(path, f"{keyword} {_show(value)} is not a whole number") from None


def _number(path, header, keyword, default, why):
    """A finite number; `default` when absent; InputError when empty,
    several values, text or not finite (`why`: what needs it)."""
    if keyword not in header:
        return default
    because = f": {why}" if why else ""
    value = _single(path, keyword, _element(path, header, keyword))
    if value is None or str(value).strip() == "":
        raise InputError(path, f"{keyword} is empty{because}")
    try:
        number = float(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError(path, f"{keyword} {_show(value)} is not a number{because}") from None
    if not math.isfinite(number):
        raise InputError(path, f"{keyword} is {_show(value)}, not a finite number{because}")
    return number


def _slice_values(item):
    path, dataset = item.path, item.dataset
    try:
        pixels = dataset.pixel_array
    except MemoryError:
        # The memory left, not the file: training stops rather than skip it.
        raise NotEnoughMemory(path, "not enough memory to decode its pixel data") from None
    except Exception as error:  # noqa: BLE001 -- pydicom raises several types per decoder
        compression = _compression(dataset)
        if compression:
            raise InputError(path, f"pixel data compressed as {compression}, which no installed "
                             f"decoder handles ({DECODER_HINT})") from None
        raise InputError(path, f"pixel data cannot be decoded ({_reason(error)})") from None
    if pixels.shape != item.shape:
        raise InputError(path, f"pixel data decodes to shape {pixels.shape}, not Rows x Columns "
                         f"{item.shape}")
    try:
        if item.rescale is not None:
            slope, intercept = item.rescale
            values = pixels.astype(np.float64) * slope + intercept
        else:  # an MR modality LUT sequence, or nothing to apply
            values = apply_modality_lut(pixels, dataset)
        values = np.asarray(values, dtype=np.float64)
        if item.invert is not None:
            low, high = item.invert
            values = (low + high) - values
        values = values.astype(np.float32)
    except MemoryError:
        raise NotEnoughMemory(path, "not enough memory to rescale its pixel data") from None
    except READ_ERRORS as error:
        raise InputError(path, f"modality LUT cannot be applied ({_reason(error)})") from None
    if not np.isfinite(values).all():
        raise InputError(path, "rescaled values overflow (RescaleSlope "
                         f"{_show(dataset.get('RescaleSlope'))}, RescaleIntercept "
                         f"{_show(dataset.get('RescaleIntercept'))})")
    return values


def _compression(dataset):
    """The name of the compressed transfer syntax of the pixel data, or None."""
    try:
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        return syntax.name if syntax is not None and syntax.is_compressed else None
    except READ_ERRORS:
        return None


def _slice_position(path, dataset):
    """Distance along the slice normal; InstanceNumber when geometry is
    missing."""
    position = _element(path, dataset, "ImagePositionPatient")
    orientation = _element(path, dataset, "ImageOrientationPatient")
    if position is not None and orientation is not None:
        position = _vector(path, "ImagePositionPatient", position, 3)
        orientation = _vector(path, "ImageOrientationPatient", orientation, 6)
        normal = np.cross(orientation[:3], orientation[3:])
        return (0, float(np.dot(normal, position)))
    instance = _single(path, "InstanceNumber", _element(path, dataset, "InstanceNumber"))
    try:
        number = float(instance or 0)
    except (ValueError, TypeError, OverflowError):
        raise InputError(path, f"InstanceNumber {_show(instance)} is not a number") from None
    return (1, number if math.isfinite(number) else 0.0)


def _vector(path, keyword, value, count):
    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        vector = np.asarray([float(v) for v in values], dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        vector = None
    if vector is None or len(vector) != count or not np.isfinite(vector).all():
        raise InputError(path, f"{keyword} {_show(value)} is not {count} finite numbers")
    return vector


def write_dicom_series(folder, scan, unit, domain, intensity, direction, write_name=None):
    """Writes translated slices as a new DICOM series into `folder`.

    Args:
        folder: where the files go (one per input file, same names).
        scan: the input `Scan` (kind "dicom").
        unit: the result, (slices, H, W) in [-1, 1].
        domain: the result's domain, "ct" or "mri".
        intensity: the `IntensityConfig` of the weights.
        direction: "mri2ct" or "ct2mri", for the description.
        write_name: maps an output file name to the path actually written
            (the caller stages files); default: `folder/name`.

    Returns:
        The written paths.
    """
    source = scan.source
    unit = source.stored(unit)
    if unit.shape[0] != len(source.datasets) or any(
            unit.shape[1:] != (int(d.Rows), int(d.Columns)) for d in source.datasets):
        # The input's geometry is copied: a result on another grid would be
        # placed wrong.
        raise ValueError(f"a result of shape {unit.shape} for a series of "
                         f"{len(source.datasets)} slices of {source.datasets[0].Rows}x"
                         f"{source.datasets[0].Columns}")
    # The input's study (a new one where it has none, or none valid): the
    # synthetic series sits beside the MRI it came from, as vendors'
    # synthetic CT does.
    study_uid = _valid_uid(source.datasets[0].get("StudyInstanceUID")) or generate_uid()
    series_uid = generate_uid()
    now = datetime.datetime.now()
    label = {"ct": "Synthetic CT", "mri": "Synthetic MR"}[domain]
    original = str(source.datasets[0].get("SeriesDescription", "")).strip()
    description = f"{label} ({direction})" + (f" of {original}" if original else "")
    written = []
    with _quiet():  # values copied from the input may not be valid DICOM: no warnings
        for index, (dataset, name) in enumerate(zip(source.datasets, source.file_names)):
            output = _derived_slice(dataset, unit[index], domain, intensity)
            output.StudyInstanceUID, output.SeriesInstanceUID = study_uid, series_uid
            output.SeriesNumber = _series_number(dataset) + 1000
            output.SeriesDescription = description[:64]
            window = (" through a CT window of {:g} to {:g} HU".format(*intensity.ct_window_hu)
                      if domain == "ct" else "")
            output.DerivationDescription = (
                f"{label} translated by vaecyclegan {vaecyclegan.__version__} ({direction}) from "
                f"series {dataset.get('SeriesInstanceUID', 'unknown')}{window}; not an acquired "
                "image.")
            output.SeriesDate = output.ContentDate = now.strftime("%Y%m%d")
            output.SeriesTime = output.ContentTime = now.strftime("%H%M%S")
            path = write_name(name) if write_name else os.path.join(folder, name)
            with atomic_path(path) as tmp:
                output.save_as(tmp, enforce_file_format=True)
            written.append(path)
    return written


def _valid_uid(value):
    """`value` as one valid UID string, or None (several values, not a UID,
    over 64 characters: copied, it made an invalid file)."""
    if not isinstance(value, (str, bytes)):
        return None
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else value
        with _quiet():
            return text if UID(text).is_valid else None
    except (UnicodeDecodeError, ValueError, TypeError):
        return None


def _series_number(dataset):
    """The input's SeriesNumber, 0 when it is missing or not a usable number."""
    try:
        number = int(dataset.get("SeriesNumber", 0) or 0)
    except READ_ERRORS:
        return 0
    return number if 0 <= number < 2**31 - 1000 else 0


def _has_value(dataset, keyword):
    """Present and not empty: an empty element places nothing either."""
    value = dataset.get(keyword)
    if isinstance(value, (list, tuple, MultiValue)):
        # "\\" reads as three empty values: none of them places anything.
        return len(value) > 0 and all(v not in (None, "", b"") for v in value)
    return value not in (None, "", b"")


def _derived_slice(dataset, unit, domain, intensity):
    output = Dataset()
    placed = all(_has_value(dataset, keyword) for keyword in PLANE_TAGS)
    for keyword in COPIED_TAGS:
        if keyword in dataset and (placed or keyword not in GEOMETRY_TAGS):
            setattr(output, keyword, dataset.data_element(keyword).value)
    for keyword in TYPE2_TAGS + TYPE2_IMAGE_TAGS[domain]:
        if keyword not in output:
            setattr(output, keyword, None)
    if placed:
        output.SOPClassUID = CT_IMAGE_STORAGE if domain == "ct" else MR_IMAGE_STORAGE
    else:
        output.SOPClassUID, output.ConversionType = SECONDARY_CAPTURE_STORAGE, "WSD"
    output.SOPInstanceUID = generate_uid()
    output.Modality = MODALITY[domain]
    if domain == "mri":
        # Type 1 in the MR Image module: "research mode", no sequence variant.
        output.ScanningSequence, output.SequenceVariant = "RM", "NONE"
    output.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC"]
    output.Manufacturer = "vaecyclegan"
    output.SoftwareVersions = vaecyclegan.__version__
    output.BurnedInAnnotation = "NO"
    reference = Dataset()
    reference.ReferencedSOPClassUID = dataset.get("SOPClassUID", "")
    reference.ReferencedSOPInstanceUID = dataset.get("SOPInstanceUID", "")
    output.SourceImageSequence = Sequence([reference])
    output.SamplesPerPixel, output.PhotometricInterpretation = 1, "MONOCHROME2"
    output.Rows, output.Columns = unit.shape
    output.BitsAllocated = 16
    if domain == "ct":
        # Clipped to int16: a CT window beyond its range wrapped round.
        pixels = np.clip(np.round(unit_to_values(unit, "hu", intensity)), -32768,
                         32767).astype(np.int16)
        output.BitsStored, output.HighBit, output.PixelRepresentation = 16, 15, 1
        output.RescaleIntercept, output.RescaleSlope, output.RescaleType = 0, 1, "HU"
        low, high = intensity.ct_window_hu
        output.WindowCenter = [40, (low + high) / 2]
        output.WindowWidth = [80, high - low]
        output.WindowCenterWidthExplanation = ["BRAIN", "FULL"]
    else:
        pixels = np.round(unit_to_values(unit, "signal", intensity)).astype(np.uint16)
        output.BitsStored, output.HighBit, output.PixelRepresentation = 12, 11, 0
        output.WindowCenter, output.WindowWidth = MR_SIGNAL_MAX / 2, MR_SIGNAL_MAX + 1
    output.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = output.SOPClassUID
    meta.MediaStorageSOPInstanceUID = output.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    output.file_meta = meta
    return output


def _reason(error):
    """An exception as one line of reason: its words on one line, cut to a
    readable length."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _show(value):
    """A header value as one short quoted line, for messages."""
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    text = str(value) if not isinstance(value, bytes) else repr(value)
    if not re.fullmatch(r"[\w.+\-]{1,60}", text, flags=re.ASCII):
        text = repr(text)  # quoted, with what cannot be printed escaped
    return text if len(text) <= 60 else text[:57] + "..."


class DicomFormat(ScanFormat):
    """DICOM files: a series (one file per slice) is one scan; its result
    is a new series, one file per input file under the input's name, and
    its deviation maps one PNG heat map per slice."""

    name = "dicom"
    label = "DICOM"
    series = True

    def claims(self, path):
        return is_dicom_file(path)

    def group(self, paths):
        return group_series(paths)

    def output_names(self, paths):
        return [os.path.basename(path) for path in paths]

    def read(self, source, domain, axis="axial"):
        return read_dicom_series(source.paths, domain, source.name, axis)

    def write(self, scan, unit, domain, intensity, direction, target):
        write_dicom_series(None, scan, unit, domain, intensity, direction, write_name=target)

    def write_std(self, scan, std, scale, domain, intensity, target):
        write_std_heat_maps([heat_map_name(name) for name in scan.source.file_names],
                            scan.source.stored(std), scale, target)


def heat_map_name(file_name):
    """The heat map of a DICOM file: its name without a DICOM extension,
    + .png. Only a DICOM extension goes: PACS exports name files by their
    UID, whose last part is no extension (`1.2.840.113619.2.55.3.1` and
    `.2` would both have become `1.2.840.113619.2.55.3.png`)."""
    stem, extension = os.path.splitext(file_name)
    return (stem if extension.lower() in DICOM_EXTENSIONS else file_name) + ".png"
