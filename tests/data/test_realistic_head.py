"""The realistic head renderer: real proportions measured in mm, skull
layers, windows, skull base against vertex, the written layout, styles."""

import json
import os

import cv2
import numpy as np
import pytest
from scipy import ndimage

from vaecyclegan.data import realistic_head as rh
from vaecyclegan.data.realistic_head import (
    AIR, CORTICAL, DENSE_BONE, DIPLOE, FAT, GREY, LENS, SINUS, SKIN, VENTRICLE, VITREOUS,
    WHITE, render_realistic_slice, write_realistic_dataset,
)
from vaecyclegan.io.image_format import list_images, read_grey
from vaecyclegan.io.intensity import (
    PNG16_HU_OFFSET, hu_to_unit, stored_to_unit, unit_to_hu, unit_to_stored,
)

BRAIN_WINDOW = (-160.0, 240.0)  # level 40, width 400
MID = 0.55  # about 50 mm above the orbitomeatal plane: a full skull ring, no dome


def _head(labels):
    return ndimage.binary_fill_holes(labels != AIR)


def _extent_mm(head_slice):
    """Long (AP) and short (LR) sides in mm of the head's smallest enclosing
    rectangle (the pose tilts the head a little)."""
    mask = _head(head_slice.labels).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    (_, _), (w, h), _ = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    return max(w, h) * head_slice.pixel_mm, min(w, h) * head_slice.pixel_mm


@pytest.mark.parametrize("style", ["a", "b"])
def test_head_proportions_in_mm(style):
    for seed in range(4):
        head = render_realistic_slice([seed, 9], 256, style, level=MID)
        assert 240 / 256 <= head.pixel_mm <= 260 / 256
        ap, lr = _extent_mm(head)
        assert 160 <= ap <= 200 and 135 <= lr <= 165, (seed, ap, lr)


def _runs_along_rays(labels, pixel_mm, count=48):
    """For rays from the head's centre outwards: thickness in mm of the
    scalp (skin + fat from the outside), outer table, diploe, inner table."""
    ys, xs = np.nonzero(_head(labels))
    cy, cx = ys.mean(), xs.mean()
    step = 0.1
    results = []
    for angle in np.linspace(0, 2 * np.pi, count, endpoint=False):
        t = np.arange(0, labels.shape[0] / 2, step)
        rows = np.clip(np.round(cy + t * np.sin(angle)).astype(int), 0, labels.shape[0] - 1)
        cols = np.clip(np.round(cx + t * np.cos(angle)).astype(int), 0, labels.shape[1] - 1)
        along = labels[rows, cols][::-1]  # from outside in
        along = along[np.argmax(along != AIR):]
        # Run-length encode the tissues met from the skin inwards.
        change = np.flatnonzero(np.diff(along.astype(int))) + 1
        starts = np.r_[0, change]
        tissues = along[starts]
        lengths = np.diff(np.r_[starts, along.size]) * step * pixel_mm
        scalp = sum(lengths[i] for i in range(3) if tissues[i] in (SKIN, FAT))
        bone = [i for i, tissue in enumerate(tissues) if tissue in (CORTICAL, DIPLOE)][:3]
        if [tissues[i] for i in bone] == [CORTICAL, DIPLOE, CORTICAL]:
            results.append((scalp, *(lengths[i] for i in bone)))
    return np.array(results)


@pytest.mark.parametrize("style", ["a", "b"])
def test_scalp_tables_and_diploe_are_as_thick_as_in_real_skulls(style):
    # 512 px keeps each 1-3 mm layer several pixels thick to measure.
    head = render_realistic_slice([3, 1], 512, style, level=MID)
    runs = _runs_along_rays(head.labels, head.pixel_mm)
    assert len(runs) > 36  # most rays meet table, diploe, table in this order
    slack = head.pixel_mm  # a pixel lost or gained at each edge
    for column, (low, high) in enumerate([(3, 7), (1, 3), (2, 6), (1, 3)]):
        values = runs[:, column]
        assert low - slack <= np.median(values) <= high + slack, (column, values)
        assert np.mean((values >= low - slack) & (values <= high + slack)) > 0.9, values


def test_phantom_like_thick_rings_would_fail_the_thickness_check():
    # Control: scaling the label map up 3x (skull layers 3x too thick) is caught.
    head = render_realistic_slice([3, 1], 512, "a", level=MID)
    runs = _runs_along_rays(head.labels, head.pixel_mm * 3)
    assert not (1 - head.pixel_mm <= np.median(runs[:, 1]) <= 3 + head.pixel_mm)


def test_brain_window_saturates_bone_and_air_and_shows_brain_mid_grey():
    head = render_realistic_slice([4, 2], 256, "a", level=MID)
    pixels = unit_to_stored(hu_to_unit(head.ct_hu, BRAIN_WINDOW))
    labels = head.labels
    # Inside the tables (not at their partial-volume edges) bone saturates.
    bone = np.isin(labels, (CORTICAL, DIPLOE))
    core = bone & ndimage.binary_erosion(bone)
    assert np.mean(pixels[core] == 255) > 0.95
    outside = ~ndimage.binary_dilation(_head(labels), iterations=3)
    assert np.all(pixels[outside] == 0)
    brain = np.median(pixels[np.isin(labels, (GREY, WHITE))])
    assert 100 <= brain <= 160
    # The wide window keeps bone below white.
    wide = unit_to_stored(hu_to_unit(head.ct_hu, (-1000, 2000)))
    assert np.median(wide[core]) < 250


def test_bone_is_dark_in_t1_between_bright_scalp_fat_and_diploe():
    for style in ("a", "b"):
        head = render_realistic_slice([6, 3], 256, style, level=MID)
        labels, mri = head.labels, head.mri
        median = {t: np.median(mri[labels == t]) for t in (FAT, CORTICAL, DIPLOE, WHITE, GREY)}
        assert median[CORTICAL] < 0.2 * median[FAT]
        assert median[CORTICAL] < 0.3 * median[DIPLOE]
        assert median[FAT] > median[WHITE] > median[GREY]
        # In CT the same bone is the brightest tissue.
        assert np.median(head.ct_hu[labels == CORTICAL]) > 900


def _air_inside_head_px(head):
    ct = head.ct_hu
    body = ndimage.binary_fill_holes(ndimage.binary_opening(ct > -500, iterations=1))
    return int((body & (ct < -500)).sum())


@pytest.mark.parametrize("style", ["a", "b"])
def test_skull_base_slices_hold_sinus_air_and_vertex_slices_do_not(style):
    for seed in range(3):
        low = render_realistic_slice([seed, 5], 256, style, level=0.08)
        high = render_realistic_slice([seed, 5], 256, style, level=0.92)
        assert _air_inside_head_px(low) > 100, seed
        assert _air_inside_head_px(high) == 0, seed
        # High slices are smaller: the dome of the skull.
        assert _head(high.labels).sum() < 0.8 * _head(low.labels).sum()


def test_anatomy_follows_the_slice_level():
    orbits = render_realistic_slice([2, 7], 256, "a", level=0.18)
    for tissue in (VITREOUS, LENS, DENSE_BONE, SINUS):
        assert (orbits.labels == tissue).sum() > 0, rh.TISSUE_NAMES[tissue]
    middle = render_realistic_slice([2, 7], 256, "a", level=MID)
    assert (middle.labels == VENTRICLE).sum() > 50
    assert not np.isin(middle.labels, (VITREOUS, DENSE_BONE, SINUS)).any()
    vertex = render_realistic_slice([2, 7], 256, "a", level=0.95)
    assert not (vertex.labels == VENTRICLE).any()


def test_same_seed_same_slice_other_seed_other_slice():
    a, b = render_realistic_slice([1, 2], 128, "a"), render_realistic_slice([1, 2], 128, "a")
    np.testing.assert_array_equal(a.ct_hu, b.ct_hu)
    np.testing.assert_array_equal(a.mri, b.mri)
    assert a.level == b.level
    c = render_realistic_slice([1, 3], 128, "a")
    assert (a.labels != c.labels).mean() > 0.02


def test_styles_render_differently():
    for seed in range(3):
        a = render_realistic_slice([seed], 256, "a", level=MID)
        b = render_realistic_slice([seed], 256, "b", level=MID)
        assert a.pixel_mm < b.pixel_mm  # fields of view 240-250 against 250-260 mm
        corner = (slice(0, 24), slice(0, 24))  # air: the CT noise alone
        assert np.std(a.ct_hu[corner]) < np.std(b.ct_hu[corner])
        grey_a, grey_b = (np.median(s.mri[s.labels == GREY] / np.median(s.mri[s.labels == WHITE]))
                          for s in (a, b))
        assert grey_a > grey_b  # b has the stronger grey/white T1 contrast
    with pytest.raises(ValueError, match="style"):
        render_realistic_slice(0, 64, "c")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic")
    images = write_realistic_dataset(str(out), BRAIN_WINDOW, size=96, num_train=3, num_test=2,
                                     seed=5, style="b")
    return out, images


def test_dataset_layout_and_pairing(dataset):
    out, images = dataset
    assert images == os.path.join(str(out), "Dataset", "images")
    assert sorted(os.listdir(images)) == ["testA", "testA_hu", "testB", "trainA", "trainB"]
    names = {d: [os.path.basename(p) for p in list_images(os.path.join(images, d))]
             for d in ("trainA", "trainB", "testA", "testB", "testA_hu")}
    assert names["trainA"] == names["trainB"] and len(names["trainA"]) == 3
    assert names["testA"] == names["testB"] == names["testA_hu"] and len(names["testA"]) == 2
    record = json.loads((out / "Dataset" / "realistic_head.json").read_text())
    assert record["style"] == "b" and record["ct_window_hu"] == list(BRAIN_WINDOW)
    assert sorted(record["test"]) == names["testA"]
    for entry in record["test"].values():
        assert 240 / 96 <= entry["pixel_mm"] <= 260 / 96 and 0 <= entry["level"] <= 1


def test_hu_files_round_trip_to_the_rendered_hu(dataset):
    _, images = dataset
    for index, name in enumerate(["realistic_test_00000.png", "realistic_test_00001.png"]):
        head = render_realistic_slice([5, rh._STYLE_CODES["b"], rh._SPLIT_CODES["test"], index],
                                      96, "b")
        hu16 = read_grey(os.path.join(images, "testA_hu", name))
        assert hu16.dtype == np.uint16
        hu = hu16.astype(np.float64) - PNG16_HU_OFFSET
        assert np.abs(hu - head.ct_hu).max() <= 1.0
        assert hu.max() > 900 and hu.min() < -900  # bone and air, unwindowed
        # The 8-bit PNG is the same slice through the brain window.
        from_png = unit_to_hu(stored_to_unit(read_grey(os.path.join(images, "testA", name))),
                              BRAIN_WINDOW)
        expected = np.clip(head.ct_hu, *BRAIN_WINDOW)
        assert np.abs(from_png - expected).max() <= 400 / 255 / 2 + 0.01


def test_train_domains_hold_other_anatomies_than_each_other(dataset):
    _, images = dataset
    pairs = zip(list_images(os.path.join(images, "trainA")),
                list_images(os.path.join(images, "trainB")))
    overlaps = []
    for ct_path, mri_path in pairs:
        a, b = read_grey(ct_path) > 20, read_grey(mri_path) > 20
        overlaps.append((a & b).sum() / (a | b).sum())
    assert np.mean(overlaps) < 0.9


def test_writing_is_deterministic(dataset, tmp_path):
    _, images = dataset
    again = write_realistic_dataset(str(tmp_path / "again"), BRAIN_WINDOW, size=96, num_train=3,
                                    num_test=2, seed=5, style="b")
    other = write_realistic_dataset(str(tmp_path / "other"), BRAIN_WINDOW, size=96, num_train=1,
                                    num_test=0, seed=6, style="b")
    for folder in ("trainA", "trainB", "testA", "testB", "testA_hu"):
        for path in list_images(os.path.join(images, folder)):
            twin = os.path.join(again, folder, os.path.basename(path))
            assert open(path, "rb").read() == open(twin, "rb").read()
    first = "realistic_00000.png"
    assert not np.array_equal(read_grey(os.path.join(images, "trainA", first)),
                              read_grey(os.path.join(other, "trainA", first)))
