"""The phantom a run renders once and reuses, and renders anew for other
settings."""

import dataclasses
import os

import pytest

import vaecyclegan.workflows.training_data as training_data
from vaecyclegan.config import IntensityConfig
from vaecyclegan.io.image_format import list_images
from vaecyclegan.training.presets import PRESETS

SMALL = dataclasses.replace(PRESETS["smoke"], image_size=16, phantom_train=6, phantom_test=2)
FEWER = dataclasses.replace(SMALL, phantom_train=3, phantom_test=1)
BRAIN = IntensityConfig(ct_window_hu=(-160.0, 240.0))


def _train_a(folder):
    return list_images(os.path.join(folder, "Dataset", "images", "trainA"))


def test_a_phantom_for_other_settings_is_rendered_beside_not_into_the_first(tmp_path):
    folder = training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0)
    assert os.path.basename(folder) == "phantom_16px_seed0"
    assert len(_train_a(folder)) == 6
    # The same settings reuse it.
    assert training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0) == folder
    # Other counts and window: rendered into it, 3 new images mixed with 6
    # old ones under the new marker; now beside it, the first one kept for
    # the runs that read it.
    other = training_data.prepare_phantom(str(tmp_path), FEWER, BRAIN, 0)
    assert other != folder and os.path.basename(other).startswith("phantom_16px_seed0_")
    assert len(_train_a(other)) == 3 and len(_train_a(folder)) == 6
    assert training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0) == folder
    assert training_data.prepare_phantom(str(tmp_path), FEWER, BRAIN, 0) == other


def test_a_folder_of_other_files_under_the_phantoms_name_is_left_alone(tmp_path):
    plain = tmp_path / "phantom_16px_seed0"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    folder = training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0)
    assert folder != str(plain) and (plain / "notes.txt").read_text() == "mine"
    assert len(_train_a(folder)) == 6


def test_a_render_cut_short_leaves_no_marker_and_is_rendered_again(tmp_path, monkeypatch):
    calls = []
    real_write_png = training_data.write_phantom_dataset.__globals__["write_png"]

    def failing_write_png(path, pixels):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_write_png(path, pixels)

    monkeypatch.setitem(training_data.write_phantom_dataset.__globals__, "write_png",
                        failing_write_png)
    with pytest.raises(KeyboardInterrupt):
        training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0)
    folder = tmp_path / "phantom_16px_seed0"
    assert not (folder / training_data.PHANTOM_MARKER).exists()
    assert not folder.exists() or not os.listdir(folder)
    monkeypatch.undo()
    training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0)
    assert len(_train_a(str(folder))) == 6


def _head_volume(shape):
    import numpy as np

    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    return np.where(x**2 + y**2 < 0.6, 40, -1000).astype(np.int16)


def test_the_upscalers_images_have_their_heading_and_enlarged_ones_are_warned_of(tmp_path,
                                                                                caplog):
    # A coronal MRI of 4-mm slices, cut axially, was enlarged 4x in one
    # axis into the upscaler's high-resolution targets, under a second
    # summary without a heading.
    import nibabel as nib
    import numpy as np

    from vaecyclegan.data.dataset_layout import resolve_dataset

    for name, shape, spacing in (("ct", (32, 32, 4), (1.0, 1.0, 1.0)),
                                 ("mri", (32, 8, 6), (1.0, 4.0, 1.0))):
        (tmp_path / name).mkdir()
        nib.save(nib.Nifti1Image(_head_volume(shape), np.diag([*spacing, 1.0])),
                 str(tmp_path / name / "v.nii.gz"))
    folders = resolve_dataset(None, str(tmp_path / "ct"), str(tmp_path / "mri"))
    with caplog.at_level("INFO"):
        training_data.load_training_domains(folders, IntensityConfig(), 16, crop_factor=1,
                                            common_mm=False)
    assert "native detail" not in caplog.text and "enlarged" not in caplog.text  # control
    caplog.clear()
    with caplog.at_level("INFO"):
        training_data.load_training_domains(folders, IntensityConfig(), 16, crop_factor=1,
                                            common_mm=False, for_upscaler=True)
    assert "The upscaler's training images, at their native detail:" in caplog.text
    assert "the upscaler's MRI training slices were enlarged" in caplog.text
    assert "the upscaler's CT training" not in caplog.text
