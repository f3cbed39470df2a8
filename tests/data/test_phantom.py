import os

import numpy as np
import pytest

from vaecyclegan.config import IntensityConfig
from vaecyclegan.io.image_format import list_images, read_grey
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, unit_to_hu, stored_to_unit
from vaecyclegan.data.phantom import (
    AIR, CORTICAL, CSF, DIPLOE, GREY, SCALP, VENTRICLE, WHITE, render_slice,
)


def test_same_seed_same_slice_other_seed_other_anatomy():
    a, b, c = render_slice([0, 1, 2], 48), render_slice([0, 1, 2], 48), render_slice([0, 1, 3], 48)
    np.testing.assert_array_equal(a.ct_hu, b.ct_hu)
    np.testing.assert_array_equal(a.mri, b.mri)
    assert (a.labels != c.labels).mean() > 0.02


def test_every_tissue_is_present():
    labels = render_slice(7, 128).labels
    for tissue in (AIR, SCALP, CORTICAL, DIPLOE, CSF, GREY, WHITE, VENTRICLE):
        assert (labels == tissue).sum() > 0, tissue


def test_ct_is_in_hounsfield_units():
    phantom = render_slice(11, 128)
    hu, labels = phantom.ct_hu, phantom.labels
    # Medians are robust to noise and to partial-volume edge pixels.
    assert np.median(hu[labels == AIR]) == pytest.approx(-1000, abs=20)
    assert np.median(hu[labels == CORTICAL]) > 1000
    assert 0 < np.median(hu[labels == WHITE]) < np.median(hu[labels == GREY]) < 60


def test_bone_and_air_are_dark_in_mri_but_far_apart_in_ct():
    phantom = render_slice(5, 128)
    labels = phantom.labels
    mri = {t: np.median(phantom.mri[labels == t]) for t in (AIR, CORTICAL, SCALP, WHITE, GREY)}
    ct = {t: np.median(phantom.ct_hu[labels == t]) for t in (AIR, CORTICAL)}
    assert mri[AIR] < 0.1 and mri[CORTICAL] < 0.15
    assert mri[SCALP] > 0.6 and mri[WHITE] > mri[GREY]
    assert ct[CORTICAL] - ct[AIR] > 2000


def test_dataset_layout_and_pairing(phantom_dir):
    images = os.path.join(phantom_dir, "Dataset", "images")
    assert sorted(os.listdir(images)) == ["testA", "testA_hu", "testB", "trainA", "trainB"]
    names = {d: [os.path.basename(p) for p in list_images(os.path.join(images, d))]
             for d in ("trainA", "trainB", "testA", "testB", "testA_hu")}
    assert len(names["trainA"]) == len(names["trainB"]) == 8
    assert names["testA"] == names["testB"] == names["testA_hu"] and len(names["testA"]) == 4


def _head_mask(pixels):
    return pixels > 20  # anything but air


def test_test_pairs_show_one_anatomy_and_train_domains_do_not(phantom_dir):
    images = os.path.join(phantom_dir, "Dataset", "images")

    def overlap(a, b):
        ma, mb = _head_mask(read_grey(a)), _head_mask(read_grey(b))
        return (ma & mb).sum() / (ma | mb).sum()

    test_pairs = zip(list_images(os.path.join(images, "testA")),
                     list_images(os.path.join(images, "testB")))
    assert all(overlap(a, b) > 0.9 for a, b in test_pairs)
    train_pairs = list(zip(list_images(os.path.join(images, "trainA")),
                           list_images(os.path.join(images, "trainB"))))
    assert np.mean([overlap(a, b) for a, b in train_pairs]) < 0.9


def test_hu_copies_agree_with_the_windowed_pngs(phantom_dir):
    images = os.path.join(phantom_dir, "Dataset", "images")
    window = IntensityConfig().ct_window_hu
    for png, hu_png in zip(list_images(os.path.join(images, "testA")),
                           list_images(os.path.join(images, "testA_hu"))):
        hu16 = read_grey(hu_png)
        assert hu16.dtype == np.uint16
        hu = np.clip(hu16.astype(np.float64) - PNG16_HU_OFFSET, *window)
        from_png = unit_to_hu(stored_to_unit(read_grey(png)), window)
        # One 8-bit step of a 3000 HU window is ~11.8 HU; rounding costs half.
        assert np.abs(from_png - hu).max() <= (window[1] - window[0]) / 255 / 2 + 0.6


def test_data_command_writes_a_phantom(tmp_path):
    from vaecyclegan.cli.data import main

    main(["phantom", "--out", str(tmp_path), "--size", "32", "--train", "2", "--test", "1"])
    assert len(os.listdir(tmp_path / "Dataset" / "images" / "trainA")) == 2
    assert read_grey(str(tmp_path / "Dataset" / "images" / "testB" /
                         "phantom_test_00000.png")).shape == (32, 32)
