"""Finding, reading and writing scans of every supported kind.

`--input` may name an image file, a DICOM file, a NIfTI file, or a folder
holding any mix of them; DICOM files in a folder are grouped into series by
SeriesInstanceUID. Each result goes back to its input's kind.
"""

import dataclasses
import os

from vaecyclegan.dicom_io import group_series, is_dicom_file, read_dicom_series, write_dicom_series
from vaecyclegan.errors import InputError
from vaecyclegan.image_io import image_result, is_image_file, read_image_scan, write_png
from vaecyclegan.nifti_io import is_nifti_file, read_nifti, write_nifti

SUPPORTED = "PNG, JPEG, TIFF, BMP, DICOM (.dcm or none), NIfTI (.nii, .nii.gz)"
# DICOMDIR indexes a DICOM folder; it holds no image.
SKIPPED_NAMES = ("DICOMDIR",)


@dataclasses.dataclass
class ScanSource:
    """An input before reading: its kind, its files and its name."""

    kind: str
    paths: list
    name: str

    def output_names(self):
        """The file names its result is written under."""
        if self.kind == "image":
            return [os.path.splitext(os.path.basename(self.paths[0]))[0] + ".png"]
        if self.kind == "dicom":
            return [os.path.basename(p) for p in self.paths]
        return [os.path.basename(self.paths[0])]


def _kind_of(path):
    if is_nifti_file(path):
        return "nifti"
    if is_image_file(path):
        return "image"
    if is_dicom_file(path):
        return "dicom"
    return None


def find_scan_sources(path):
    """The scans `path` names: itself if a file, else each image, NIfTI
    volume and DICOM series directly inside the folder.

    Raises:
        InputError: missing path, unsupported file, folder with no scan.
    """
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name) for name in os.listdir(path)
            if not name.startswith(".") and name not in SKIPPED_NAMES
            and os.path.isfile(os.path.join(path, name))
        )
        sources, dicom_files = [], []
        for file in files:
            kind = _kind_of(file)
            if kind == "dicom":
                dicom_files.append(file)
            elif kind is not None:
                sources.append(ScanSource(kind, [file], os.path.basename(file)))
        for series in group_series(dicom_files):
            name = os.path.basename(series[0]) if len(series) == 1 else (
                f"{os.path.basename(os.path.normpath(path))} ({len(series)} DICOM files)")
            sources.append(ScanSource("dicom", series, name))
        if not sources:
            raise InputError(path, f"no image, DICOM or NIfTI file in this folder ({SUPPORTED})")
        return sources
    if not os.path.exists(path):
        raise InputError(path, "input not found")
    kind = _kind_of(path)
    if kind is None:
        raise InputError(path, f"not a supported file ({SUPPORTED})")
    return [ScanSource(kind, [path], os.path.basename(path))]


def read_scan(source, domain, axis="axial"):
    """Reads a `ScanSource` as a `Scan` of `domain` ("ct" or "mri")."""
    if source.kind == "image":
        return read_image_scan(source.paths[0], domain)
    if source.kind == "dicom":
        return read_dicom_series(source.paths, domain, source.name)
    return read_nifti(source.paths[0], domain, axis)


def write_result(scan, unit, domain, intensity, direction, target):
    """Writes a translated scan in its input's kind.

    Args:
        scan: the input `Scan`.
        unit: the result, (slices, H, W) in [-1, 1].
        domain: the result's domain.
        direction: for descriptions in DICOM and NIfTI headers.
        target: maps an output file name to the path to write.
    """
    if scan.kind == "image":
        write_png(target(scan.output_name), image_result(scan, unit[0], domain, intensity))
    elif scan.kind == "dicom":
        write_dicom_series(None, scan, unit, domain, intensity, direction, write_name=target)
    else:
        label = "CT" if domain == "ct" else "MR"
        write_nifti(target(scan.output_name), scan, unit, domain, intensity,
                    f"vaecyclegan synthetic {label} ({direction})")
