"""DICOM in and out: single files and series, Hounsfield units kept.

A series is read slice by slice (pydicom), sorted by position along the
slice normal, with the modality LUT applied (RescaleSlope/Intercept: CT in
HU). A result is written as a new series of the same geometry: one file per
input file, with the input's file name, new Study/Series/SOP UIDs, the
input's frame of reference (so it overlays the input in any viewer or
planning system), `ImageType` DERIVED and a description that says it is
synthetic. Synthetic CT is int16 HU (slope 1, intercept 0); synthetic MRI
is unsigned 0..4095 (`MR_SIGNAL_MAX`). `DicomFormat` is the `ScanFormat` of
DICOM files: a folder's files are grouped into series by SeriesInstanceUID.
"""

import dataclasses
import datetime
import os

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

import vaecyclegan
from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.image_format import check_min_size, write_std_heat_maps
from vaecyclegan.io.intensity import MR_SIGNAL_MAX, unit_to_values
from vaecyclegan.io.memory_budget import check_fits_in_memory
from vaecyclegan.io.scan import Scan, ScanFormat

DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MODALITY = {"ct": "CT", "mri": "MR"}
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
DECODER_HINT = ("pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, or python-gdcm, "
                "adds decoders pydicom can use")


@dataclasses.dataclass
class DicomSource:
    """What writing a result back needs: the input's headers (pixel data
    dropped) and file names, in slice order."""

    datasets: list
    file_names: list


def is_dicom_file(path):
    """A DICOM extension, or no extension and the DICM mark at byte 128."""
    extension = os.path.splitext(path)[1].lower()
    if extension in DICOM_EXTENSIONS:
        return True
    if extension:
        return False
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_header(path, pixels=False):
    """The dataset of a DICOM file, with its (still encoded) pixel data only
    when `pixels` is true."""
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        # force: files written without the 128-byte preamble are common.
        return pydicom.dcmread(path, stop_before_pixels=not pixels, force=True)
    except (InvalidDicomError, OSError, ValueError, TypeError, KeyError, EOFError) as error:
        raise InputError(path, f"not a readable DICOM file ({_first_line(error)})") from None


def group_series(paths):
    """Groups DICOM files by SeriesInstanceUID, keeping first-seen order; a
    file whose header cannot be read stays alone (reading it will say why)."""
    groups = {}
    for path in paths:
        try:
            uid = str(read_header(path).get("SeriesInstanceUID", "")) or path
        except InputError:
            uid = path
        groups.setdefault(uid, []).append(path)
    return list(groups.values())


def read_dicom_series(paths, domain, name):
    """Reads the files of one series as a `Scan`.

    Args:
        paths: the series' files (any order).
        domain: "ct" or "mri", what the translation expects.
        name: the scan's name in messages and reports.

    Raises:
        InputError: unreadable file, no pixel data, a compression no
            installed decoder handles, another modality, mixed sizes.
    """
    slices = []
    for path in paths:
        dataset = _read_slice(path, domain)
        slices.append((_slice_position(dataset), path, dataset))
    slices.sort(key=lambda item: item[0])
    shapes = {(int(d.Rows), int(d.Columns)) for _, _, d in slices}
    if len(shapes) > 1:
        raise InputError(slices[0][1], f"series mixes slice sizes {sorted(shapes)}")
    values = np.stack([_slice_values(path, dataset) for _, path, dataset in slices])
    for _, _, dataset in slices:
        del dataset.PixelData  # the writer needs headers only
    modality = str(slices[0][2].get("Modality", ""))
    ct = modality == "CT" or (modality != "MR" and domain == "ct")
    source = DicomSource([d for _, _, d in slices], [os.path.basename(p) for _, p, _ in slices])
    return Scan(slices[0][1], DicomFormat.name, domain, values, "hu" if ct else "signal", name,
                source=source)


def _read_slice(path, domain):
    header = read_header(path, pixels=True)
    if "PixelData" not in header:
        kind = header.get("Modality") or header.get("SOPClassUID", "unknown")
        raise InputError(path, f"DICOM without pixel data (Modality {kind}): nothing to translate")
    modality = str(header.get("Modality", ""))
    expected = MODALITY[domain]
    if modality in MODALITY.values() and modality != expected:
        raise InputError(path,
                         f"Modality is {modality}, this direction translates {expected} input")
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(path, "multi-frame DICOM is not supported; export the series as "
                         "single-frame files")
    if int(header.get("SamplesPerPixel", 1)) != 1:
        raise InputError(path, f"colour DICOM ({header.get('PhotometricInterpretation')}): "
                         "CT and MR slices are monochrome")
    rows, columns = int(header.get("Rows", 0)), int(header.get("Columns", 0))
    check_min_size(path, (rows, columns))
    check_fits_in_memory(path, rows * columns, f"slice is {columns}x{rows}")
    return header


def _slice_values(path, dataset):
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # noqa: BLE001 -- pydicom raises several types per decoder
        if syntax is not None and syntax.is_compressed:
            raise InputError(path, f"pixel data compressed as {syntax.name}, which no installed "
                             f"decoder handles ({DECODER_HINT})") from None
        raise InputError(path, f"pixel data cannot be decoded ({_first_line(error)})") from None
    return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)


def _slice_position(dataset):
    """Distance along the slice normal; InstanceNumber when geometry is
    missing."""
    position = dataset.get("ImagePositionPatient")
    orientation = dataset.get("ImageOrientationPatient")
    if position is not None and orientation is not None and len(orientation) == 6:
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        return (0, float(np.dot(normal, np.asarray(position, float))))
    return (1, float(dataset.get("InstanceNumber", 0) or 0))


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
    study_uid, series_uid = generate_uid(), generate_uid()
    now = datetime.datetime.now()
    label = {"ct": "Synthetic CT", "mri": "Synthetic MR"}[domain]
    original = str(source.datasets[0].get("SeriesDescription", "")).strip()
    description = f"{label} ({direction})" + (f" of {original}" if original else "")
    written = []
    for index, (dataset, name) in enumerate(zip(source.datasets, source.file_names)):
        output = _derived_slice(dataset, unit[index], domain, intensity)
        output.StudyInstanceUID, output.SeriesInstanceUID = study_uid, series_uid
        output.SeriesNumber = int(dataset.get("SeriesNumber", 0) or 0) + 1000
        output.SeriesDescription = description[:64]
        output.DerivationDescription = (
            f"{label} translated by vaecyclegan {vaecyclegan.__version__} ({direction}) from "
            f"series {dataset.get('SeriesInstanceUID', 'unknown')}; not an acquired image.")
        output.SeriesDate = output.ContentDate = now.strftime("%Y%m%d")
        output.SeriesTime = output.ContentTime = now.strftime("%H%M%S")
        path = write_name(name) if write_name else os.path.join(folder, name)
        with atomic_path(path) as tmp:
            output.save_as(tmp, enforce_file_format=True)
        written.append(path)
    return written


def _derived_slice(dataset, unit, domain, intensity):
    output = Dataset()
    for keyword in COPIED_TAGS:
        if keyword in dataset:
            setattr(output, keyword, dataset.data_element(keyword).value)
    sop_class = CT_IMAGE_STORAGE if domain == "ct" else MR_IMAGE_STORAGE
    output.SOPClassUID, output.SOPInstanceUID = sop_class, generate_uid()
    output.Modality = MODALITY[domain]
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
        pixels = np.round(unit_to_values(unit, "hu", intensity)).astype(np.int16)
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


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


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
        return read_dicom_series(source.paths, domain, source.name)

    def write(self, scan, unit, domain, intensity, direction, target):
        write_dicom_series(None, scan, unit, domain, intensity, direction, write_name=target)

    def write_std(self, scan, std, scale, domain, intensity, target):
        write_std_heat_maps(scan.source.file_names, std, scale, target)
