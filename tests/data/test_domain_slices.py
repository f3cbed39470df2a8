"""Training data from real scans: DICOM, NIfTI and 16-bit images become
slices, converted as inference converts them; bad files are skipped."""

import os
import shutil

import cv2
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.harness import train_options, write_ct_series
from vaecyclegan.config import IntensityConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.data.domain_slices import load_domain_slices
from vaecyclegan.errors import InputError
from vaecyclegan.io.formats import find_scan_sources, read_scan
from vaecyclegan.io.image_format import write_png
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, hu_to_unit
from vaecyclegan.workflows.training_data import load_training_domains


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


def _folders(tmp_path):
    """The `DatasetFolders` of `tmp_path/ct` and `tmp_path/mri`, no test folders."""
    from vaecyclegan.data.dataset_layout import DatasetFolders

    return DatasetFolders(str(tmp_path / "ct"), str(tmp_path / "mri"), None, None, None)


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


def test_scans_in_subfolders_are_read_as_a_pacs_export_keeps_them(tmp_path):
    # A patient's DICOM series in a subfolder of the training folder was
    # left out (named in the log only): one-folder-per-series exports could
    # not be trained on as they are.
    _mixed_ct_folder(tmp_path / "ct")
    patient = tmp_path / "ct" / "patient7"
    # One series split over two folders is still one series (3 slices).
    (patient / "series1").mkdir(parents=True)
    (patient / "series1b").mkdir()
    write_ct_series(patient / "series1", ["IM0001", "IM0002", "IM0003"])
    os.replace(patient / "series1" / "IM0003", patient / "series1b" / "IM0003")
    hidden = tmp_path / "ct" / ".cache"
    hidden.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), hidden / "IM0001")  # never read
    os.symlink(tmp_path / "ct", patient / "loop")  # a link loop: each folder read once
    domain = load_domain_slices(str(tmp_path / "ct"), "ct", IntensityConfig(), 32)
    assert len(domain.slices) == 5 + 3  # the folder's own scans, then the series' slices
    assert domain.kinds == {"DICOM": 1 + 3, "NIfTI": 1, "PNG/JPEG/TIFF 16-bit": 1}
    names = [source.name for source in find_scan_sources(str(tmp_path / "ct"), recursive=True)]
    assert names[-1] == os.path.join("ct", "patient7", "series1") + " (3 DICOM files)"
    # A folder of subfolders only trains too.
    assert len(load_domain_slices(str(tmp_path), "ct", IntensityConfig(), 32).slices) == 8
    # A linked patient folder outside the tree is read (a curated set of
    # links), and a second link to it adds nothing.
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "elsewhere" / "IM9")
    os.symlink(tmp_path / "elsewhere", tmp_path / "ct" / "linked")
    os.symlink(tmp_path / "elsewhere", patient / "linked_again")
    assert len(load_domain_slices(str(tmp_path / "ct"), "ct", IntensityConfig(),
                                  32).slices) == 9
    # Control: inference's folders are read without their subfolders, and
    # a folder of subfolders only says where the scans are.
    assert len(find_scan_sources(str(tmp_path / "ct"))) == 4
    with pytest.raises(InputError, match="its 2 subfolder.*'ct'.*are not read: give one of "
                       "them"):
        find_scan_sources(str(tmp_path))
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    with pytest.raises(InputError, match="no image, DICOM or NIfTI file in this folder or "
                       "its subfolders"):
        load_domain_slices(str(tmp_path / "empty"), "ct", IntensityConfig(), 32)


def test_links_that_lead_above_the_folder_or_into_another_dataset_folder_are_left_out(
        tmp_path, caplog):
    # A link to ../trainB in trainA trained CT on MRI; a link to .. read
    # every sibling (to / the whole file system); a file linked twice
    # counted twice.
    from vaecyclegan.workflows.training_data import load_training_domains

    for name in ("ct", "mri"):
        (tmp_path / name).mkdir()
        shutil.copy(get_testdata_file("CT_small.dcm" if name == "ct" else "MR_small.dcm"),
                    tmp_path / name / "IM1")
    os.symlink(tmp_path / "mri", tmp_path / "ct" / "to_mri")
    os.symlink(tmp_path, tmp_path / "ct" / "up")
    os.symlink(tmp_path / "ct" / "IM1", tmp_path / "ct" / "IM1_again")
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        (_, ct), _ = load_training_domains(_folders(tmp_path), IntensityConfig(), 32)
    assert len(ct) == 1
    assert "2 link(s) in" in caplog.text and "to_mri" in caplog.text and "up" in caplog.text
    # Control: a link to a folder outside the dataset is read.
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "elsewhere" / "IM2")
    os.symlink(tmp_path / "elsewhere", tmp_path / "ct" / "patient2")
    (_, ct), _ = load_training_domains(_folders(tmp_path), IntensityConfig(), 32)
    assert len(ct) == 2


def test_a_subfolder_that_cannot_be_listed_is_left_out_and_said(tmp_path, monkeypatch,
                                                                   caplog):
    # A root-owned lost+found in a data disk's root stopped the whole
    # training with "folder cannot be listed".
    _mixed_ct_folder(tmp_path / "ct")
    (tmp_path / "ct" / "lost+found").mkdir()
    scandir = os.scandir

    def refusing(path="."):
        if os.path.basename(os.fspath(path)) == "lost+found":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        domain = load_domain_slices(str(tmp_path / "ct"), "ct", IntensityConfig(), 32)
    assert len(domain.slices) == 5
    assert "1 subfolder(s) of" in caplog.text and "lost+found: Permission denied" in caplog.text
    # The folder itself unlisted is still one line.
    with pytest.raises(InputError, match="folder cannot be listed"):
        find_scan_sources(str(tmp_path / "ct" / "lost+found"), recursive=True)


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


DISC_MM = 60.0


def _disc_volume(path, pixel_mm, columns, rows=None, slices=2, inside=1000.0, outside=-1000.0,
                 texture=0.0):
    """A NIfTI volume of `pixel_mm` mm pixels whose axial slices, `rows` x
    `columns`, hold a 60 mm disc (`inside`) centred in `outside` (air), with
    a random `texture` added."""
    rows = rows or columns
    x = (np.arange(columns) + 0.5 - columns / 2) * pixel_mm
    y = (np.arange(rows) + 0.5 - rows / 2) * pixel_mm
    disc = x[:, None] ** 2 + y[None, :] ** 2 <= (DISC_MM / 2) ** 2  # (x, y), as NIfTI stores
    volume = np.where(disc, inside, outside)[:, :, None].repeat(slices, axis=2)
    volume = volume + np.random.default_rng(0).uniform(0, texture, volume.shape)
    affine = np.diag([pixel_mm, pixel_mm, 3.0, 1.0])
    nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), str(path))


def _unit_planes(path, domain):
    """The file's slices in [-1, 1], as the loader reads them."""
    [source] = find_scan_sources(str(path))
    return list(read_scan(source, domain).to_unit(IntensityConfig()))


def _plain_resize(plane, side):
    """The old rule: every slice resized to side x side, spacing ignored."""
    shrink = max(plane.shape) > side
    return np.clip(cv2.resize(plane, (side, side), interpolation=cv2.INTER_AREA if shrink
                              else cv2.INTER_CUBIC), -1.0, 1.0)


def _disc(plane):
    """The pixels of the bright disc: above half-way from the slice's
    background to its maximum."""
    return plane > (float(plane.min()) + float(plane.max())) / 2


def _diameter(plane):
    """The disc's diameter in pixels, from its area."""
    return 2.0 * np.sqrt(np.count_nonzero(_disc(plane)) / np.pi)


@pytest.mark.parametrize("crop_factor", [None, 1])
def test_slices_of_different_spacings_are_resampled_to_one_mm(tmp_path, crop_factor):
    # One 60 mm disc: at 1 mm in a 128 mm field, at 2 mm in a 192 mm one.
    folder = tmp_path / "ct"
    folder.mkdir()
    _disc_volume(folder / "a_1mm.nii.gz", 1.0, 128)
    _disc_volume(folder / "b_2mm.nii.gz", 2.0, 96)
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 64, crop_factor=crop_factor)
    side = 64 if crop_factor is None else 112  # the median side, 112, over the factor
    assert domain.slices.shape == (4, side, side, 1)
    # The target: the median of the mm per pixel a plain resize would give.
    target = float(np.median([1.0 * 128 / side] * 2 + [2.0 * 96 / side] * 2))
    assert domain.mm_per_pixel == pytest.approx(target, rel=1e-12)
    diameters = [_diameter(plane[..., 0]) for plane in domain.slices]
    assert diameters == pytest.approx([DISC_MM / target] * 4, abs=1.5)
    # Control: resized alone, the same disc spans 1.5 times more pixels at
    # 1 mm than at 2 mm.
    plain = [_diameter(_plain_resize(plane, side)) for name in ("a_1mm", "b_2mm")
             for plane in _unit_planes(folder / f"{name}.nii.gz", "ct")]
    assert plain[0] > plain[2] + 8
    # The 1-mm field shrank within the side: padded with its air.
    assert domain.slices[0, 0, 0, 0] == pytest.approx(-1.0)
    assert domain.resize_factor == pytest.approx(float(np.median([target, target / 2.0])))


@pytest.mark.parametrize("crop_factor", [None, 2])
@pytest.mark.parametrize("volumes", [[(0.8, 100), (0.8, 100)], [(0.8, 100), (1.6, 50)]],
                         ids=["one spacing", "one field of view"])
def test_slices_at_one_scale_load_exactly_as_a_plain_resize(tmp_path, volumes, crop_factor):
    folder = tmp_path / "mri"
    folder.mkdir()
    for index, (pixel_mm, side) in enumerate(volumes):
        _disc_volume(folder / f"{index}.nii.gz", pixel_mm, side, inside=800.0, outside=0.0,
                     texture=200.0)
    domain = load_domain_slices(str(folder), "mri", IntensityConfig(), 32,
                                crop_factor=crop_factor)
    planes = [plane for index in range(len(volumes))
              for plane in _unit_planes(folder / f"{index}.nii.gz", "mri")]
    sides = [max(plane.shape) for plane in planes]
    side = 32 if crop_factor is None else int(round(float(np.median(sides)) / crop_factor))
    expected = np.stack([_plain_resize(plane, side) for plane in planes]).astype(np.float32)
    np.testing.assert_array_equal(domain.slices[..., 0], expected)
    assert domain.mm_per_pixel == pytest.approx(80.0 / side, rel=1e-6)
    assert domain.resize_factor == pytest.approx(float(np.median(sides)) / side, rel=1e-6)


def test_a_non_square_spaced_slice_keeps_its_aspect_and_is_padded(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    _disc_volume(folder / "wide.nii.gz", 1.0, 128, rows=80)  # 128 x 80 mm
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 64)
    assert domain.mm_per_pixel == pytest.approx(2.0)
    plane = domain.slices[0, :, :, 0]
    rows, columns = np.nonzero(_disc(plane))
    assert np.ptp(rows) + 1 == pytest.approx(30, abs=1)
    assert np.ptp(columns) + 1 == pytest.approx(30, abs=1)
    # 40 rows of slice, 12 of air above and below.
    np.testing.assert_array_equal(plane[:12], plane.min())
    np.testing.assert_array_equal(plane[-12:], plane.min())
    assert plane[12:-12].max() > plane.min()
    # Control: a plain resize stretches the disc to 48 rows.
    [unit, _] = _unit_planes(folder / "wide.nii.gz", "ct")
    rows = np.nonzero(_disc(_plain_resize(unit, 64)))[0]
    assert np.ptp(rows) + 1 >= 46


def test_both_domains_are_loaded_at_one_mm(tmp_path, capsys):
    folders = _folders(tmp_path)
    for name in ("ct", "mri"):
        (tmp_path / name).mkdir()
    _disc_volume(tmp_path / "ct" / "ct.nii.gz", 1.0, 128)  # 2 mm a pixel at 64 px
    _disc_volume(tmp_path / "mri" / "t1.nii.gz", 1.5, 128, inside=800.0, outside=0.0)  # 3 mm
    (mri, ct), scale = load_training_domains(folders, IntensityConfig(), 64)
    assert scale.mm_per_pixel == pytest.approx(2.0)
    assert mri.shape == ct.shape == (2, 64, 64, 1)
    assert [_diameter(p[..., 0]) for p in np.concatenate([mri, ct])] == pytest.approx(
        [DISC_MM / 2.0] * 4, abs=1.5)
    # Spaced inputs are resampled by mm: no warning about resize factors.
    assert "different factors" not in capsys.readouterr().err
    # Control: MRI on its own is loaded at 3 mm, its disc 20 pixels wide.
    alone = load_domain_slices(folders.mri_train, "mri", IntensityConfig(), 64)
    assert alone.mm_per_pixel == pytest.approx(3.0)
    assert _diameter(alone.slices[0, :, :, 0]) == pytest.approx(20.0, abs=1.5)


def test_image_domains_shrunk_by_different_factors_are_warned_about(tmp_path, capsys):
    folders = _folders(tmp_path)
    rng = np.random.default_rng(0)
    for name, side in (("ct", 128), ("mri", 64)):
        (tmp_path / name).mkdir()
        write_png(str(tmp_path / name / "0.png"), rng.integers(0, 255, (side, side), np.uint8))
    _, scale = load_training_domains(folders, IntensityConfig(), 32)
    assert scale.resize_factor == 3.0 and scale.mm_per_pixel is None
    assert "shrunk by different factors (2 and 4)" in capsys.readouterr().err


def test_the_upscaler_learns_each_domain_at_its_own_detail(tmp_path, monkeypatch):
    """Translation slices resampled to one mm are not reused for the
    upscaler: MRI at 1.5 mm would have been enlarged to CT's 1 mm, and the
    upscaler would learn that blur as high resolution."""
    import vaecyclegan.upscaler.degraded_dataset as degraded_dataset
    from vaecyclegan.training.presets import PRESETS
    from vaecyclegan.workflows.training_data import make_upscaler_dataset

    folders = _folders(tmp_path)
    for name in ("ct", "mri"):
        (tmp_path / name).mkdir()
    _disc_volume(tmp_path / "ct" / "ct.nii.gz", 1.0, 128)
    _disc_volume(tmp_path / "mri" / "t1.nii.gz", 1.5, 128, inside=800.0, outside=0.0)
    loaded = load_training_domains(folders, IntensityConfig(), 64)
    seen = []
    monkeypatch.setattr(degraded_dataset, "make_sr_dataset",
                        lambda images, *args, **kwargs: seen.append(images))
    make_upscaler_dataset(PRESETS["smoke"], folders, IntensityConfig(), 4, 1, 0,
                          loaded=loaded)(0)
    [(mri, ct)] = seen  # one stack a domain
    assert mri.shape == ct.shape == (2, 128, 128, 1)  # both at their native 128 px
    mri_width, ct_width = _diameter(mri[0, ..., 0]), _diameter(ct[0, ..., 0])
    assert mri_width == pytest.approx(DISC_MM / 1.5, abs=1.5)
    assert ct_width == pytest.approx(DISC_MM / 1.0, abs=1.5)
    # Control: loaded at one mm, MRI is enlarged to 1 mm (its disc 60 px wide).
    (mri, _), _ = load_training_domains(folders, IntensityConfig(), 32, crop_factor=1)
    assert _diameter(mri[0, ..., 0]) == pytest.approx(DISC_MM, abs=1.5)


def test_slices_enlarged_to_the_training_size_are_not_the_upscalers_detail(tmp_path,
                                                                            monkeypatch):
    """32-px images trained at 64 px were enlarged x2; the upscaler learns
    from the 32-px originals, not from their bilinear blur."""
    import vaecyclegan.upscaler.degraded_dataset as degraded_dataset
    from vaecyclegan.training.presets import PRESETS
    from vaecyclegan.workflows.training_data import make_upscaler_dataset

    folders = _folders(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("ct", "mri"):
        (tmp_path / name).mkdir()
        write_png(str(tmp_path / name / "0.png"), rng.integers(0, 255, (32, 32), np.uint8))
    loaded = load_training_domains(folders, IntensityConfig(), 64)
    assert loaded[1].resize_factor == 0.5
    seen = []
    monkeypatch.setattr(degraded_dataset, "make_sr_dataset",
                        lambda images, *args, **kwargs: seen.append(images))
    make_upscaler_dataset(PRESETS["smoke"], folders, IntensityConfig(), 4, 1, 0,
                          loaded=loaded)(0)
    [(mri, ct)] = seen
    assert mri.shape == ct.shape == (1, 32, 32, 1)


def test_a_training_side_beyond_memory_is_refused_before_reading(tmp_path, monkeypatch):
    # --image-size 100000 was a cv2 traceback ("Insufficient memory").
    import vaecyclegan.io.memory_budget as memory_budget

    monkeypatch.setattr(memory_budget, "available_memory_bytes", lambda: 24 * 2**30)
    folder = tmp_path / "trainA"
    folder.mkdir()
    with pytest.raises(InputError, match="a training slice of 100000x100000 .10,000 megapixels.: "
                       "needs about 74.5 GiB"):
        load_domain_slices(str(folder), "ct", IntensityConfig(), 100_000)


def test_pixels_that_are_not_square_are_resampled_axis_by_axis(tmp_path):
    # One mean pixel size for both axes showed the anatomy squashed 2:1.
    folder = tmp_path / "trainA"
    folder.mkdir()
    x = (np.arange(64) + 0.5 - 32) * 2.0  # 64 columns of 2 mm: 128 mm
    y = (np.arange(128) + 0.5 - 64) * 1.0  # 128 rows of 1 mm: 128 mm
    disc = x[:, None] ** 2 + y[None, :] ** 2 <= (DISC_MM / 2) ** 2
    volume = np.where(disc, 1000.0, -1000.0)[:, :, None].repeat(2, axis=2)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), np.diag([2.0, 1.0, 3.0, 1.0])),
             str(folder / "ct.nii.gz"))
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 32)
    assert domain.mm_per_pixel == pytest.approx(4.0)  # the 128 mm field over 32 pixels
    rows, columns = np.nonzero(_disc(domain.slices[0, ..., 0]))
    height, width = np.ptp(rows) + 1, np.ptp(columns) + 1
    assert abs(height - width) <= 1 and abs(height - DISC_MM / 4.0) <= 1.5, (height, width)


def test_memory_running_out_while_reading_stops_instead_of_skipping_the_rest(tmp_path,
                                                                                monkeypatch):
    # Refused for the memory the slices read before it left, the later
    # volumes were listed as "unreadable" and training went on with the
    # first patients alone. A file too large on its own is still skipped.
    import vaecyclegan.io.nifti_format as nifti_format
    from vaecyclegan.io.memory_budget import NotEnoughMemory

    folder = tmp_path / "trainA"
    folder.mkdir()
    for name in ("a", "b", "c"):
        volume = np.random.default_rng(0).uniform(-1000, 1500, (16, 16, 3)).astype(np.int16)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(folder / f"{name}.nii.gz"))
    needed = {}

    def check(path, pixels, description, **kwargs):
        if os.path.basename(path) in needed:
            raise NotEnoughMemory(path, "too large", needed[os.path.basename(path)], 0)

    monkeypatch.setattr(nifti_format, "check_fits_in_memory", check)
    needed["a.nii.gz"] = 10**15  # a petabyte: too large whatever is held
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 16)
    assert len(domain.slices) == 6 and "a.nii.gz: too large" in domain.skipped[0]
    del needed["a.nii.gz"]
    needed["b.nii.gz"] = 100  # less than a's slices hold: they leave too little
    with pytest.raises(NotEnoughMemory, match=r"b.nii.gz: too large, with 3 CT slice\(s\) of "
                                              r".* held already"):
        load_domain_slices(str(folder), "ct", IntensityConfig(), 16)


@pytest.mark.parametrize("kind", ["png", "png-opencv", "dicom"])
def test_decoding_that_runs_out_of_memory_stops_once_slices_are_held(tmp_path, monkeypatch,
                                                                     kind):
    # A MemoryError while decoding a PNG or DICOM was "not a readable
    # image" and skipped: training went on with the files before it.
    import cv2
    import pydicom

    import vaecyclegan.io.image_format as image_format
    from tests.harness import write_image
    from vaecyclegan.io.memory_budget import NotEnoughMemory

    folder = tmp_path / "trainA"
    folder.mkdir()
    for name in ("a", "b"):
        if kind.startswith("png"):
            write_image(folder / f"{name}.png", np.tile(np.arange(32, dtype=np.uint8), (32, 1)))
        else:
            write_ct_series(folder, [f"{name}.dcm"])
    failing = {"name": "b"}
    if kind.startswith("png"):
        decode = cv2.imdecode

        def imdecode(data, flags):
            if failing["name"] in failing.get("now", ""):
                if kind == "png":
                    raise MemoryError
                error = cv2.error("Failed to allocate 1073741824 bytes")
                error.code = -4  # OpenCV's own allocation failed: StsNoMem
                raise error
            return decode(data, flags)

        monkeypatch.setattr(image_format.cv2, "imdecode", imdecode)
        open_file = image_format.open_regular_file

        def opened(path, *args, **kwargs):
            failing["now"] = os.path.basename(path)
            return open_file(path, *args, **kwargs)

        monkeypatch.setattr(image_format, "open_regular_file", opened)
    else:
        array = pydicom.dataset.Dataset.pixel_array

        def pixel_array(dataset):
            if os.path.basename(dataset.filename).startswith(failing["name"]):
                raise MemoryError
            return array.fget(dataset)

        monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(pixel_array))
    with pytest.raises(NotEnoughMemory, match=r"b\.\w+: not enough memory to decode .*, with 1 "
                                              r"CT slice\(s\) of .* held already"):
        load_domain_slices(str(folder), "ct", IntensityConfig(), 16)
    # The first file, with nothing held yet: skipped, as a file too large
    # on its own.
    failing["name"] = "a"
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 16)
    assert len(domain.slices) == 1 and "not enough memory" in domain.skipped[0]


@pytest.mark.parametrize("crop_factor", [None, 2.0])
def test_a_non_square_image_keeps_its_aspect_as_inference_will_see_it(tmp_path, crop_factor):
    # Without spacing, a 320 x 160 image was stretched to a square here,
    # while inference shrinks both axes by the one recorded factor: the
    # network saw anatomy twice as tall in training.
    from tests.harness import write_image

    folder = tmp_path / "ct"
    folder.mkdir()
    rows, columns = np.mgrid[:160, :320]
    disc = (rows - 80) ** 2 + (columns - 160) ** 2 <= 50**2
    write_image(folder / "wide.png", np.where(disc, PNG16_HU_OFFSET + 1000,
                                              PNG16_HU_OFFSET - 1000).astype(np.uint16))
    domain = load_domain_slices(str(folder), "ct", IntensityConfig(), 64,
                                crop_factor=crop_factor)
    side = domain.slices.shape[1]
    assert domain.resize_factor == pytest.approx(320 / side)
    found_rows, found_columns = np.nonzero(_disc(domain.slices[0, :, :, 0]))
    diameter = 100 / domain.resize_factor
    assert np.ptp(found_rows) + 1 == pytest.approx(diameter, abs=1.5)
    assert np.ptp(found_columns) + 1 == pytest.approx(diameter, abs=1.5)


def test_mri_in_the_ct_folder_is_said_to_look_like_mri(tmp_path, phantom_dir, caplog):
    # MRI signal read as HU is all tissue and bone: it trained as CT
    # without a word (the A and B folders swapped, say).
    import logging

    folder = tmp_path / "trainA"
    folder.mkdir()
    signal = np.random.default_rng(0).uniform(100, 4000, (24, 24, 3)).astype(np.int16)
    nib.save(nib.Nifti1Image(signal, np.eye(4)), str(folder / "t1.nii.gz"))
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        load_domain_slices(str(folder), "ct", IntensityConfig(), 16)
    assert "only 0.0 % of its CT pixels are air" in caplog.text
    assert "is it MRI" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):  # control: the phantom's CT
        load_domain_slices(str(resolve_dataset(phantom_dir).ct_train), "ct", IntensityConfig(), 16)
    assert "air" not in caplog.text
    # Nor 8-bit CT in a brain window, whose air is black, though not grey 0.
    from tests.harness import write_image

    brain = tmp_path / "brain"
    brain.mkdir()
    rows, columns = np.mgrid[:32, :32]
    write_image(brain / "ct.png", np.where((rows - 16) ** 2 + (columns - 16) ** 2 < 100, 128,
                                           2).astype(np.uint8))
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        load_domain_slices(str(brain), "ct", IntensityConfig(ct_window_hu=(-160.0, 240.0)), 16)
    assert "air" not in caplog.text


def test_a_scan_whose_spacing_spans_more_than_a_body_is_skipped_not_resampled(tmp_path):
    # 1e308 mm pixels had overflowed the resampled slice's size (a
    # traceback), and 300 mm ones built 19,200-px slices (5.8 GB).
    folder = tmp_path / "mri"
    folder.mkdir()
    paths = []
    for name, spacing in (("good.dcm", [1.0, 1.0]), ("cm.dcm", [300.0, 300.0]),
                          ("huge.dcm", ["1e308", "1e308"])):
        dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        dataset.PixelSpacing = spacing
        dataset.SeriesInstanceUID = pydicom.uid.generate_uid()  # three scans, not one
        paths.append(str(folder / name))
        dataset.save_as(paths[-1])
    domain = load_domain_slices(str(folder), "mri", IntensityConfig(), 32, mm_per_pixel=1.0)
    assert len(domain.slices) == 1 and domain.mm_per_pixel == 1.0
    assert len(domain.skipped) == 2
    assert all("more than any body" in problem for problem in domain.skipped)
