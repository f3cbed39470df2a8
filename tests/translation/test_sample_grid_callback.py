"""The sample grids written during training name their rows."""

import numpy as np

from vaecyclegan.translation.sample_grid_callback import ROW_LABELS, with_row_labels


def test_a_grid_names_its_rows_in_a_strip_beside_the_images_left_unchanged():
    grid = np.random.default_rng(0).integers(0, 256, (4 * 64, 3 * 64), dtype=np.uint8)
    labelled = with_row_labels(grid, ROW_LABELS)
    strip = labelled[:, : labelled.shape[1] - grid.shape[1]]
    assert np.array_equal(labelled[:, strip.shape[1]:], grid)
    assert 20 < strip.shape[1] < 200
    # Text in every row's band of the strip, and only white on black.
    assert all(strip[row * 64:(row + 1) * 64].max() == 255 for row in range(4))
    assert strip.min() == 0


def test_rows_too_low_for_text_stay_unlabelled():
    grid = np.zeros((4 * 4, 8), np.uint8)
    assert with_row_labels(grid, ROW_LABELS) is grid
