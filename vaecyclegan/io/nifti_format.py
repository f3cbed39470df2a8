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

import dataclasses
import gzip
import os
import zlib

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.image_format import check_min_size
from vaecyclegan.io.intensity import MR_SIGNAL_MAX, unit_to_values
from vaecyclegan.io.memory_budget import check_fits_in_memory
from vaecyclegan.io.scan import STD_FOLDER, Scan, ScanFormat

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Voxel axis order (slice, row, column) for each cut; a letter names the
# direction the index runs towards.
SLICE_ORIENTATION = {
    "axial": ("S", "P", "L"),
    "coronal": ("A", "I", "L"),
    "sagittal": ("L", "I", "P"),
}


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
    percentiles scale it). The file's scaling (scl_slope/scl_inter) is applied.

    Raises:
        InputError: unreadable, not 3-D, or non-finite voxels.
    """
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        image = nib.load(path)
        shape = tuple(int(n) for n in image.shape)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as error:
        raise InputError(path, f"not a readable NIfTI file ({error})") from None
    volume_shape = shape
    if len(shape) == 4 and shape[3] == 1:
        volume_shape = shape[:3]
    elif len(shape) == 2:
        volume_shape = shape + (1,)
    if len(volume_shape) != 3:
        size = "x".join(str(n) for n in shape)
        raise InputError(path, f"{len(shape)}-D NIfTI ({size}): one 3-D volume is needed "
                         "(split a time series or multi-channel volume first)")
    check_fits_in_memory(path, int(np.prod(volume_shape)),
                         "volume is " + "x".join(str(n) for n in volume_shape))
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(volume_shape)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise InputError(path, f"voxel data cannot be read ({error})") from None
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise InputError(path, f"{bad} voxel(s) are NaN or infinite; fill or mask them first")
    to_slices = ornt_transform(io_orientation(image.affine), axcodes2ornt(SLICE_ORIENTATION[axis]))
    slices = apply_orientation(data, to_slices)
    check_min_size(path, slices.shape)
    source = NiftiSource(type(image), image.header.copy(), np.array(image.affine),
                         ornt_transform(axcodes2ornt(SLICE_ORIENTATION[axis]),
                                        io_orientation(image.affine)), shape)
    name = os.path.basename(path)
    return Scan(path, NiftiFormat.name, domain, np.ascontiguousarray(slices, dtype=np.float32),
                "hu" if domain == "ct" else "signal", name, source=source)


def write_nifti(path, scan, volume, domain, intensity, description, dtype=np.int16):
    """Writes slices back as a NIfTI file with the input's affine and header.

    Args:
        path: output file (.nii or .nii.gz).
        scan: the input `Scan` (kind "nifti").
        volume: (slices, H, W) in [-1, 1] for a translation; with
            `dtype=np.float32`, values written as they are (e.g. a
            standard-deviation map).
        domain: "ct" or "mri" (ignored for float32 values).
        description: the header's `descrip` (80 characters at most).
    """
    source = scan.source
    if dtype == np.float32:
        values = np.asarray(volume, dtype=np.float32)
    else:
        units = "hu" if domain == "ct" else "signal"
        values = np.round(unit_to_values(volume, units, intensity)).astype(dtype)
    data = apply_orientation(values, source.to_input_order).reshape(source.shape)
    header = source.header.copy()
    header.set_data_dtype(dtype)
    header.set_slope_inter(1.0, 0.0)
    header["descrip"] = description.encode("ascii", "replace")[:79]
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

    def write_std(self, scan, std, scale, domain, intensity, target):
        if domain == "ct":
            low, high = intensity.ct_window_hu
            values, unit = std * (high - low) / 2.0, "HU"
        else:
            values, unit = std * MR_SIGNAL_MAX / 2.0, "MR signal 0..4095"
        write_nifti(target(os.path.join(STD_FOLDER, scan.output_name)), scan, values, domain,
                    intensity, f"vaecyclegan latent std ({unit})", dtype=np.float32)
