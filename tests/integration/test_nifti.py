"""`infer.py` on NIfTI volumes, with the smoke run's weights."""

import os

import nibabel as nib
import numpy as np
import pytest

from tests.harness import LAS_AFFINE
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.infer import main as infer_main

AFFINE = np.array(LAS_AFFINE)


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
    (lambda: nib.Nifti1Image(np.zeros((32, 32, 0), np.int16), AFFINE),
     "volume is 32x32x0"),
    (lambda: nib.Nifti1Image(np.zeros((16, 16, 3), [("R", "u1"), ("G", "u1"), ("B", "u1")]),
                             AFFINE), "voxels of data type RGB"),
    (lambda: nib.Nifti1Image(np.zeros((16, 16, 4, 3), np.float32), AFFINE),
     "4-D NIfTI (16x16x4x3)"),
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
