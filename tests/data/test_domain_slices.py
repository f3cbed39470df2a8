"""Training data from real scans: DICOM, NIfTI and 16-bit images become
slices, converted as inference converts them; bad files are skipped."""

import shutil

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from tests.harness import train_options
from vaecyclegan.config import IntensityConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.data.domain_slices import load_domain_slices
from vaecyclegan.errors import InputError
from vaecyclegan.io.image_format import write_png
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, hu_to_unit


def _mixed_ct_folder(folder):
    """A CT folder holding a DICOM file, a 4-slice NIfTI volume (one slice
    blank), a 16-bit HU PNG and an unreadable file."""
    folder.mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    volume = np.random.default_rng(0).uniform(-1000, 1500, (20, 24, 4)).astype(np.int16)
    volume[:, :, 3] = -1000  # air above the head: blank
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(folder / "head.nii.gz"))
    hu16 = np.full((32, 32), PNG16_HU_OFFSET + 40, np.uint16)
    hu16[4:8, 4:8] = PNG16_HU_OFFSET + 1000
    write_png(str(folder / "slice16.png"), hu16)
    (folder / "broken.png").write_bytes(b"not a png")


def test_a_mixed_folder_becomes_slices_with_hu_kept(tmp_path, capsys):
    _mixed_ct_folder(tmp_path / "ct")
    intensity = IntensityConfig()
    domain = load_domain_slices(str(tmp_path / "ct"), "ct", intensity, 32)
    # 1 DICOM slice + 3 of 4 volume slices + 1 PNG; the broken file skipped.
    assert domain.slices.shape == (5, 32, 32, 1)
    assert domain.blank == 1 and len(domain.skipped) == 1 and "broken.png" in domain.skipped[0]
    assert domain.kinds == {"DICOM": 1, "NIfTI": 1, "PNG/JPEG/TIFF 16-bit": 1}
    warning = capsys.readouterr().err
    assert "skipped 1 unreadable file(s)" in warning and "broken.png" in warning
    # The 16-bit PNG's HU went through the window: 40 HU and 1000 HU.
    # Order: images and volumes by file name, then DICOM series.
    png = domain.slices[3, :, :, 0]
    expected = hu_to_unit(np.array([40.0, 1000.0]), intensity.ct_window_hu)
    assert png.min() == pytest.approx(expected[0], abs=1e-4)
    assert png.max() == pytest.approx(expected[1], abs=1e-4)
    text = domain.describe()
    assert "5 slices from 3 files" in text and "1 blank slices dropped" in text


def test_a_domain_with_no_readable_slice_stops_the_run(tmp_path):
    (tmp_path / "mri").mkdir()
    (tmp_path / "mri" / "a.png").write_bytes(b"")
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "mri" / "plan.dcm")
    with pytest.raises(InputError, match="no readable MRI slice left to train on"):
        load_domain_slices(str(tmp_path / "mri"), "mri", IntensityConfig(), 32)


def test_ct_dir_and_mri_dir_override_the_mapping(phantom_dir, tmp_path):
    swapped = resolve_dataset(phantom_dir, ct_dir="trainB", mri_dir="trainA")
    assert swapped.ct_train.endswith("trainB") and swapped.mri_train.endswith("trainA")
    assert swapped.ct_test.endswith("testB") and swapped.mri_test.endswith("testA")
    assert swapped.ct_test_hu is None  # testA_hu belongs to testA
    (tmp_path / "ct").mkdir()
    (tmp_path / "mri").mkdir()
    alone = resolve_dataset(None, ct_dir=str(tmp_path / "ct"), mri_dir=str(tmp_path / "mri"))
    assert (alone.ct_train, alone.mri_train, alone.ct_test) == (
        str(tmp_path / "ct"), str(tmp_path / "mri"), None)
    with pytest.raises(InputError, match="both --ct-dir and --mri-dir"):
        resolve_dataset(None, ct_dir=str(tmp_path / "ct"))
    with pytest.raises(InputError, match="folder not found"):
        resolve_dataset(phantom_dir, ct_dir="nowhere")


def test_train_on_dicom_and_nifti_folders_with_a_summary(tmp_path, capsys):
    from vaecyclegan.workflows.train import run_training

    _mixed_ct_folder(tmp_path / "scans" / "ct")
    mri = tmp_path / "scans" / "mri"
    mri.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), mri / "mr.dcm")
    t1 = np.random.default_rng(1).gamma(2.0, 200.0, (24, 24, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(t1, np.eye(4)), str(mri / "t1.nii"))
    options = train_options(data="phantom", ct_dir=str(tmp_path / "scans" / "ct"),
                            mri_dir=str(mri), steps=2, stage="translate",
                            weights_dir=str(tmp_path / "w"), logdir=str(tmp_path / "run"),
                            data_root=str(tmp_path / "data"))
    assert run_training(options) is None  # no test pairs: no closing evaluation
    out = capsys.readouterr().out
    assert "CT  (" in out and "5 slices from 3 files" in out
    assert "MRI (" in out and "4 slices from 2 files" in out
    assert "test:      none" in out
    assert not (tmp_path / "data").exists()  # the phantom was not rendered
    assert (tmp_path / "w" / "g_target_weights.h5").is_file()


def test_the_pixel_scale_of_the_loaded_slices_is_measured(tmp_path):
    folder = tmp_path / "mri"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        write_png(str(folder / f"{index}.png"), rng.integers(0, 255, (128, 128), np.uint8))
    intensity = IntensityConfig()
    whole = load_domain_slices(str(folder), "mri", intensity, 32)
    assert whole.slices.shape == (3, 32, 32, 1)
    assert whole.resize_factor == 4.0 and whole.mm_per_pixel is None
    # Crops: slices shrunk by the factor only, at least the training size.
    native = load_domain_slices(str(folder), "mri", intensity, 32, crop_factor=1)
    assert native.slices.shape == (3, 128, 128, 1) and native.resize_factor == 1.0
    halved = load_domain_slices(str(folder), "mri", intensity, 32, crop_factor=2)
    assert halved.slices.shape == (3, 64, 64, 1) and halved.resize_factor == 2.0
    assert "4 original pixels a pixel" in whole.describe()


def test_a_spacing_gives_millimetres_per_training_pixel(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    volume = np.random.default_rng(0).uniform(-1000, 1500, (40, 40, 2)).astype(np.int16)
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(folder / "head.nii.gz"))
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 20)
    # 40 pixels of 0.5 mm shrunk to 20: a training pixel is 1 mm.
    assert domain.resize_factor == 2.0 and domain.mm_per_pixel == pytest.approx(1.0)
