import math

import numpy as np
import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.wepl import (
    DEFAULT_HU_TO_RSP,
    hu_to_rsp,
    load_hu_to_rsp,
    wepl_difference,
    wepl_map,
)

SPACING = (3.0, 2.0, 2.0)  # mm: D, H, W
FIRST, ROWS = 10, 15  # the slab: rows 10..24, 30 mm thick at 2 mm rows
THICKNESS = ROWS * SPACING[1]


def _slab(hu_inside=0.0, shape=(2, 60, 60)):
    """Air outside the body above row 10; a slab of `hu_inside` (rows 10..24)
    spanning the whole width; air inside the body below it."""
    hu = np.full(shape, -1000.0)
    hu[:, FIRST:FIRST + ROWS, :] = hu_inside
    body = np.zeros(shape, dtype=bool)
    body[:, FIRST:, :] = True
    return hu, body


def _air_after(distance_mm):
    # WEPL of the air (RSP 0.001 in the default curve) crossed inside the body.
    return 0.001 * distance_mm


def test_default_curve_nodes():
    assert hu_to_rsp([-1000.0, 0.0, 40.0, 3000.0]).tolist() == pytest.approx(
        [0.001, 1.0, 1.04, 2.5])
    assert hu_to_rsp([-3000.0, 5000.0]).tolist() == pytest.approx([0.001, 2.5])  # clamped
    assert np.all(np.diff(DEFAULT_HU_TO_RSP[:, 0]) > 0)
    assert np.all(np.diff(DEFAULT_HU_TO_RSP[:, 1]) > 0)


def test_water_slab_gives_its_thickness_at_the_far_side():
    hu, body = _slab(0.0)
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, 0.0)
    # First voxel past the slab: the slab plus half a row of air inside the body.
    far = FIRST + ROWS
    assert wepl[0, far, 30] == pytest.approx(THICKNESS + _air_after(1.0), abs=1e-4)
    # Last voxel of the slab: to its centre, half a row short of the thickness.
    assert wepl[0, far - 1, 30] == pytest.approx(THICKNESS - 1.0, abs=1e-4)
    # First voxel of the slab: half a row of water.
    assert wepl[1, FIRST, 5] == pytest.approx(1.0, abs=1e-4)
    # Outside the body, before it: nothing.
    assert wepl[0, FIRST - 3, 30] == pytest.approx(0.0, abs=1e-6)
    # From the other side (180 degrees) the beam crosses 35 rows of air inside
    # the body before the slab: 70 mm * 0.001 + the slab.
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, 180.0)
    assert wepl[0, FIRST, 30] == pytest.approx(
        _air_after(70.0) + THICKNESS - 1.0, abs=1e-4)


def test_water_slab_at_90_degrees_is_the_path_along_it():
    hu, body = _slab(0.0)
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, 90.0)
    # The beam runs along the slab from column 0: (column + 0.5) * 2 mm of water.
    for column in (0, 7, 59):
        assert wepl[0, FIRST + 3, column] == pytest.approx((column + 0.5) * 2.0, abs=1e-4)
    # ... and from the far edge at 270 degrees.
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, 270.0)
    assert wepl[0, FIRST + 3, 7] == pytest.approx((60 - 7 - 0.5) * 2.0, abs=1e-4)


@pytest.mark.parametrize("angle", [45.0, 30.0, 315.0])
def test_water_slab_at_an_oblique_angle_is_the_slanted_path(angle):
    hu, body = _slab(0.0)
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, angle)
    slant = 1.0 / math.cos(math.radians(angle))
    column = 40 if math.sin(math.radians(angle)) > 0 else 20  # rays crossing the whole slab
    for row in (FIRST + ROWS + 1, FIRST + ROWS + 10):
        air = _air_after((row - (FIRST + ROWS - 0.5)) * 2.0 * slant)
        expected = THICKNESS * slant + air
        # Past the slab: within 0.2 % of the slanted path.
        assert wepl[0, row, column] == pytest.approx(expected, rel=2e-3)
    for row in range(FIRST + 2, FIRST + ROWS - 2):  # inside, away from its edges
        assert wepl[0, row, column] == pytest.approx((row - FIRST + 0.5) * 2.0 * slant, abs=0.05)


def test_bone_slab_gives_the_analytic_value():
    curve = np.array([[-1000.0, 0.0], [0.0, 1.0], [1000.0, 1.5], [2000.0, 2.0]])
    hu, body = _slab(1500.0)  # RSP 1.75 on this curve
    wepl = wepl_map(hu_to_rsp(hu, curve), body, SPACING, 0.0)
    assert wepl[0, FIRST + ROWS, 30] == pytest.approx(1.75 * THICKNESS, abs=1e-4)
    assert wepl[0, FIRST + 4, 30] == pytest.approx(1.75 * 4.5 * 2.0, abs=1e-4)
    # The default curve's cortical bone node: 1300 HU -> 1.66.
    hu, body = _slab(1300.0)
    wepl = wepl_map(hu_to_rsp(hu), body, SPACING, 0.0)
    assert wepl[0, FIRST + ROWS, 30] == pytest.approx(
        1.66 * THICKNESS + _air_after(1.0), abs=1e-4)


def test_identical_ct_gives_zero_difference():
    rng = np.random.default_rng(0)
    ct = rng.normal(0.0, 300.0, (4, 24, 24))
    body = np.zeros(ct.shape, dtype=bool)
    body[:, 3:21, 3:21] = True
    summary, difference = wepl_difference(ct.copy(), ct, body, SPACING)
    assert summary["angles_deg"] == [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0]
    assert summary["pooled"]["mean_abs_mm"] == 0.0
    assert summary["pooled"]["p95_abs_pct"] == 0.0
    assert summary["pooled"]["n"] > 0
    assert len(summary["per_angle"]) == 8
    assert difference.shape == ct.shape and difference.dtype == np.float32
    assert np.all(difference == 0.0)


def test_hu_offset_in_water_gives_the_curves_slope():
    ct, body = _slab(0.0)
    sct = ct.copy()
    sct[:, FIRST:FIRST + ROWS, :] += 100.0  # water read as 100 HU
    slab = np.zeros(ct.shape, dtype=bool)
    slab[:, FIRST:FIRST + ROWS, :] = True
    ratio = float(hu_to_rsp(100.0) - hu_to_rsp(0.0))  # 0.09 on the default curve
    assert ratio == pytest.approx(0.09)
    summary, difference = wepl_difference(sct, ct, body, SPACING, angles=[0.0],
                                          target_mask=slab)
    stats = summary["per_angle"][0]
    # Every slab voxel's WEPL is 9 % too long, whatever its depth.
    assert stats["mean_abs_pct"] == pytest.approx(100 * ratio, rel=1e-4)
    assert stats["p95_abs_pct"] == pytest.approx(100 * ratio, rel=1e-4)
    assert stats["mean_mm"] > 0
    # Rows of the slab whose reference WEPL reaches 10 mm: centres at 11, 13, ... 29 mm.
    depths = (np.arange(ROWS) + 0.5) * 2.0
    kept = depths[depths >= 10.0]
    assert stats["n"] == kept.size * 2 * 60
    assert stats["mean_abs_mm"] == pytest.approx(ratio * kept.mean(), rel=1e-4)
    # The map: largest difference, at the slab's last row.
    assert difference.max() == pytest.approx(ratio * (THICKNESS - 1.0), rel=1e-4)
    assert np.all(difference[~slab] == 0.0)


def test_floor_and_pooled_statistics():
    ct, body = _slab(0.0)
    sct = ct + np.where(ct == 0.0, 100.0, 0.0)
    summary, _ = wepl_difference(sct, ct, body, SPACING, angles=[0.0, 180.0], floor_mm=1e9)
    assert summary["pooled"]["n"] == 0 and math.isnan(summary["pooled"]["mean_abs_mm"])
    summary, _ = wepl_difference(sct, ct, body, SPACING, angles=[0.0, 180.0])
    pooled = summary["pooled"]
    assert pooled["n"] == sum(a["n"] for a in summary["per_angle"])
    assert summary["floor_mm"] == 10.0 and summary["curve"] == "default"


def test_loads_a_curve_file(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text("# scanner X\nhu,rsp\n-1000, 0.001\n0,1.0\n3000 2.5\n")
    curve = load_hu_to_rsp(path)
    assert curve.tolist() == [[-1000.0, 0.001], [0.0, 1.0], [3000.0, 2.5]]
    assert hu_to_rsp(1500.0, curve) == pytest.approx(1.75)


@pytest.mark.parametrize("text, words", [
    ("0,1.0\n-1000,0.001\n", "rise strictly"),
    ("-1000,0.001\n-1000,0.5\n", "rise strictly"),
    ("0,1.0\n", "at least two points"),
    ("", "holds no HU, RSP point"),
    # Text that is not a curve at all said it had "0 points" (every line
    # was taken for a header).
    ("hello\nworld\n", "line 2 is not two numbers: world"),
    ("hu,rsp\n", "holds no HU, RSP point"),
    ("-1000,0.001\n0,nan\n", "finite"),
    ("-1000,-0.1\n0,1.0\n", "negative"),
    ("-1000,0.001\n0,1.0,5\n", "two (HU, RSP)"),
    ("-1000,0.001\n0,abc\n", "not two numbers"),
])
def test_a_bad_curve_file_is_one_line_value_error(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        load_hu_to_rsp(path)
    message = str(caught.value)
    assert "\n" not in message and words in message and "bad.csv" in message
    assert isinstance(caught.value, InputError)


def test_a_missing_curve_file_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_hu_to_rsp(tmp_path / "none.csv")


def test_bad_arrays_are_refused():
    ct, body = _slab(0.0)
    with pytest.raises(ValueError, match="shape"):
        wepl_difference(ct[:, :-1], ct, body, SPACING)
    with pytest.raises(ValueError, match="spacing"):
        wepl_difference(ct, ct, body, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="3-D"):
        wepl_map(ct[0], body[0], SPACING, 0.0)
    with pytest.raises(ValueError, match="finite"):
        wepl_difference(np.where(body, np.nan, ct), ct, body, SPACING)
    with pytest.raises(ValueError, match="no voxel"):
        wepl_difference(ct, ct, body, SPACING, target_mask=~body)
    with pytest.raises(ValueError, match="rise strictly"):
        hu_to_rsp(0.0, np.array([[0.0, 1.0], [0.0, 2.0]]))
