"""The SynthRAD challenge's folder layout, and translating its MRIs.

SynthRAD (https://synthrad2023.grand-challenge.org, 2025 likewise) hands out
one folder per patient, e.g. `Task1/brain/1BA001/`, holding `ct.nii.gz`
(the reference CT in HU), `mr.nii.gz` (the MRI, on the CT's grid) and
`mask.nii.gz` (the dilated body outline the metrics are scored in); the
2025 release uses `.mha` files, read here when SimpleITK is installed.
`find_patients` lists them (the folder given may also be one patient's);
`translate_mr` translates a patient's MRI with a trained mri2ct generator
the way `infer.py` translates a NIfTI volume (`read_scan` as "mri",
`Translator.translate_stacks`, back to HU through the intensity config)
and `write_sct` writes the synthetic CT beside the results (NIfTI with the
MRI's affine and header, or `.mha` with its geometry).
"""

import dataclasses
import logging
import os

import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.cases import HuImage
from vaecyclegan.io.dicom_format import LPS_TO_RAS
from vaecyclegan.io.formats import find_scan_sources, read_scan, write_result
from vaecyclegan.io.intensity import unit_to_values
from vaecyclegan.io.scan import Scan, list_folder

logger = logging.getLogger(__name__)

SUFFIXES = (".nii.gz", ".nii", ".mha")
MHA_NEEDS = ".mha files need SimpleITK: pip install SimpleITK"


@dataclasses.dataclass
class Patient:
    """One patient folder: its name and its files (`mask` may be None)."""

    name: str
    ct: str
    mr: str
    mask: str = None


def _file(folder, stem):
    for suffix in SUFFIXES:
        path = os.path.join(folder, stem + suffix)
        if os.path.isfile(path):
            return path
        if os.path.lexists(path):
            # A folder (or a broken link) of the file's name was passed over,
            # and the patient scored without it (a mask) or called incomplete.
            raise InputError(path, "is a folder, not a file" if os.path.isdir(path)
                             else "is not a regular file")
    return None


def _patient(folder):
    """The `Patient` of a folder, None when it holds neither ct nor mr."""
    ct, mr, mask = (_file(folder, stem) for stem in ("ct", "mr", "mask"))
    if ct is None and mr is None:
        return None
    for path, stem in ((ct, "ct"), (mr, "mr")):
        if path is None:
            raise InputError(folder, f"SynthRAD patient folder without {stem}.nii.gz "
                             f"({stem}.nii or {stem}.mha)")
    for path in (ct, mr, mask):
        if path is not None and is_mha(path):
            _simpleitk(path)
    return Patient(os.path.basename(os.path.normpath(folder)), ct, mr, mask)


def find_patients(root):
    """The patients of a SynthRAD folder (sorted by name), or the one
    patient `root` is.

    Raises:
        InputError: no patient, a patient without its ct or mr, or `.mha`
            files without SimpleITK.
    """
    if not os.path.isdir(root):
        raise InputError(root, "is a file, not a SynthRAD folder" if os.path.exists(root)
                         else "SynthRAD folder not found")
    patient = _patient(root)
    if patient is not None:
        return [patient]
    patients, passed = [], []
    for entry in sorted(list_folder(root)):
        if entry.startswith(".") or not os.path.isdir(os.path.join(root, entry)):
            continue
        patient = _patient(os.path.join(root, entry))
        if patient is None:
            passed.append(entry)
        else:
            patients.append(patient)
    if not patients:
        raise InputError(root, "no SynthRAD patient folder here (one folder per patient "
                         "holding ct.nii.gz, mr.nii.gz and mask.nii.gz)")
    if passed:
        logger.info("%d folder(s) of %s hold neither ct nor mr and are not patients: %s",
                    len(passed), root, ", ".join(passed))
    return patients


def is_mha(path):
    """Whether a SynthRAD file is a MetaImage (`.mha`, outside the format
    registry: read and written here through SimpleITK)."""
    return path.lower().endswith(".mha")


def _simpleitk(path):
    try:
        import SimpleITK
    except ImportError:
        raise InputError(path, MHA_NEEDS) from None
    return SimpleITK


def read_volume(path, domain):
    """A SynthRAD file as a `Scan` (NIfTI through the format registry, `.mha`
    through SimpleITK, slices in its array order) and its `HuImage` view
    (values in the file's units)."""
    name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if not is_mha(path):
        [source] = find_scan_sources(path)
        scan = read_scan(source, domain)
        # With its scan: the mask written beside the results lies on its file's grid.
        return scan, HuImage(name, path, scan.values, scan.spacing, scan.world, scan.turned,
                             scan)
    sitk = _simpleitk(path)
    try:
        image = sitk.ReadImage(path)
        values = sitk.GetArrayFromImage(image).astype(np.float32)
    except Exception as error:  # SimpleITK raises RuntimeError with long text
        raise InputError(path, f"not a readable .mha file ({str(error).splitlines()[0]})"
                         ) from None
    if values.ndim != 3 or not np.all(np.isfinite(values)):
        raise InputError(path, "a SynthRAD .mha file holds one 3-D volume of finite values")
    units = "hu" if domain == "ct" else "signal"
    spacing = tuple(round(float(s), 6) for s in reversed(image.GetSpacing()))
    scan = Scan(path, "mha", domain, values, units, os.path.basename(path), source=image,
                spacing=spacing, world=_mha_world(image))
    return scan, HuImage(name, path, values, spacing, scan.world)


def _mha_world(image):
    """`Scan.world` of a SimpleITK image: its array runs (z, y, x), its
    direction matrix's columns are the x, y, z axes in LPS+."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    world = np.eye(4)
    world[:3, :3] = (direction * np.asarray(image.GetSpacing()))[:, ::-1]
    world[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ world


def translate_mr(scan, translator, intensity, batch_size=8):
    """The synthetic CT of an MRI `Scan`, in HU: (slices, H, W) float32,
    rounded to whole HU as `infer.py` writes it."""
    # Progress shown: a head's slices take minutes on a CPU.
    means, _ = translator.translate_stacks([scan.to_unit(intensity)], batch_size,
                                           pixel_mm=[scan.pixel_mm], progress=True)
    return means[0], np.round(unit_to_values(means[0], "hu", intensity))


def write_sct(scan, unit, intensity, path):
    """Writes the synthetic CT of `scan` (the MRI) to `path`: NIfTI through
    the format registry, `.mha` through SimpleITK with the MRI's geometry."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not is_mha(scan.path):
        write_result(scan, unit, "ct", intensity, "mri2ct", lambda _name: path)
        return path
    sitk = _simpleitk(scan.path)
    # Clipped to int16, as the NIfTI and DICOM writers: a wide window wrapped round.
    hu = np.clip(np.round(unit_to_values(unit, "hu", intensity)), -32768, 32767).astype(np.int16)
    image = sitk.GetImageFromArray(hu)
    image.CopyInformation(scan.source)
    sitk.WriteImage(image, path, True)
    return path
