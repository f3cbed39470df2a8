"""NIfTI in and out: a volume translated slice by slice, written back with
the input's affine and header.

Slices are cut along `axis` (axial by default) in radiological display
orientation, the orientation of DICOM slices and of the PNGs the networks
train on: axial slices with anterior at the top and the patient's right on
the left. The result is turned back to the input's voxel order, so its
affine is the input's, unchanged. Synthetic CT is int16 HU; synthetic MRI
is int16 0..4095 (`MR_SIGNAL_MAX`); scaling is reset to slope 1, offset 0.
`NiftiFormat` is the `ScanFormat` of NIfTI files; its deviation maps are a
float32 volume in the output's units.
"""

import contextlib
import dataclasses
import gzip
import logging
import math
import os
import re
import warnings

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from vaecyclegan.errors import InputError, printable
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.image_format import check_min_size
from vaecyclegan.io.intensity import MR_SIGNAL_MAX, unit_to_values
from vaecyclegan.io.memory_budget import NotEnoughMemory, check_fits_in_memory
from vaecyclegan.io.scan import (
    SLICE_ORIENTATION,
    STD_FOLDER,
    Scan,
    ScanFormat,
    check_regular_file,
    file_path,
)

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Header fields of the input's acquisition or display, zeroed in a result.
INPUT_ONLY_FIELDS = ("aux_file", "dim_info", "slice_code", "slice_start", "slice_end",
                     "slice_duration", "toffset", "glmax", "glmin")
# Bytes inflated at a time when a gzip file is checked to its end.
_GZIP_CHUNK = 1 << 22
# The most deflate can inflate a byte to (a 258-byte match in under two bits).
DEFLATE_MAX_RATIO = 1032


@dataclasses.dataclass
class NiftiSource:
    """What writing a result back needs."""

    image_class: type
    header: object
    affine: np.ndarray
    to_input_order: np.ndarray  # orientation transform back to voxel order
    shape: tuple  # the input's array shape


def is_nifti_file(path):
    return path.lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path, domain, axis="axial"):
    """Reads a 3-D NIfTI volume as a `Scan` of slices along `axis`.

    CT volumes are taken to hold HU, MRI any signal scale (the volume's
    percentiles scale it). The file's scaling (scl_slope/scl_inter) is
    applied; a slope of 0 (or NaN, as nibabel writes it) means none.

    Raises:
        InputError: missing, not a regular file, empty, unreadable (any
            error of nibabel, numpy or the decompressor), not 3-D, a zero
            dimension, a data type other than scalar integer or float (RGB,
            complex, binary), non-finite scaling, or non-finite voxels.
    """
    path = file_path(path)
    if check_regular_file(path) == 0:
        raise InputError(path, "empty file (0 bytes)")
    with _nibabel_quiet():
        try:
            image = nib.load(path)
        except Exception as error:  # any bytes reach nibabel: nothing else may escape
            raise InputError(path, _load_problem(error)) from None
        _check_volume_kind(path, image)
        try:
            shape = tuple(int(n) for n in image.shape)
            dtype = image.get_data_dtype()
            header = image.header
            # The image's header has its scaling reset once the data proxy
            # took it; the file's own fields are read again to check them.
            with ImageOpener(path) as file:
                stored = image.header_class.from_fileobj(file, check=False)
            slope, inter = float(stored["scl_slope"]), float(stored["scl_inter"])
        except Exception as error:  # any bytes reach nibabel: nothing else may escape
            raise InputError(path, _load_problem(error)) from None
        volume_shape = _volume_shape(path, shape)
        _check_data_type(path, dtype, header)
        _check_scaling(path, slope, inter)
        _check_file_holds_voxels(path, stored, shape, dtype)
        _check_fits_in_memory(path, stored, shape, dtype, volume_shape)
        try:
            data = np.asarray(image.dataobj, dtype=np.float32).reshape(volume_shape)
            affine = np.array(image.affine, dtype=np.float64)
        except MemoryError:
            raise NotEnoughMemory(path, "not enough memory to read its voxels") from None
        except Exception as error:  # as above
            raise InputError(path, f"voxel data cannot be read ({_one_line(error)})") from None
        if path.lower().endswith(".gz"):
            _check_gzip_whole(path)
    # An affine near the float limit overflows in nibabel's orientation
    # code: numpy's warnings had added lines before the one refusal.
    with _nibabel_quiet(), np.errstate(all="ignore"):
        data = _non_finite_filled(path, data, domain)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise InputError(path, "its affine (qform/sform) is not finite")
        try:
            stored_axes, wanted = io_orientation(affine), axcodes2ornt(SLICE_ORIENTATION[axis])
            to_slices = ornt_transform(stored_axes, wanted)
            to_input = ornt_transform(wanted, stored_axes)
            slices = apply_orientation(data, to_slices)
        except Exception as error:  # a degenerate affine: no axis order to cut along
            raise InputError(path, f"its affine gives no voxel orientation ({_one_line(error)})") \
                from None
        check_min_size(path, slices.shape)
        source = NiftiSource(type(image), header.copy(), affine, to_input, shape)
        name = os.path.basename(path)
        stored = STORED_PLANES[int(stored_axes[2, 0])]
        if stored != axis and volume_shape[2] > 1:
            # Said as a DICOM series' cut is: a sagittal volume cut axially
            # gives slices of another size and count than its files suggest.
            logger.info("%s: %d %s slices, cut into %d %s slices of %dx%d", printable(name),
                        volume_shape[2], stored, slices.shape[0], axis, slices.shape[2],
                        slices.shape[1])
        return Scan(path, NiftiFormat.name, domain, np.ascontiguousarray(slices, dtype=np.float32),
                    "hu" if domain == "ct" else "signal", name, source=source,
                    spacing=_slice_spacing(affine, to_slices, header),
                    world=_slice_world(affine, to_slices, volume_shape, header)
                    if _placed(header) else None)


# Millimetres per unit of the NIfTI spatial units (`xyzt_units`); "unknown"
# is read as mm, as most tools do.
MM_PER_SPATIAL_UNIT = {"meter": 1000.0, "mm": 1.0, "micron": 1e-3}


def _mm_per_unit(header):
    try:
        units = header.get_xyzt_units()[0]
    except (AttributeError, KeyError, ValueError):  # no such field, or a code NIfTI lacks
        units = "unknown"
    return MM_PER_SPATIAL_UNIT.get(units, 1.0)


def _slice_spacing(affine, to_slices, header):
    """Voxel size in mm along the axes of the cut slices: the affine's
    column lengths in the header's spatial units, in the order the
    orientation transform puts them."""
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0)) * _mm_per_unit(header)
    spacing = [1.0, 1.0, 1.0]
    for axis, (target, _) in enumerate(to_slices):
        spacing[int(target)] = round(float(zooms[axis]), 6)
    return tuple(spacing)


# The plane of a volume's stored slices, by the world axis (x, y, z) its
# third voxel axis runs along.
STORED_PLANES = ("sagittal", "coronal", "axial")


def _placed(header):
    """Whether the header places its voxels in the patient (an sform or
    qform code above 0); without, nibabel's affine is only the voxel size
    centred on the array."""
    try:
        return int(header["sform_code"]) > 0 or int(header["qform_code"]) > 0
    except (KeyError, TypeError, ValueError):  # a header without the fields
        return False


def _slice_world(affine, to_slices, volume_shape, header):
    """The affine of the cut slices' indices (`Scan.world`): the file's,
    composed with the index change of the reorientation, in mm."""
    world = affine @ inv_ornt_aff(to_slices, volume_shape)
    world[:3] *= _mm_per_unit(header)
    return world


def _volume_shape(path, shape):
    """The 3-D shape `shape` is read as (a 2-D image as one slice, a volume
    with size-1 axes after the third, one frame of time or one component,
    as 3-D)."""
    size = "x".join(str(n) for n in shape)
    if any(n <= 0 for n in shape):
        raise InputError(path, f"volume is {size}: a dimension of zero or negative size holds "
                         "no voxel")
    volume_shape = shape
    while len(volume_shape) > 3 and volume_shape[-1] == 1:
        volume_shape = volume_shape[:-1]
    if len(volume_shape) == 2:
        volume_shape = shape + (1,)
    if len(volume_shape) != 3:
        raise InputError(path, f"{len(shape)}-D NIfTI ({size}): one 3-D volume is needed "
                         "(split a time series or multi-channel volume first)")
    return volume_shape


def _non_finite_filled(path, data, domain):
    """`data` with NaN (and infinite) voxels of an MRI taken as background,
    its lowest finite value: float MRIs of SPM and FSL pipelines hold NaN
    outside the field of view or the brain. CT must be HU throughout, and
    such voxels in it are refused."""
    bad = ~np.isfinite(data)
    count = int(np.count_nonzero(bad))
    if not count:
        return data
    if domain != "mri" or count == data.size:
        raise InputError(path, f"{count} voxel(s) are NaN or infinite; fill or mask them first")
    background = float(np.min(data, where=~bad, initial=np.inf))  # no copy of the volume
    logger.warning("%s: %d NaN or infinite voxel(s) (%.2g %%) taken as background, its lowest "
                   "value %g", printable(path), count, 100.0 * count / data.size, background)
    data[bad] = background
    return data


def _check_file_holds_voxels(path, stored, shape, dtype):
    """Refuses an uncompressed file shorter than its header's voxels: a
    damaged dimension (2000x2000x2000 in a 44 kB file) was said to need
    more memory than the machine has, sending the user the wrong way. A
    .nii.gz is checked as it inflates (`_check_gzip_whole`)."""
    if path.lower().endswith(".gz"):
        return
    try:
        needed = int(float(stored["vox_offset"])) + math.prod(shape) * dtype.itemsize
        size = os.path.getsize(path)
    except (OSError, ValueError, TypeError, OverflowError):
        return  # nibabel's own reading says what is wrong
    if size < needed:
        raise InputError(path, f"its header declares {'x'.join(str(n) for n in shape)} "
                         f"{dtype} voxels ({needed:,} bytes with the header), but the file "
                         f"holds {size:,} bytes: truncated, or a damaged header")


def _check_fits_in_memory(path, stored, shape, dtype, volume_shape):
    """Refuses a volume too large for memory, unless it is a .nii.gz that
    does not hold its header's voxels: then it is named damaged."""
    try:
        check_fits_in_memory(path, math.prod(volume_shape),
                             "volume is " + "x".join(str(n) for n in volume_shape))
    except NotEnoughMemory:
        _check_gzip_holds_voxels(path, stored, shape, dtype)
        raise


def _check_gzip_holds_voxels(path, stored, shape, dtype):
    """`_check_file_holds_voxels` for a .nii.gz whose header's voxels would
    not fit in memory: gzip does not say its inflated size up front, so it
    is inflated and counted, piece by piece, up to the size needed (unless
    the size needed is more than deflate can make of the file's bytes); a
    damaged dimension in a 44 kB file was said to need more memory than
    the machine has, as a real volume that large is."""
    if not path.lower().endswith(".gz"):
        return
    needed = int(float(stored["vox_offset"])) + math.prod(shape) * dtype.itemsize
    size = os.path.getsize(path)
    if needed > size * DEFLATE_MAX_RATIO:  # no need to inflate to know
        raise InputError(path, f"its header declares {'x'.join(str(n) for n in shape)} "
                         f"{dtype} voxels ({needed:,} bytes with the header), but its "
                         f"{size:,} compressed bytes cannot inflate to more than "
                         f"{size * DEFLATE_MAX_RATIO:,}: truncated, or a damaged header")
    try:
        inflated = 0
        with gzip.open(path, "rb") as file:
            while inflated < needed and (piece := file.read(_GZIP_CHUNK)):
                inflated += len(piece)
    except Exception as error:  # BadGzipFile, EOFError, zlib.error, OSError
        raise InputError(path, f"its compressed data is corrupt or cut short "
                         f"({_one_line(error)})") from None
    if inflated < needed:
        raise InputError(path, f"its header declares {'x'.join(str(n) for n in shape)} "
                         f"{dtype} voxels ({needed:,} bytes with the header), but the file "
                         f"inflates to {inflated:,} bytes: truncated, or a damaged header")


def _check_data_type(path, dtype, header):
    """Refuses voxels that are not one scalar integer or float each."""
    if dtype.fields is None and dtype.kind in "iuf" and dtype.itemsize > 0:
        return
    try:
        label = header.get_value_label("datatype")
    except Exception:  # an unknown code: name what nibabel made of it
        label = str(dtype)
    raise InputError(path, f"voxels of data type {label} (code {int(header['datatype'])}): "
                     "one integer or float value per voxel is needed (convert RGB or complex "
                     "volumes to one scalar volume first)")


def _check_scaling(path, slope, inter):
    """Refuses scaling that cannot be applied. A slope of 0 means no
    scaling in NIfTI, and nibabel writes NaN for "none", so both are
    accepted (the intercept is then unused, which is said where it is not
    0: ITK's readers apply it); an infinite slope, or a non-finite
    intercept beside a slope in use, are refused."""
    if (slope == 0 or np.isnan(slope)) and np.isfinite(inter) and inter != 0:
        logger.warning("%s: scl_slope is %g, which NIfTI reads as no scaling, so its scl_inter "
                       "of %g is not applied; ITK-based tools (Slicer, SimpleITK) apply it "
                       "and show every value shifted by %+g. Set scl_slope to 1 if the "
                       "intercept is meant", printable(path), slope, inter, inter)
    if np.isinf(slope):
        raise InputError(path, f"its scaling scl_slope is {slope:g}; a finite slope is needed")
    if slope != 0 and np.isfinite(slope) and not np.isfinite(inter):
        raise InputError(path, f"its scaling scl_inter is {inter:g} (with scl_slope {slope:g}); "
                         "a finite intercept is needed")


def _check_gzip_whole(path):
    """Reads a gzip file to its end, so that its CRC and length are checked:
    nibabel reads only as far as the voxels, and a flipped or missing byte
    after them, or one that still inflates, would pass unseen."""
    try:
        with gzip.open(path, "rb") as file:
            while file.read(_GZIP_CHUNK):
                pass
    except Exception as error:  # BadGzipFile, EOFError, zlib.error, OSError
        raise InputError(path, f"its compressed data is corrupt or cut short "
                         f"({_one_line(error)})") from None


def _check_volume_kind(path, image):
    """nibabel also loads CIFTI-2 files (`.dconn.nii`, `.dtseries.nii`):
    grayordinate matrices, not images, which the volume reader then failed
    on with nibabel's internal message."""
    if isinstance(image, nib.Nifti1Image):  # NIfTI-2 images are NIfTI-1 ones to nibabel
        return
    kind = ("a CIFTI-2 file (grayordinate data, not an image volume)"
            if isinstance(image, nib.Cifti2Image) else f"a {type(image).__name__}")
    raise InputError(path, f"{kind}; only NIfTI-1/-2 image volumes are read")


def _load_problem(error):
    """What a failed `nib.load` says, in the reader's words where nibabel's
    are obscure."""
    message = _one_line(error)
    code = re.fullmatch(r"data code (\S+) not recognized", message)
    if code:
        return (f"its header declares data type code {code[1]}, which is no NIfTI data type "
                "(corrupt header?)")
    inter = re.fullmatch(r"Valid slope but invalid intercept (\S+)", message)
    if inter:
        return f"its scaling scl_inter is {inter[1]}; a finite intercept is needed"
    return f"not a readable NIfTI file ({message})"


def _one_line(error):
    """An exception's message as one line (nibabel's can span several)."""
    message = " ".join(str(error).split())
    return message or type(error).__name__


@contextlib.contextmanager
def _nibabel_quiet():
    """nibabel's header checks log what they fix (and what they refuse) to
    stderr, and numpy warns on casts: kept off, since a refusal is one line."""
    logger = logging.getLogger("nibabel.global")
    disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


def write_nifti(path, scan, volume, domain, intensity, description, dtype=np.int16):
    """Writes slices back as a NIfTI file with the input's affine and header.

    Args:
        path: output file (.nii or .nii.gz).
        scan: the input `Scan` (kind "nifti").
        volume: (slices, H, W) in [-1, 1] for a translation; with
            `dtype` float32 or uint8, values written as they are (a
            standard-deviation map, a mask).
        domain: "ct" or "mri" (ignored for values written as they are).
        intensity: the weights' `IntensityConfig`, whose CT window maps a
            translation to HU (MRI: to signal 0..`MR_SIGNAL_MAX`); ignored
            for values written as they are.
        description: the header's `descrip` (80 characters at most).
        dtype: the voxel type written: an integer type (default int16)
            for a translation, rounded and clipped to the type's range;
            float32 or uint8 for values written as they are.
    """
    source = scan.source
    if dtype in (np.float32, np.uint8):
        values = np.asarray(volume, dtype=dtype)
    else:
        units = "hu" if domain == "ct" else "signal"
        # Clipped to the type: a CT window beyond int16's range wrapped round.
        limits = np.iinfo(dtype)
        values = np.clip(np.round(unit_to_values(volume, units, intensity)), limits.min,
                         limits.max).astype(dtype)
    data = apply_orientation(values, source.to_input_order).reshape(source.shape)
    header = source.header.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    # The input's display range and intent describe the input (an MRI's
    # cal_max of 800 showed a synthetic CT in an MRI window): unset.
    header["cal_min"], header["cal_max"] = 0.0, 0.0
    header.set_intent("none", (), name="")
    header["descrip"] = description.encode("ascii", "replace")[:79]
    # Extensions (AFNI attributes, a DICOM header, comments) and the
    # acquisition's slice timing describe the input, not a derived volume.
    header.extensions.clear()
    for key in INPUT_ONLY_FIELDS:
        if key in header:
            header[key] = b"" if header[key].dtype.kind == "S" else 0
    image = source.image_class(np.ascontiguousarray(data), source.affine, header)
    payload = image.to_bytes()
    if path.lower().endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)
    return path


class NiftiFormat(ScanFormat):
    """NIfTI files (.nii, .nii.gz): one volume each, cut into slices along
    the chosen axis; the result is a volume with the input's affine and
    header, under the input's name."""

    name = "nifti"
    label = "NIfTI"

    def claims(self, path):
        return is_nifti_file(path)

    def read(self, source, domain, axis="axial"):
        return read_nifti(source.paths[0], domain, axis)

    def write(self, scan, unit, domain, intensity, direction, target):
        label = "CT" if domain == "ct" else "MR"
        write_nifti(target(scan.output_name), scan, unit, domain, intensity,
                    f"vaecyclegan synthetic {label} ({direction})")

    def write_mask(self, scan, mask, path):
        # In the file's voxel order with its affine and header: the mask
        # lies voxel for voxel on the volume (fslmaths -mas, numpy).
        write_nifti(path, scan, mask, None, None, "vaecyclegan-eval: voxels scored",
                    dtype=np.uint8)
        return True

    def write_std(self, scan, std, scale, domain, intensity, target):
        if domain == "ct":
            low, high = intensity.ct_window_hu
            values, unit = std * (high - low) / 2.0, "HU"
        else:
            values, unit = std * MR_SIGNAL_MAX / 2.0, "MR signal 0..4095"
        write_nifti(target(os.path.join(STD_FOLDER, scan.output_name)), scan, values, domain,
                    intensity, f"vaecyclegan latent std ({unit})", dtype=np.float32)
