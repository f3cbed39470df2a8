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


def test_a_phantom_rendered_for_other_settings_is_replaced_not_mixed(tmp_path):
    folder = training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0)
    assert len(_train_a(folder)) == 6
    # The same settings reuse it (control: the name is the same below).
    assert training_data.prepare_phantom(str(tmp_path), SMALL, IntensityConfig(), 0) == folder
    again = training_data.prepare_phantom(str(tmp_path), FEWER, BRAIN, 0)
    assert again == folder
    assert len(_train_a(folder)) == 3  # not 3 new images among 6 old ones


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
