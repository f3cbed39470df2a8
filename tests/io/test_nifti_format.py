"""NIfTI volumes: slices in display orientation, affine and header kept."""

import gzip

import nibabel as nib
import numpy as np
from nibabel.orientations import aff2axcodes

from tests.harness import LAS_AFFINE
from vaecyclegan.config import IntensityConfig
from vaecyclegan.io.nifti_format import read_nifti, write_nifti

AFFINE = np.array(LAS_AFFINE)


def _ct_volume(path, shape=(40, 48, 6), seed=0):
    rng = np.random.default_rng(seed)
    hu = rng.uniform(-1100, 2400, shape).round().astype(np.int16)
    image = nib.Nifti1Image(hu, AFFINE)
    image.header["descrip"] = b"test CT"
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))
    return hu


def test_a_volume_round_trips_with_its_affine_and_hu_within_one_step(tmp_path):
    intensity = IntensityConfig()
    hu = _ct_volume(tmp_path / "ct.nii.gz")
    scan = read_nifti(str(tmp_path / "ct.nii.gz"), "ct")
    assert scan.units == "hu" and scan.values.shape == (6, 48, 40)
    write_nifti(str(tmp_path / "back.nii.gz"), scan, scan.to_unit(intensity), "ct", intensity,
                "round trip")
    back, original = nib.load(str(tmp_path / "back.nii.gz")), nib.load(str(tmp_path / "ct.nii.gz"))
    # Equal to the float32 affine the file stores, bit for bit.
    np.testing.assert_array_equal(back.affine, original.affine)
    for field in ("srow_x", "srow_y", "srow_z", "qform_code", "sform_code", "pixdim", "dim"):
        np.testing.assert_array_equal(back.header[field], original.header[field])
    assert back.header.get_xyzt_units() == ("mm", "sec")
    assert back.get_data_dtype() == np.int16
    low, high = intensity.ct_window_hu
    error = np.abs(np.asarray(back.dataobj).astype(float) - np.clip(hu, low, high))
    assert error.max() <= 1.0  # one quantisation step (1 HU)
    with gzip.open(tmp_path / "back.nii.gz") as f:  # really gzip-compressed
        assert len(f.read()) > 0


def test_slices_are_cut_in_radiological_display_orientation(tmp_path):
    volume = np.zeros((40, 48, 10), np.int16)
    # LAS: index 0 of x is the patient's far right, index 0 of y the back.
    volume[0, 0, 2] = 1000
    nib.save(nib.Nifti1Image(volume, AFFINE), str(tmp_path / "v.nii"))
    assert aff2axcodes(AFFINE) == ("L", "A", "S")
    scan = read_nifti(str(tmp_path / "v.nii"), "ct")
    # Axial display: anterior at the top, the patient's right on the left.
    k, row, col = np.unravel_index(np.argmax(scan.values), scan.values.shape)
    assert (k, row, col) == (2, 47, 0)
    coronal = read_nifti(str(tmp_path / "v.nii"), "ct", axis="coronal")
    assert coronal.values.shape == (48, 10, 40)
