"""Body mask of a reference CT: threshold, holes filled per slice, largest
component, dilation in mm."""

import numpy as np
import pytest

from vaecyclegan.evaluation import body_mask as body_mask_module
from vaecyclegan.evaluation.body_mask import body_mask, check_spacing, dilate_mm


def head_phantom(shape=(24, 40, 40)):
    """Soft-tissue ellipsoid with a bone shell and an internal air cavity,
    in air, plus a detached soft-tissue blob; returns (ct, head, cavity)."""
    grid = np.indices(shape, dtype=np.float64)
    radius = sum(((grid[i] - (n - 1) / 2) / (0.35 * n)) ** 2 for i, n in enumerate(shape))
    head = radius < 1.0
    cavity = radius < 0.15
    ct = np.full(shape, -1000.0, np.float32)
    ct[head] = 40.0
    ct[head & (radius > 0.7)] = 1000.0
    ct[cavity] = -1000.0
    ct[2:5, 1:4, 1:4] = 40.0  # detached blob, in a corner
    return ct, head, cavity


def test_fills_the_cavity_and_keeps_only_the_largest_component():
    ct, head, cavity = head_phantom()
    assert (ct[cavity] < -500).all()
    mask = body_mask(ct)
    assert mask[cavity].all()
    assert not mask[2:5, 1:4, 1:4].any()
    np.testing.assert_array_equal(mask, head)


def test_holes_are_filled_slice_by_slice_only():
    ct = np.full((5, 12, 12), 40.0, np.float32)
    ct[:, 0, :] = ct[:, -1, :] = ct[:, :, 0] = ct[:, :, -1] = -1000.0
    ct[1:4, 4:8, 4:8] = -1000.0  # a cavity inside every slice it crosses
    ct[0, 5, 5] = -1000.0
    assert body_mask(ct)[1:4, 4:8, 4:8].all() and body_mask(ct)[0, 5, 5]
    open_top = ct.copy()
    open_top[:, 5:7, 5:12] = -1000.0  # a channel to the outside in every slice
    assert not body_mask(open_top)[:, 5, 6].any()


def test_threshold_is_configurable_and_an_empty_mask_is_empty():
    _, head, _ = head_phantom()
    ct = np.where(head, -560.0, -1000.0)  # fat-like tissue below -500 HU
    assert not body_mask(ct).any()
    np.testing.assert_array_equal(body_mask(ct, threshold=-700.0), head)


def test_dilation_by_2mm_at_1mm_spacing_grows_the_boundary_by_2_voxels():
    ct, head, _ = head_phantom()
    mask = body_mask(ct)
    dilated = body_mask(ct, (1.0, 1.0, 1.0), dilation_mm=2.0)
    centre = tuple(n // 2 for n in ct.shape)
    for axis in range(3):
        line = list(centre)
        line[axis] = slice(None)
        before = np.flatnonzero(mask[tuple(line)])
        after = np.flatnonzero(dilated[tuple(line)])
        assert after[0] == before[0] - 2 and after[-1] == before[-1] + 2
    # Every added voxel lies within 2 voxels of the mask, and every voxel
    # within 2 voxels joined: brute force over the offsets of a ball.
    expected = np.zeros_like(mask)
    padded = np.pad(mask, 2)
    for offset in np.ndindex(5, 5, 5):
        offset = np.array(offset) - 2
        if offset @ offset <= 4:
            expected |= np.roll(padded, tuple(offset), axis=(0, 1, 2))[2:-2, 2:-2, 2:-2]
    np.testing.assert_array_equal(dilated, expected)


def test_dilation_uses_the_spacing():
    mask = np.zeros((15, 21, 21), bool)
    mask[5:10, 8:13, 8:13] = True
    dilated = dilate_mm(mask, (2.0, 1.0, 1.0), 2.0)
    assert np.flatnonzero(dilated[:, 10, 10]).tolist() == list(range(4, 11))  # 1 slice
    assert np.flatnonzero(dilated[7, :, 10]).tolist() == list(range(6, 15))  # 2 voxels
    assert not dilated[4, 7, 10]  # sqrt(2^2 + 1^2) mm > 2 mm
    assert dilated[7, 7, 7]  # sqrt(2) mm


def test_dilation_slab_by_slab_equals_the_whole(monkeypatch):
    mask = np.random.default_rng(0).random((30, 12, 12)) > 0.97
    whole = dilate_mm(mask, (0.7, 1.0, 1.2), 2.5)
    monkeypatch.setattr(body_mask_module, "_SLAB_VOXELS", 2 * 12 * 12)
    np.testing.assert_array_equal(dilate_mm(mask, (0.7, 1.0, 1.2), 2.5), whole)


def test_a_slice():
    ct, head, cavity = head_phantom()
    mask = body_mask(ct[12], (1.0, 1.0), dilation_mm=1.0)
    assert mask.shape == (40, 40) and mask[cavity[12]].all()
    assert mask.sum() > head[12].sum()


@pytest.mark.parametrize("call, message", [
    (lambda: body_mask(np.zeros((2, 2, 2, 2))), "2-D or 3-D"),
    (lambda: body_mask(np.zeros((4, 4)), spacing=(1, 1, 1)), "spacing must have 2"),
    (lambda: body_mask(np.zeros((4, 4)), spacing=(1, 0)), "positive"),
    (lambda: body_mask(np.zeros((4, 4)), dilation_mm=-1.0), "dilation_mm"),
    (lambda: check_spacing("abc", 2), "spacing must be 2 numbers"),
])
def test_bad_inputs_raise_one_line(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
