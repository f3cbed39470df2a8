"""Resampling slices to and from the training pixel scale."""

import cv2
import numpy as np

from vaecyclegan.io.resampling import resample_planes, scaled_shape


def test_enlarging_a_step_stays_in_range_where_bicubic_overshoots():
    # A hard edge (air next to saturated bone) rings past +-1 under bicubic
    # interpolation; unclipped, the ring became HU beyond the window.
    step = np.where(np.arange(16) < 8, -1.0, 1.0).astype(np.float32)
    stack = np.broadcast_to(step, (1, 16, 16)).copy()
    enlarged = resample_planes(stack, (64, 64))
    assert enlarged.shape == (1, 64, 64)
    assert enlarged.min() == -1.0 and enlarged.max() == 1.0
    # Control: the overshoot is there to clip.
    raw = cv2.resize(stack[0], (64, 64), interpolation=cv2.INTER_CUBIC)
    assert raw.max() > 1.0 and raw.min() < -1.0


def test_shrinking_averages_areas_and_a_stack_of_the_shape_is_kept():
    stack = np.arange(16, dtype=np.float32).reshape(1, 4, 4) / 16.0
    shrunk = resample_planes(stack, (2, 2))
    np.testing.assert_allclose(shrunk[0], [[2.5 / 16, 4.5 / 16], [10.5 / 16, 12.5 / 16]])
    assert resample_planes(stack, (4, 4)) is stack
    assert scaled_shape((256, 200), 4.0) == (64, 50)
