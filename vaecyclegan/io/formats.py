"""The registry of file formats, and finding, reading and writing scans of
any of them.

`--input` may name an image file, a DICOM file, a NIfTI file, or a folder
holding any mix of them; DICOM files in a folder are grouped into series by
SeriesInstanceUID. Each result goes back to its input's format. The
functions here pick the `ScanFormat` (see `vaecyclegan.io.scan`) of a file,
source or scan and delegate to it: `FORMATS` lists one of each, in the
order a file is offered to them.
"""

import dataclasses
import logging
import os

from vaecyclegan.errors import InputError, printable
from vaecyclegan.io.dicom_format import DicomFormat
from vaecyclegan.io.image_format import ImageFormat
from vaecyclegan.io.nifti_format import NiftiFormat
from vaecyclegan.io.scan import (
    STD_FOLDER,
    ScanFormat,
    check_regular_file,
    file_path,
    list_folder,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FORMATS", "SKIPPED_NAMES", "STD_FOLDER", "SUPPORTED", "ScanFormat", "ScanSource",
    "find_scan_sources", "format_for_path", "format_of", "is_planar", "read_scan",
    "write_result", "write_std",
]

SUPPORTED = "PNG, JPEG, TIFF, BMP, DICOM (.dcm or none), NIfTI (.nii, .nii.gz)"
# DICOMDIR indexes a DICOM folder; it holds no image.
SKIPPED_NAMES = ("DICOMDIR",)
# Detection order: NIfTI first (a .nii.gz is nothing else), DICOM last (a
# file without extension is DICOM only if it carries the DICM mark).
FORMATS = (NiftiFormat(), ImageFormat(), DicomFormat())
_BY_NAME = {fmt.name: fmt for fmt in FORMATS}


def format_of(item):
    """The `ScanFormat` of a kind name ("image", "dicom", "nifti"), or of
    anything with a `kind` (a `Scan` or `ScanSource`).

    Raises:
        ValueError: no format has that name.
    """
    kind = item if isinstance(item, str) else item.kind
    try:
        return _BY_NAME[kind]
    except KeyError:
        raise ValueError(f"unknown scan format {kind!r} (known: {', '.join(_BY_NAME)})") from None


def format_for_path(path):
    """The first format in `FORMATS` that claims `path`, or None."""
    for fmt in FORMATS:
        if fmt.claims(path):
            return fmt
    return None


def is_planar(item):
    """Whether a `ScanSource` or `Scan` is a 2-D image file (the only input
    `--upscale` and `--reference` accept)."""
    return format_of(item).planar


@dataclasses.dataclass
class ScanSource:
    """An input before reading: its kind (format name), its files and its name."""

    kind: str
    paths: list
    name: str

    def output_names(self):
        """The file names its result is written under."""
        return format_of(self).output_names(self.paths)


def find_scan_sources(path, recursive=False, apart_from=()):
    """The scans `path` names: itself if a file, else each image, NIfTI
    volume and DICOM series directly inside the folder (single-file scans in
    file name order, then series), and with `recursive` inside its visible
    subfolders too (a PACS export's patient and series folders; links to
    folders followed, each folder and file read once, so a link loop ends,
    but none that leads above `path` or into a folder of `apart_from`, the
    dataset's other folders; a subfolder that cannot be listed is left out
    and said). DICOM files
    are grouped into series by SeriesInstanceUID, across subfolders where
    `recursive`. File names may hold any bytes: those that are not valid
    UTF-8 come as `os.listdir` gives them (surrogate escapes), and messages
    show them escaped (`InputError`).

    Args:
        path: a scan file (image, NIfTI or DICOM) or a folder of them.
        recursive: also read the folder's visible subfolders.
        apart_from: folders the search must not enter (with `recursive`):
            the dataset's other folders.

    Returns:
        A list of `ScanSource`s: single-file scans in file name order,
        then DICOM series.

    Raises:
        InputError: missing path, not a regular file (a named pipe, a
            device: never opened), unsupported file, a folder that cannot be
            listed or holds no scan.
    """
    path = file_path(path)
    if os.path.isdir(path):
        return _folder_sources(path, recursive, apart_from)
    # Looked at, not opened: a named pipe would block the DICOM check.
    check_regular_file(path, missing="input not found")
    fmt = format_for_path(path)
    if fmt is None:
        raise InputError(path, f"not a supported file ({SUPPORTED})")
    return [ScanSource(fmt.name, [path], os.path.basename(path))]


def _is_visible_file(folder, name):
    # Regular files only: a named pipe or device in the folder is left out
    # (isfile follows links and is False for anything else).
    return (not name.startswith(".") and name not in SKIPPED_NAMES
            and os.path.isfile(os.path.join(folder, name)))


def _folder_files(path, recursive, apart_from=()):
    """The visible regular files of folder `path` (and of its visible
    subfolders, where `recursive`, but none inside `apart_from`), sorted by
    path."""
    if not recursive:
        return sorted(os.path.join(path, name) for name in list_folder(path)
                      if _is_visible_file(path, name))

    unlisted, left_out = [], []

    def note(error):
        if os.path.realpath(error.filename or path) == os.path.realpath(path):
            raise InputError(path, f"folder cannot be listed ({error.strerror or error})")
        # A root-owned lost+found is no reason to stop: said, as unreadable files are.
        unlisted.append(f"{printable(error.filename)}: {error.strerror or error}")

    root = os.path.realpath(path)
    apart = [os.path.realpath(folder) for folder in apart_from if folder]

    def elsewhere(real):
        # Above the folder (a link to .. or /) its siblings would be read;
        # inside the other domain's or a test folder, their scans.
        return (os.path.commonpath([root, real]) == real
                or any(os.path.commonpath([real, folder]) == folder for folder in apart))

    def real_path(folder, name):
        # Only a link needs resolving (one lstat per path component): the
        # rest lies where its folder's real path says.
        joined = os.path.join(folder, name)
        return os.path.realpath(joined) if os.path.islink(joined) else os.path.join(
            real_of[folder], name)

    files, seen, seen_files, real_of = [], {root}, set(), {path: root}
    for folder, subfolders, names in os.walk(path, onerror=note, followlinks=True):
        # Links to folders are followed (a training set of linked patient
        # folders), each folder and file read once: a link loop ends there.
        kept = []
        for name in subfolders:
            if name.startswith("."):
                continue
            real = real_path(folder, name)
            if real in seen:
                continue
            seen.add(real)
            if elsewhere(real):
                left_out.append(printable(os.path.join(folder, name)))
            else:
                kept.append(name)
                real_of[os.path.join(folder, name)] = real
        subfolders[:] = kept
        for name in names:
            if not _is_visible_file(folder, name):
                continue
            real = real_path(folder, name)
            if real not in seen_files:
                seen_files.add(real)
                if elsewhere(real):
                    left_out.append(printable(os.path.join(folder, name)))
                else:
                    files.append(os.path.join(folder, name))
    if unlisted:
        logger.warning("%d subfolder(s) of %s cannot be listed and are left out:\n  %s",
                       len(unlisted), printable(path), "\n  ".join(unlisted))
    if left_out:
        logger.warning("%d link(s) in %s lead above it or into another folder of the dataset "
                       "and are left out:\n  %s", len(left_out), printable(path),
                       "\n  ".join(left_out))
    return sorted(files)


def _source_name(path, group, fmt):
    """A scan's name in messages: its file, or for a series its folder and
    file count, relative to the folder `path` that was searched."""
    if len(group) == 1:
        return os.path.relpath(group[0], path)
    inner = os.path.relpath(os.path.dirname(group[0]), path)
    folder = os.path.basename(os.path.normpath(path))
    if inner != os.curdir:
        folder = os.path.join(folder, inner)
    return f"{folder} ({len(group)} {fmt.label} files)"


def _folder_sources(path, recursive, apart_from=()):
    files = _folder_files(path, recursive, apart_from)
    claimed = {}
    for file in files:
        fmt = format_for_path(file)
        if fmt is not None:
            claimed.setdefault(fmt, []).append(file)
    position = {file: index for index, file in enumerate(files)}
    ranked = []
    for fmt, paths in claimed.items():
        for group in fmt.group(paths):
            rank = (fmt.series, position[group[0]])
            ranked.append((rank, ScanSource(fmt.name, group, _source_name(path, group, fmt))))
    if not ranked:
        subfolders = [] if recursive else subfolders_not_read(path)
        hint = (f"; its {len(subfolders)} subfolder(s), such as {subfolders[0]!r}, are not "
                "read: give one of them, or put the scans in this folder"
                if subfolders else "")
        where = "this folder or its subfolders" if recursive else "this folder"
        raise InputError(path, f"no image, DICOM or NIfTI file in {where} "
                         f"({SUPPORTED}){hint}")
    return [source for _, source in sorted(ranked, key=lambda item: item[0])]


def subfolders_not_read(path):
    """The visible subfolders of folder `path`, sorted: a folder's scans
    are the files directly inside it, so these are never read."""
    try:
        names = os.listdir(path)
    except OSError:
        return []
    return sorted(name for name in names if not name.startswith(".")
                  and os.path.isdir(os.path.join(path, name)))


def read_scan(source, domain, axis="axial"):
    """Reads a `ScanSource` as a `Scan` of `domain` ("ct" or "mri").

    Args:
        source: a `ScanSource` (`find_scan_sources`).
        domain: "ct" or "mri": CT is read in HU (DICOM, NIfTI, 16-bit
            images as HU + 1024), MRI as signal; 8-bit images are grey
            levels either way (`Scan.units`).
        axis: the plane volumes (NIfTI, DICOM series) are cut into slices
            along: "axial", "coronal" or "sagittal"; 2-D images are one
            slice whatever it is.

    Raises:
        InputError: the source cannot be read as a scan of `domain`, or its
            pixel spacing cannot be right (`Scan.spacing_refusal`).
    """
    scan = format_of(source).read(source, domain, axis)
    # Here, once for every format: a spacing near the float limit had
    # overflowed the size of the resampled slice in training and inference.
    refusal = scan.spacing_refusal()
    if refusal:
        raise InputError(scan.path, refusal)
    return scan


def write_result(scan, unit, domain, intensity, direction, target):
    """Writes a translated scan in its input's format.

    Args:
        scan: the input `Scan`.
        unit: the result, (slices, H, W) in [-1, 1].
        domain: the result's domain.
        intensity: the `IntensityConfig` of the weights.
        direction: for descriptions in DICOM and NIfTI headers.
        target: maps an output file name to the path to write.
    """
    format_of(scan).write(scan, unit, domain, intensity, direction, target)


def write_std(scan, std, scale, domain, intensity, target):
    """Writes a scan's deviation maps into `STD_FOLDER` beside its result:
    PNG heat maps for images and DICOM slices, a float32 volume in the
    output's units for NIfTI (see `ScanFormat.write_std`)."""
    format_of(scan).write_std(scan, std, scale, domain, intensity, target)
