"""Per-tissue errors, bone Dice and HD95, against answers computed by hand."""

import math

import numpy as np
import pytest
from scipy import ndimage

from vaecyclegan.evaluation.tissue import (
    BONE_THRESHOLD_HU,
    TISSUE_THRESHOLDS_HU,
    bone_overlap,
    dice,
    hd95,
    surface_distances,
    surface_voxels,
    tissue_errors,
    tissue_thresholds_in_window,
    windowed_scores,
    windowed_thresholds,
)


def three_tissues():
    reference = np.full((6, 10, 10), 40.0, np.float32)
    reference[:, :, :3] = -800.0  # air
    reference[:, :, 7:] = 900.0  # bone
    return reference


def test_an_offset_inside_soft_tissue_only_shows_there():
    reference = three_tissues()
    prediction = reference.copy()
    prediction[:, :, 3:7] += 50.0
    errors = tissue_errors(prediction, reference)
    assert errors == {"mae_air": 0.0, "me_air": 0.0, "mae_soft": 50.0, "me_soft": 50.0,
                      "mae_bone": 0.0, "me_bone": 0.0}


def test_signs_and_magnitudes_per_class():
    reference = three_tissues()
    prediction = reference.copy()
    prediction[:, :, 7:] -= 30.0  # bone too dark
    prediction[:, :, :3] += np.where(np.arange(10) % 2, 10.0, -10.0)[:, None]  # air: +-10
    errors = tissue_errors(prediction, reference)
    assert errors["mae_bone"] == 30.0 and errors["me_bone"] == -30.0
    assert errors["mae_air"] == 10.0 and errors["me_air"] == 0.0
    assert errors["mae_soft"] == 0.0


def test_classes_come_from_the_reference_within_the_mask_and_thresholds_move():
    reference = three_tissues()
    prediction = np.full_like(reference, 2000.0)  # all "bone" in the prediction
    mask = np.zeros(reference.shape, bool)
    mask[:, :, 3:] = True  # no air in the mask
    errors = tissue_errors(prediction, reference, mask)
    assert math.isnan(errors["mae_air"]) and math.isnan(errors["me_air"])
    assert errors["me_soft"] == 1960.0 and errors["me_bone"] == 1100.0
    # Boundaries: -200 and 200 are soft tissue; 1000 counts as soft with (-200, 1000).
    edges = np.array([[-200.0, 200.0, 200.5, -200.5]])
    errors = tissue_errors(edges + 1.0, edges)
    assert errors["mae_soft"] == 1.0
    errors = tissue_errors(reference + 1.0, reference, thresholds=(-200.0, 1000.0))
    assert math.isnan(errors["mae_bone"]) and errors["mae_soft"] == 1.0


def plate(first_slice, shape=(24, 16, 16)):
    """A 4-slice bone plate of 8 x 8 voxels, starting at `first_slice`."""
    ct = np.full(shape, 40.0, np.float32)
    ct[first_slice:first_slice + 4, 4:12, 4:12] = 1000.0
    return ct


def test_a_plate_shifted_by_2_slices_gives_the_dice_and_hd95_worked_by_hand():
    # Reference bone: slices 10-13; prediction: 12-15; 256 voxels each, 128
    # shared, so Dice = 2 * 128 / 512 = 0.5. Reference surface: slices 10
    # and 13 whole (64 each), the rims (28 each) of 11 and 12. Its voxels'
    # nearest prediction surface (slice 12 whole, rims of 13 and 14, 15
    # whole), with 2.5 mm slices and 3 mm pixels: slice 10 -> 2 slices
    # (5 mm, 64 voxels); rim of 11 -> 1 slice (2.5 mm, 28); rim of 12 ->
    # 0 (28); slice 13: rim -> 0 (28), inside -> 1 slice (2.5 mm, 36;
    # the rim is 3 mm away in-plane). So 56 at 0, 64 at 2.5, 64 at 5 mm;
    # the 95th percentile of 184 sorted values falls among the 5 mm ones.
    # The other direction mirrors it.
    reference, prediction = plate(10), plate(12)
    spacing = (2.5, 3.0, 3.0)
    distances = surface_distances(reference > 200, prediction > 200, spacing)
    values, counts = np.unique(distances, return_counts=True)
    assert values.tolist() == [0.0, 2.5, 5.0] and counts.tolist() == [56, 64, 64]
    for convention in ("max", "union"):
        result = bone_overlap(prediction, reference, spacing=spacing, convention=convention)
        assert result == {"dice_bone": 0.5, "hd95_bone_mm": 5.0}


def test_max_and_union_conventions_differ_as_worked_by_hand():
    # a: one voxel; b: the same voxel and one 10 voxels away (2 mm each).
    # a -> b: [0]; b -> a: [0, 20]; directed 95th percentiles 0 and 19
    # (linear interpolation), max 19; pooled [0, 0, 20]: 0.9 * 20 = 18.
    a = np.zeros((3, 30), bool)
    a[1, 5] = True
    b = a.copy()
    b[1, 15] = True
    assert hd95(a, b, (1.0, 2.0)) == pytest.approx(19.0)
    assert hd95(a, b, (1.0, 2.0), convention="union") == pytest.approx(18.0)
    assert dice(a, b) == pytest.approx(2 / 3)


def test_surface_distances_agree_with_a_distance_transform():
    rng = np.random.default_rng(0)
    a = ndimage.binary_opening(rng.random((12, 20, 18)) > 0.4)
    b = ndimage.binary_opening(rng.random((12, 20, 18)) > 0.4)
    spacing = (2.0, 0.7, 0.9)
    from_b = ndimage.distance_transform_edt(~surface_voxels(b), sampling=spacing)
    np.testing.assert_allclose(surface_distances(a, b, spacing), from_b[surface_voxels(a)])


def test_surface_is_the_mask_minus_its_erosion_with_the_border_outside():
    square = np.zeros((5, 6), bool)
    square[:, 1:5] = True
    assert surface_voxels(square).astype(int).tolist() == [
        [0, 1, 1, 1, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 1, 0, 0, 1, 0],
        [0, 1, 1, 1, 1, 0],
    ]


def test_empty_cases():
    soft = np.full((8, 8), 40.0)
    bone = soft.copy()
    bone[2:5, 2:5] = 800.0
    assert bone_overlap(soft, soft) == {"dice_bone": 1.0, "hd95_bone_mm": 0.0}
    assert bone_overlap(soft, bone) == {"dice_bone": 0.0, "hd95_bone_mm": math.inf}
    assert bone_overlap(bone, soft) == {"dice_bone": 0.0, "hd95_bone_mm": math.inf}


def test_bone_outside_the_mask_is_ignored_and_the_threshold_moves():
    reference = plate(10)
    prediction = reference.copy()
    prediction[0:2, 0:2, 0:2] = 1500.0  # a stray blob
    assert bone_overlap(prediction, reference)["dice_bone"] < 1.0
    mask = np.ones(reference.shape, bool)
    mask[:3] = False
    assert bone_overlap(prediction, reference, mask) == {"dice_bone": 1.0, "hd95_bone_mm": 0.0}
    assert bone_overlap(prediction, reference, threshold=1200.0)["dice_bone"] == 0.0


@pytest.mark.parametrize("call, message", [
    (lambda: tissue_errors(np.zeros((4, 4)), np.zeros((4, 5))), "differs from reference"),
    (lambda: tissue_errors(np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4, 1))), "mask shape"),
    (lambda: tissue_errors(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4))), "no voxel"),
    (lambda: tissue_errors(np.zeros((4, 4)), np.zeros((4, 4)), thresholds=(5, 1)), "low <= high"),
    (lambda: bone_overlap(np.zeros((4, 4)), np.zeros((4, 4)), convention="mean"), "convention"),
    (lambda: bone_overlap(np.zeros((4, 4)), np.zeros((4, 4)), spacing=(1,)), "spacing"),
])
def test_bad_inputs_raise_one_line(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


BRAIN_WINDOW = (-160.0, 240.0)  # level 40, width 400


def test_thresholds_move_into_a_brain_window_and_stay_in_a_wide_one():
    # Margin 2 % of 400 = 8 HU: -200 (below the window) goes to -152; 200 is inside.
    assert tissue_thresholds_in_window(BRAIN_WINDOW) == (-152.0, 200.0)
    assert tissue_thresholds_in_window(BRAIN_WINDOW, (BONE_THRESHOLD_HU,)) == (200.0,)
    # A bone threshold above the window's end stops 8 HU short of it.
    assert tissue_thresholds_in_window(BRAIN_WINDOW, (1000.0, 236.0)) == (232.0, 232.0)
    # The default window (-1000..2000, margin 60) reaches both: kept as they are.
    assert tissue_thresholds_in_window((-1000.0, 2000.0)) == TISSUE_THRESHOLDS_HU
    assert tissue_thresholds_in_window((-1000.0, 2000.0), (-990.0,)) == (-940.0,)


def test_in_8bit_levels_a_brain_window_makes_air_0_to_5_and_bone_230_up():
    levels = np.arange(256.0)
    hu = -160.0 + levels * 400.0 / 255.0
    low, high = tissue_thresholds_in_window(BRAIN_WINDOW)
    assert levels[hu < low].max() == 5.0 and levels[hu > high].min() == 230.0


def test_without_the_window_rule_brain_window_air_is_empty():
    reference = np.array([[-160.0, 40.0], [240.0, 40.0]])  # saturated air, soft, bone
    prediction = reference + 4.0
    # Control: the raw -200 HU threshold finds no air in a brain window.
    assert math.isnan(tissue_errors(prediction, reference)["mae_air"])
    scores = windowed_scores(prediction, reference, BRAIN_WINDOW)
    assert scores == {"mae_air": 4.0, "mae_soft": 4.0, "mae_bone": 4.0, "bone_dice": 1.0}


def test_windowed_scores_bone_dice_and_missing_classes():
    reference = np.full((6, 6), 40.0)
    reference[:, :2] = 240.0  # 12 bone pixels
    prediction = reference.copy()
    prediction[:3, :2] = 40.0  # half the bone drawn as soft tissue
    scores = windowed_scores(prediction, reference, BRAIN_WINDOW)
    assert scores["bone_dice"] == pytest.approx(2 * 6 / (12 + 6))
    assert scores["mae_bone"] == pytest.approx(100.0) and scores["mae_soft"] == 0.0
    assert math.isnan(scores["mae_air"])  # no air in the reference
    soft = np.full((6, 6), 40.0)
    assert windowed_scores(soft, soft, BRAIN_WINDOW)["bone_dice"] == 1.0  # no bone anywhere
    assert windowed_scores(reference, soft, BRAIN_WINDOW)["bone_dice"] == 0.0  # control


def test_a_brain_window_calls_only_its_saturated_band_bone():
    # 8-bit levels 250..255 of a 40/400 window: what readers call bone there.
    assert windowed_thresholds(BRAIN_WINDOW) == (-152.0, 232.0)
    assert (232.0 + 160.0) / 400.0 * 255.0 == pytest.approx(249.9, abs=0.05)
    # A wide window reaches 200 HU: the project's bone threshold stands.
    assert windowed_thresholds((-1000.0, 2000.0)) == (-200.0, 200.0)
    # Partial-volume skull edges at 220 HU are not bone in a brain window...
    reference = np.array([[240.0, 220.0], [40.0, -160.0]])
    assert windowed_scores(reference, reference, BRAIN_WINDOW)["bone_dice"] == 1.0
    edge_called_bone = np.array([[240.0, 240.0], [40.0, -160.0]])
    assert windowed_scores(edge_called_bone, reference, BRAIN_WINDOW)["bone_dice"] == \
        pytest.approx(2 / 3)
