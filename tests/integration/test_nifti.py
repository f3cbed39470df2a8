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


def test_a_ct_volume_without_air_is_said_to_look_wrong_before_translating(trained_smoke,
                                                                          tmp_path, caplog):
    # HU + 1024 stored without its intercept was translated without a word.
    ct = np.full((24, 32, 3), 24, np.int16)  # 1000 HU of air read as 24
    ct[6:18, 8:24] = 1064
    nib.save(nib.Nifti1Image(ct, AFFINE), str(tmp_path / "ct.nii.gz"))
    with caplog.at_level("WARNING"):
        assert run_cli(infer_main, ["--direction", "ct2mri", "--input",
                                    str(tmp_path / "ct.nii.gz"), "--output", str(tmp_path / "o"),
                                    "--weights-dir", trained_smoke.weights_dir]) == 0
    assert "only 0.0 % of the input's voxels are air" in caplog.text


def test_a_volume_placed_nowhere_is_said_to_have_guessed_sides(trained_smoke, tmp_path,
                                                                caplog):
    # nibabel's affine without qform and sform codes flips x, unsaid.
    image = nib.Nifti1Image(np.random.default_rng(0).gamma(2.0, 300.0, (24, 32, 3))
                            .astype(np.float32), AFFINE)
    image.header.set_qform(None, code=0)
    image.header.set_sform(None, code=0)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), None, image.header),
             str(tmp_path / "t1.nii"))
    header = nib.load(str(tmp_path / "t1.nii")).header
    assert header["qform_code"] == 0 == header["sform_code"]
    with caplog.at_level("WARNING"):
        assert run_cli(infer_main, ["--direction", "mri2ct", "--input", str(tmp_path / "t1.nii"),
                                    "--output", str(tmp_path / "o"),
                                    "--weights-dir", trained_smoke.weights_dir]) == 0
    assert "places it nowhere in the patient" in caplog.text


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


def _weights_at_1mm(trained_smoke, tmp_path):
    """The smoke weights, recorded as trained at 1 mm a network pixel."""
    import json
    import shutil

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    config = json.loads((weights / "config.json").read_text())
    config["pixel_scale"] = {"resize_factor": 1.0, "mm_per_pixel": 1.0}
    (weights / "config.json").write_text(json.dumps(config))
    return str(weights)


@pytest.mark.parametrize("mm, fragment", [
    # 1e-4 mm pixels: 32x24 slices would be 1x1 at 1 mm, translated blank.
    (1e-4, "would be 1x1 at the training pixel scale, smaller than 8x8"),
    # 150 mm pixels: 3600x4800 slices, more than the memory allowed here
    # (200 mm ones, 6.4 m across, are refused as no body's spacing).
    (150.0, "would be 3600x4800 at the training pixel scale"),
    (200.0, "would span 6,400 mm, more than any body"),
])
def test_a_pixel_spacing_far_off_the_training_scale_is_one_line(trained_smoke, tmp_path, capsys,
                                                                 monkeypatch, mm, fragment):
    import vaecyclegan.io.memory_budget as memory_budget

    monkeypatch.setattr(memory_budget, "available_memory_bytes", lambda: 2 * 1024 ** 3)
    path = tmp_path / "odd.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((24, 32, 3), np.float32), np.diag([mm, mm, 2.0, 1.0])),
             str(path))
    code = run_cli(infer_main, ["--direction", "ct2mri", "--input", str(path), "--output",
                                str(tmp_path / "out"), "--weights-dir",
                                _weights_at_1mm(trained_smoke, tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "odd.nii.gz" in err[0] and fragment in err[0], err
    assert not os.path.exists(tmp_path / "out")


def test_spacing_in_metres_is_read_as_millimetres(trained_smoke, tmp_path, caplog):
    # NIfTI's xyzt_units may say metres (or microns): 0.001 m is 1 mm, the
    # training scale here, so the slices are translated at their own size.
    image = nib.Nifti1Image(np.ones((24, 32, 3), np.float32), np.diag([0.001, 0.001, 0.002, 1]))
    image.header.set_xyzt_units("meter")
    nib.save(image, str(tmp_path / "metres.nii.gz"))
    caplog.set_level("INFO")
    assert run_cli(infer_main, ["--direction", "ct2mri", "--input",
                                str(tmp_path / "metres.nii.gz"), "--output", str(tmp_path / "out"),
                                "--weights-dir", _weights_at_1mm(trained_smoke, tmp_path)]) == 0
    assert "translated at their own pixel scale" in caplog.text
    assert nib.load(str(tmp_path / "out" / "metres.nii.gz")).shape == (24, 32, 3)


@pytest.mark.parametrize("count, refused", [(6, False), (8, True)])
def test_a_folder_whose_results_would_not_fit_beside_its_inputs_is_one_line(
        trained_smoke, tmp_path, capsys, monkeypatch, count, refused):
    # Each volume alone passes its reader's check (48 bytes a voxel); all
    # results are held until written (8 bytes a voxel): a folder of many
    # volumes had been read, then killed for memory while translating.
    import vaecyclegan.io.memory_budget as memory_budget

    voxels = 16 * 16 * 4
    monkeypatch.setattr(memory_budget, "available_memory_bytes", lambda: 56 * voxels)
    folder = tmp_path / "volumes"
    folder.mkdir()
    for index in range(count):
        nib.save(nib.Nifti1Image(np.ones((16, 16, 4), np.float32), np.diag([1.0, 1, 2, 1])),
                 str(folder / f"v{index}.nii.gz"))
    code = run_cli(infer_main, ["--direction", "ct2mri", "--input", str(folder), "--output",
                                str(tmp_path / "out"), "--weights-dir",
                                _weights_at_1mm(trained_smoke, tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    if not refused:
        assert code == 0 and len(os.listdir(tmp_path / "out")) == count
        return
    assert code == 2 and len(err) == 1 and "translate fewer in a run" in err[0], err
    assert not os.path.exists(tmp_path / "out")
