"""What every file format shares: `Scan`, one input held in memory as a
stack of slices in physical units, and `ScanFormat`, the interface each
format (image, DICOM, NIfTI) implements to find, read and write scans.

The formats themselves live in `image_format`, `dicom_format` and
`nifti_format`; `formats` holds their registry. `check_regular_file` and
`open_regular_file` are how readers look at and open a file: only regular
files, so that a named pipe or a device is refused rather than opened (an
open FIFO blocks, /dev/zero never ends).
"""

import dataclasses
import errno
import os
import stat

import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.intensity import values_to_unit

# The folder, inside the output folder, that deviation maps are written to.
STD_FOLDER = "std"
# Voxel axis order (slice, row, column) of the slices a volume is cut into
# (NIfTI; DICOM series with their geometry), per cut; a letter names the
# direction the index runs towards: radiological display orientation.
SLICE_ORIENTATION = {
    "axial": ("S", "P", "L"),
    "coronal": ("A", "I", "L"),
    "sagittal": ("L", "I", "P"),
}
# No scan of a body spans more than this along a side of its slices (a
# whole body cut coronally, head to toe, is about 2 m): a pixel spacing
# that says more is wrong (other units, or bytes that are no spacing), and
# resampling by it to a training scale would need an image beyond memory.
MAX_FIELD_MM = 5000.0
# What a path is when it is not a regular file, for messages.
_FILE_TYPES = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP)


def file_path(path):
    """`path` (str, bytes or path-like) as a str; undecodable bytes of a
    file name become surrogate escapes, as `os.listdir` gives them."""
    return os.fsdecode(os.fspath(path))


def list_folder(path):
    """`os.listdir(path)`, or one line naming the folder when it cannot be
    listed (no permission, gone since it was found).

    Raises:
        InputError: the folder cannot be listed.
    """
    try:
        return os.listdir(path)
    except OSError as error:
        raise InputError(path, f"folder cannot be listed ({error.strerror or error})") from None


def check_regular_file(path, missing="file not found"):
    """The size of the regular file at `path`, looked at without opening it.

    Raises:
        InputError: `missing` when there is nothing at `path`; "not a
            regular file" for a folder, named pipe, socket or device; the
            system's reason when it cannot be looked at.
    """
    try:
        info = os.stat(path)
    except ValueError:  # an embedded NUL: no file can have that name
        raise InputError(path, missing) from None
    except OSError as error:
        if error.errno in _MISSING:
            raise InputError(path, missing) from None
        raise InputError(path, f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_TYPES if test(info.st_mode)), "special file")
        raise InputError(path, f"not a regular file but {kind}")
    return info.st_size


def open_regular_file(path, missing="file not found"):
    """Opens a non-empty regular file for reading in binary.

    The file is checked before it is opened (`check_regular_file`), and
    opened without blocking and checked again, so that a named pipe put in
    its place meanwhile is still never waited on.

    Raises:
        InputError: missing, not a regular file, empty, or unreadable.
    """
    if check_regular_file(path, missing) == 0:
        raise InputError(path, "empty file (0 bytes)")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno in _MISSING:
            raise InputError(path, missing) from None
        raise InputError(path, f"cannot be read ({error.strerror or error})") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        if regular:
            return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    raise InputError(path, "not a regular file")


@dataclasses.dataclass
class Scan:
    """Slices of one input and what is needed to write a result back in kind.

    Args:
        path: the file (or, for a DICOM series, the first file) it came from.
        kind: the `ScanFormat.name` of its format: "image", "dicom" or "nifti".
        domain: "ct" or "mri".
        values: float32 (slices, H, W) in `units`.
        units: "hu", "signal" or "grey" (see `values_to_unit`).
        full_scale: the grey level of white, for "grey" units.
        source: what the format's writer needs (pixel dtype; DICOM datasets;
            NIfTI header, affine and orientation).
        output_name: file (or folder) name of the result.
        spacing: voxel size in mm along the axes of `values` (slices,
            rows, columns), where the file says it (NIfTI, DICOM); None
            where it does not (image files).
        spacing_problem: why `spacing[0]` is not the distance between
            every two neighbouring slices (a DICOM series with a gap or two
            slices at one position), or None; 3-D measures refuse it.
        world: 4x4 affine from indices of `values` (slice, row, column) to
            the patient's position in mm, RAS+ as NIfTI writes it (DICOM's
            LPS turned), where the file says it; None where it does not
            (image files, DICOM without geometry or of several orientations).
            Evaluation uses it to refuse pairs that only share a shape.

    Example:
    >>> from pydicom.data import get_testdata_file
    >>> from vaecyclegan.config import IntensityConfig
    >>> from vaecyclegan.io.formats import find_scan_sources, read_scan
    >>> [source] = find_scan_sources(get_testdata_file("MR_small.dcm"))
    >>> scan = read_scan(source, "mri")
    >>> scan.kind, scan.units, scan.values.shape
    ('dicom', 'signal', (1, 64, 64))
    >>> unit = scan.to_unit(IntensityConfig())
    >>> unit.shape, float(unit.min()), float(unit.max())
    ((1, 64, 64), -1.0, 1.0)
    """

    path: str
    kind: str
    domain: str
    values: np.ndarray
    units: str
    output_name: str
    full_scale: float = 255.0
    source: object = None
    spacing: tuple = None
    spacing_problem: str = None
    world: np.ndarray = None

    def to_unit(self, intensity):
        return values_to_unit(self.values, self.units, intensity, self.full_scale)

    @property
    def slice_count(self):
        return self.values.shape[0]

    @property
    def turned(self):
        """Whether the reader cut the voxels in another order than the file
        stores them (a DICOM series of another plane, feet-first or prone;
        NIfTI volumes are cut by their affine and written back likewise)."""
        return getattr(self.source, "to_stored", None) is not None

    @property
    def pixel_mm(self):
        """The in-plane pixel size in mm, `(rows, columns)`: the two differ
        where pixels are not square (a coronal or sagittal cut through
        thick slices), and each axis is resampled by its own. None where
        the file gives no usable spacing."""
        if not self.spacing:
            return None
        rows, columns = (float(v) for v in self.spacing[1:3])
        if not (np.isfinite(rows) and np.isfinite(columns) and rows > 0 and columns > 0):
            return None
        return (rows, columns)

    def spacing_refusal(self):
        """Why the scan's pixel spacing cannot be right (its slices would
        span more than `MAX_FIELD_MM`), in words for `InputError`; None
        where it can, or where there is none.

        Example:
        >>> scan = Scan("a.nii", "nifti", "ct", np.zeros((1, 64, 64), "float32"), "hu", "a",
        ...             spacing=(1.0, 300.0, 300.0))
        >>> scan.spacing_refusal().split(", more")[0]
        'its 64x64 slices of 300 x 300 mm pixels would span 19,200 mm'
        """
        if self.pixel_mm is None:
            return None
        extent = max(n * mm for n, mm in zip(self.values.shape[1:], self.pixel_mm))
        if extent <= MAX_FIELD_MM:
            return None
        rows, columns = self.values.shape[1:]
        # Across by down, as the slices' size reads.
        across, down = self.pixel_mm[1], self.pixel_mm[0]
        return (f"its {columns}x{rows} slices of {across:.3g} x {down:.3g} mm pixels would span "
                f"{extent:,.0f} mm, more than any body ({MAX_FIELD_MM:,.0f} mm); check its "
                "pixel spacing")


class ScanFormat:
    """One file format: which files are its own, how they group into scans,
    and how a scan is read and its results written.

    Subclasses set the class attributes and implement `claims`, `read`,
    `write` and `write_std`; the other methods have defaults that suit
    formats holding one scan per file. The registry in `formats` keeps one
    instance of each and picks the format of a file, scan or source.

    Attributes:
        name: the `Scan.kind` (and `ScanSource.kind`) of its scans.
        label: the format's name in messages ("DICOM", "NIfTI").
        planar: True for 2-D image files, the only input `--upscale` and
            `--reference` accept.
        series: True when one scan may span several files (`group` joins
            them); such scans come after single-file ones in a folder.

    Example:
    >>> import nibabel as nib
    >>> from vaecyclegan.config import IntensityConfig
    >>> from vaecyclegan.io.formats import ScanSource, format_for_path
    >>> air = np.full((16, 16, 2), -1000, np.int16)  # 2 axial slices of a CT
    >>> nib.save(nib.Nifti1Image(air, np.eye(4)), "head.nii.gz")
    >>> fmt = format_for_path("head.nii.gz")
    >>> fmt.name, fmt.label, fmt.planar
    ('nifti', 'NIfTI', False)
    >>> scan = fmt.read(ScanSource("nifti", ["head.nii.gz"], "head.nii.gz"), "ct", "axial")
    >>> scan.values.shape
    (2, 16, 16)
    >>> fake_mri = np.zeros((2, 16, 16), np.float32)  # a translation, in [-1, 1]
    >>> fmt.write(scan, fake_mri, "mri", IntensityConfig(), "ct2mri", lambda name: f"mri_{name}")
    >>> os.path.isfile("mri_head.nii.gz")
    True
    """

    name = None
    label = None
    planar = False
    series = False

    def claims(self, path):
        """Whether `path` is a file of this format (by name, or a look at
        its first bytes; the file is not read)."""
        raise NotImplementedError

    def group(self, paths):
        """Groups this format's files of one folder into scans: lists of
        paths, in first-seen order. Default: each file is a scan."""
        return [[path] for path in paths]

    def output_names(self, paths):
        """The file names the result of the scan made of `paths` is written
        under. Default: the input's file name."""
        return [os.path.basename(paths[0])]

    def read(self, source, domain, axis="axial"):
        """Reads a `ScanSource` of this format as a `Scan` of `domain`
        ("ct" or "mri"); volumes are cut into slices along `axis`."""
        raise NotImplementedError

    def write(self, scan, unit, domain, intensity, direction, target):
        """Writes a translated scan in this format.

        Args:
            scan: the input `Scan`.
            unit: the result, (slices, H, W) in [-1, 1].
            domain: the result's domain.
            intensity: the `IntensityConfig` of the weights.
            direction: "mri2ct" or "ct2mri", for descriptions in headers.
            target: maps an output file name to the path to write.
        """
        raise NotImplementedError

    def write_std(self, scan, std, scale, domain, intensity, target):
        """Writes the per-pixel deviation of the latent samples beside the
        result, in `STD_FOLDER`.

        Args:
            scan: the input `Scan`.
            std: (slices, H, W) deviation in [-1, 1] units.
            scale: the deviation (8-bit grey levels) at which heat maps
                saturate (`std_map_scale`).
            domain, intensity: the result's domain and `IntensityConfig`.
            target: maps an output file name to the path to write.
        """
        raise NotImplementedError

    def write_mask(self, scan, mask, path):
        """Writes a 0/1 mask of `scan`'s slices (the shape of its values) as
        a volume on the grid of the scan's own file, where this format's
        files can hold one (`path` ends .nii.gz); returns whether it did.
        Default: it cannot (the caller writes a NIfTI placed by `world`)."""
        return False

    def describe(self, scan):
        """The scan's format in summaries, e.g. "DICOM"."""
        return self.label

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
