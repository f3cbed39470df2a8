"""NIfTI volumes: slices in display orientation, affine and header kept."""

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes

from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.infer import main as infer_main
from vaecyclegan.config import IntensityConfig
from vaecyclegan.nifti_io import read_nifti, write_nifti

# Left-to-right flipped x (an "LAS" volume), 0.9 mm in-plane, 2.5 mm slices.
AFFINE = np.array([[-0.9, 0, 0, 90.0], [0, 0.9, 0, -110.0], [0, 0, 2.5, -40.0], [0, 0, 0, 1]])


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


def test_mri2ct_on_a_volume_writes_ct_in_hu_with_the_same_affine(trained_smoke, tmp_path):
    rng = np.random.default_rng(1)
    mri = rng.gamma(2.0, 300.0, (24, 32, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(mri, AFFINE), str(tmp_path / "t1.nii.gz"))
    out = tmp_path / "out"
    assert run_cli(infer_main, ["--direction", "mri2ct", "--input", str(tmp_path / "t1.nii.gz"),
                                "--output", str(out), "--samples", "2",
                                "--weights-dir", trained_smoke.weights_dir]) == 0
    result = nib.load(str(out / "t1.nii.gz"))
    np.testing.assert_array_equal(result.affine, nib.load(str(tmp_path / "t1.nii.gz")).affine)
    assert result.shape == (24, 32, 3) and result.get_data_dtype() == np.int16
    hu = np.asarray(result.dataobj)
    assert hu.min() >= -1000 and hu.max() <= 2000
    assert b"synthetic CT" in result.header["descrip"].tobytes()
    std = nib.load(str(out / "std" / "t1.nii.gz"))
    assert std.shape == (24, 32, 3) and std.get_data_dtype() == np.float32
    np.testing.assert_array_equal(std.affine, result.affine)


@pytest.mark.parametrize("make, fragment", [
    (lambda: nib.Nifti1Image(np.zeros((16, 16, 4, 3), np.float32), AFFINE), "4-D NIfTI (16x16x4x3)"),
    (lambda: nib.Nifti1Image(np.where(np.eye(16)[:, :, None] > 0, np.nan, 1.0)
                             .repeat(2, axis=2).astype(np.float32), AFFINE), "32 voxel(s) are NaN"),
])
def test_volumes_that_cannot_be_translated_are_one_line(trained_smoke, tmp_path, capsys, make,
                                                        fragment):
    path = tmp_path / "bad.nii.gz"
    nib.save(make(), str(path))
    code = run_cli(infer_main, ["--direction", "ct2mri", "--input", str(path), "--output",
                                str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad.nii.gz" in err[0] and fragment in err[0], err
    assert not os.path.exists(tmp_path / "out")
