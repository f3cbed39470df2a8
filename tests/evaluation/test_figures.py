"""The report's pictures: scales and labels a reader can compare across
windows, methods and cases."""

import matplotlib.colors
import numpy as np
import pytest

import vaecyclegan.evaluation.figures as figures
from vaecyclegan.evaluation.scoring import DirectionEvaluation


def _drawn(monkeypatch):
    """Captures the figures `figures` would save."""
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure))
    return drawn


def _ct_evaluation(window, offset=17.0):
    reference = np.tile(np.linspace(0, 255, 32), (32, 1))
    prediction = np.clip(reference + offset, 0, 255)  # `offset` grey levels off everywhere
    bones = [(reference > 200, prediction > 200)]
    summary = {"tissue": {"window_hu": list(window), "bone_threshold_hu": 200.0}}
    return DirectionEvaluation("mri2ct", ["a.png"], [reference], [prediction], [reference],
                               None, summary, [], bones=bones)


def test_the_grid_draws_ct_errors_in_hu_on_one_scale_whatever_the_window(monkeypatch):
    # "|error| (0-64)" grey levels were 100 HU in a brain window and 753 HU
    # in a wide one: set a looked far worse on a 7.5 times tighter scale.
    drawn = _drawn(monkeypatch)
    for window in ((-160.0, 240.0), (-1000.0, 2000.0)):
        figures.save_comparison_grid("grid.png", _ct_evaluation(window))
    errors = []
    for figure in drawn:
        axis = figure.axes[3]
        assert axis.get_title() == "output - reference, HU (+-300)"
        errors.append(float(axis.images[0].get_array().max()))
        assert "W " in figure.axes[1].get_title()  # the window is stated
        assert "green reference only" in figure._suptitle.get_text()
        assert len(figure.axes) == 5 + 1  # the five panels and the error's colour bar
    # 17 grey levels: 26.7 HU in the brain window, 200 HU in the wide one.
    assert np.allclose(errors, [17 * 400 / 255, 17 * 3000 / 255])
    # MRI stays in grey levels.
    mri = DirectionEvaluation("ct2mri", ["a.png"], *[[np.zeros((32, 32))]] * 3, None, {}, [])
    figures.save_comparison_grid("grid.png", mri)
    assert drawn[-1].axes[3].get_title() == "output - reference, grey levels (+-64)"


def test_the_error_maps_keep_the_sign_so_a_bias_shows(monkeypatch):
    # |error| drew bone too dark and bone too bright alike; a physicist
    # needs to see which (too dark bone under-doses behind it).
    drawn = _drawn(monkeypatch)
    for offset in (-17.0, 17.0):
        figures.save_comparison_grid("grid.png", _ct_evaluation((-160.0, 240.0), offset))
    low, high = (figure.axes[3].images[0] for figure in drawn)
    assert low.get_array().max() <= 0 < high.get_array().max()
    assert low.get_clim() == high.get_clim() == (-300.0, 300.0)


def test_loss_curves_name_raw_and_smoothed_and_are_not_flattened_by_the_first_steps(
        monkeypatch):
    drawn = _drawn(monkeypatch)
    steps = np.arange(1.0, 201.0)
    values = np.where(steps < 10, 30.0, 1.0 + 0.01 * np.sin(steps))
    figures.save_loss_curves("losses.png", {"g_loss": (steps, values)})
    axis = drawn[0].axes[0]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [
        "raw", "moving average (0.9)"]
    assert axis.get_ylim()[1] < 2.0  # the settled losses fill the panel


def test_the_synthrad_view_draws_sct_minus_ct_inside_the_mask(monkeypatch):
    from vaecyclegan.evaluation.case_scoring import CaseFigure, CaseResult

    drawn = _drawn(monkeypatch)
    reference = np.tile(np.linspace(-1000.0, 1500.0, 32), (32, 1))
    mask = np.zeros((32, 32), bool)
    mask[4:28, 4:28] = True
    prediction = np.where(reference > 200, reference - 250.0, reference)  # bone too low
    case = CaseResult("1BA001", {}, {}, CaseFigure(0, reference, prediction, mask))
    figures.save_synthrad_figure("synthrad.png", [case], (-200.0, 200.0), 200.0)
    error = drawn[0].axes[2].images[0].get_array()
    assert drawn[0].axes[2].get_title() == "sCT - CT HU (+-300)"
    assert error.min() == -250.0 and error.max() == 0.0  # the bias keeps its sign
    assert np.ma.getmaskarray(error)[~mask].all() or np.isnan(error.filled(np.nan)[~mask]).all()


def _synthrad_case(name="1BA001"):
    from vaecyclegan.evaluation.case_scoring import CaseFigure, CaseResult

    reference = np.tile(np.linspace(-1000.0, 1500.0, 32), (32, 1))
    mask = np.zeros((32, 32), bool)
    mask[4:28, 4:28] = True
    prediction = np.where(reference > 200, reference - 250.0, reference)
    prediction[:, 8] = 900.0  # soft tissue drawn as bone: magenta
    return CaseResult(name, {}, {}, CaseFigure(0, reference, prediction, mask))


def test_no_tissue_boundary_shares_a_colour_with_the_bone_overlay(monkeypatch):
    # The 200 HU boundary was green, the colour of missed bone one panel on.
    drawn = _drawn(monkeypatch)
    figures.save_synthrad_figure("synthrad.png", [_synthrad_case()], (-200.0, 200.0), 200.0)
    contours = [colour[:3] for artist in drawn[0].axes[2].collections
                for colour in artist.get_edgecolor()]
    assert len(contours) == 2  # both thresholds drawn
    overlay = drawn[0].axes[3].images[0].get_array().reshape(-1, 3)
    bone = {tuple(c) for c in overlay if np.ptp(c) > 0.2 or c.min() > 0.99}
    assert len(bone) == 3  # green, magenta and white all drawn
    for contour in contours:
        distances = [np.linalg.norm(np.subtract(contour, colour)) for colour in bone]
        assert min(distances) > 0.4, (contour, bone)


def test_the_figures_draw_the_legends_the_report_writes(monkeypatch):
    # One set of strings for the PNG titles and the page's captions.
    drawn = _drawn(monkeypatch)
    evaluation = _ct_evaluation((-160.0, 240.0))
    figures.save_comparison_grid("grid.png", evaluation)
    cases = [_synthrad_case(), _synthrad_case("1BA002")]
    figures.save_synthrad_figure("synthrad.png", cases, (-200.0, 200.0), 200.0, rows=1)
    texts = [figures.comparison_grid_text(evaluation),
             figures.synthrad_figure_text(cases, (-200.0, 200.0), 200.0, rows=1)]
    for figure, text in zip(drawn, texts):
        assert text.legends and all(legend in figure._suptitle.get_text()
                                    for legend in text.legends)
        titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
        assert all(title in text.alt for title in titles)  # the alt names every column
    assert texts[0].scope == "all 1 images" and texts[1].scope == "cases 1\u20131 of 2"
    colour, name = figures.TISSUE_CONTOURS[1]
    assert f"200 HU ({name})" in texts[1].legends[1]
    assert [c.get_edgecolor()[0][:3] for c in drawn[1].axes[2].collections][1] == \
        pytest.approx(matplotlib.colors.to_rgb(colour))
