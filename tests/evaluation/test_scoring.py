import csv
import json
import math
import os
import re

import cv2
import numpy as np
import pytest

from vaecyclegan.evaluation.report import write_report
from vaecyclegan.evaluation.scoring import evaluate_predictions, pooled_pixels

# The inputs share one histogram (grey levels 0..239, each twice, shuffled), so
# one pool can be a known increasing map of all three: matching an input's
# histogram onto the pool then is that map, pixel by pixel.
INPUT_LEVELS = np.repeat(np.arange(240), 2)  # 480 = 24 x 20 pixels


def _pool_map(pixels):
    return 0.5 * np.asarray(pixels, np.float64) + 100.0


def _images(seed, count=3, shape=(24, 20)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def _inputs(seed=0, count=3):
    rng = np.random.default_rng(seed)
    return [rng.permutation(INPUT_LEVELS).reshape(24, 20).astype(np.uint8) for _ in range(count)]


def _psnr(prediction, reference):
    return 10.0 * np.log10(255.0**2 / np.mean((prediction - reference) ** 2))


def _mae(prediction, reference):
    return np.mean(np.abs(prediction - reference))


@pytest.fixture
def evaluation():
    inputs, references = _inputs(), _images(1)
    predictions = [np.clip(r.astype(int) + 5, 0, 255).astype(np.uint8) for r in references]
    pool = pooled_pixels([_pool_map(INPUT_LEVELS.reshape(24, 20))])
    stds = [np.abs(p.astype(float) - r) for p, r in zip(predictions, references)]
    return evaluate_predictions("mri2ct", ["a.png", "b.png", "c.png"], inputs, predictions,
                                references, pool, stds=stds, samples=4), inputs, references, pool


def test_baselines_follow_their_definitions(evaluation):
    result, inputs, references, _ = evaluation
    inputs = [i.astype(np.float64) for i in inputs]
    references = [r.astype(np.float64) for r in references]
    summary = result.summary
    # Identity: the input itself. PSNR = 10 log10(255^2 / MSE), averaged over images.
    identity_psnr = [_psnr(i, r) for i, r in zip(inputs, references)]
    assert summary["identity"]["psnr"] == pytest.approx(np.mean(identity_psnr), rel=1e-9)
    assert summary["std"]["identity"]["psnr"] == pytest.approx(np.std(identity_psnr), rel=1e-9)
    assert summary["identity"]["mae"] == pytest.approx(
        np.mean([_mae(i, r) for i, r in zip(inputs, references)]), rel=1e-9)
    # Histogram matching onto the pool maps every input through the pool's map.
    matched = [_pool_map(i) for i in inputs]
    hm_mae = [_mae(m, r) for m, r in zip(matched, references)]
    assert summary["histogram_matching"]["mae"] == pytest.approx(np.mean(hm_mae), rel=1e-9)
    assert summary["histogram_matching"]["psnr"] == pytest.approx(
        np.mean([_psnr(m, r) for m, r in zip(matched, references)]), rel=1e-9)
    rows = {(row["method"], row["file"]): row for row in result.rows}
    for name, expected in zip(["a.png", "b.png", "c.png"], hm_mae):
        assert rows["histogram_matching", name]["mae"] == pytest.approx(expected, rel=1e-9)
    # The model: the reference + 5, clipped at 255.
    predictions = [np.minimum(r + 5.0, 255.0) for r in references]
    assert summary["model"]["mae"] == pytest.approx(
        np.mean([_mae(p, r) for p, r in zip(predictions, references)]), rel=1e-9)
    assert summary["model"]["psnr"] == pytest.approx(
        np.mean([_psnr(p, r) for p, r in zip(predictions, references)]), rel=1e-9)


def test_hand_computed_scores_of_one_tiny_image():
    reference = np.array([[0, 100], [200, 250]], np.uint8)
    prediction = np.array([[10, 100], [190, 250]], np.uint8)  # errors 10 0 10 0
    image = np.array([[250, 200], [100, 0]], np.uint8)  # errors 250 100 100 250
    # Four grey levels onto four pool levels, in order: 0->50, 100->60, 200->70, 250->80,
    # so matching gives [[80, 70], [60, 50]]: errors 80 30 140 200.
    pool = pooled_pixels([np.array([[60.0, 80.0], [50.0, 70.0]])])
    result = evaluate_predictions("mri2ct", ["a.png"], [image], [prediction], [reference], pool)
    model, identity, matched = (result.summary[m] for m in
                                ("model", "identity", "histogram_matching"))
    assert model["mae"] == pytest.approx(5.0)
    assert model["psnr"] == pytest.approx(10 * math.log10(255**2 / 50.0))  # MSE (100 + 100) / 4
    assert identity["mae"] == pytest.approx(175.0)
    assert identity["psnr"] == pytest.approx(10 * math.log10(255**2 / 36250.0))
    assert matched["mae"] == pytest.approx(112.5)
    assert matched["psnr"] == pytest.approx(
        10 * math.log10(255**2 / ((80**2 + 30**2 + 140**2 + 200**2) / 4)))
    # Labels (reference > 127.5): 0 0 1 1. The model ranks and thresholds them right,
    # the input exactly wrong.
    assert (model["auc"], model["f1"]) == (1.0, 1.0)
    assert (identity["auc"], identity["f1"]) == (0.0, 0.0)
    assert math.isnan(model["ssim"])  # 2x2 is below SSIM's window
    assert result.summary["std"]["model"]["mae"] == 0.0  # one image


def test_model_rows_and_uncertainty(evaluation):
    result = evaluation[0]
    assert result.summary["n"] == 3
    assert result.summary["model"]["mae"] == pytest.approx(
        np.mean([np.mean(np.minimum(r + 5.0, 255.0) - r) for r in evaluation[2]]))
    assert len(result.rows) == 9 and {r["method"] for r in result.rows} == {
        "model", "identity", "histogram_matching"}
    # The std maps were made equal to the error: a perfect correlation.
    assert result.summary["uncertainty"]["pearson"] == pytest.approx(1.0)


def test_report_files_are_valid_and_the_page_links_only_existing_files(evaluation, tmp_path):
    result = evaluation[0]
    losses = tmp_path / "losses.csv"
    losses.write_text("step,seconds,g_loss,d_loss\n1,0.1,3.0,0.5\n2,0.2,2.5,0.4\n3,0.3,2.2,0.45\n")
    written = write_report(str(tmp_path / "report"), [result], "test report",
                           loss_csvs=[("translate", str(losses)),
                                      ("upscale", str(tmp_path / "absent.csv"))])
    for key in ("grid_mri2ct", "loss_curves"):
        image = cv2.imread(written[key])
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    with open(written["per_image"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and {"file", "method", "psnr", "ssim", "f1"} <= set(rows[0])
    with open(written["html"], encoding="utf-8") as f:
        page = f.read()
    targets = re.findall(r'(?:src|href)="([^"]+)"', page)
    expected = {"grid_mri2ct.png", "loss_curves.png", "metrics.json", "metrics_per_image.csv"}
    assert expected <= set(targets)
    for target in targets:
        assert os.path.isfile(os.path.join(tmp_path, "report", target)), target
    assert "Pearson" in page and "&plusmn;" in page


def test_eval_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    assert run_cli(main, ["--run", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path}: no run.json: not a run folder written by train.py")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"data_dir": 5, "weights_dir": null}',
                                  '{"data_dir": "d"}', "\udcff", '{"weights_dir": "w"}',
                                  '{"weights_dir": "w", "data_dir": null, "ct_dir": "c"}'])
def test_eval_refuses_a_run_file_it_cannot_use(tmp_path, capsys, text):
    # Each was a traceback (JSONDecodeError, TypeError).
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    (tmp_path / "run.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    code = run_cli(main, ["--run", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {tmp_path / 'run.json'}: not a r")
    assert sorted(os.listdir(tmp_path)) == ["run.json"]


def test_eval_refuses_an_output_that_is_a_file_before_scoring(tmp_path, capsys):
    # Was a FileExistsError after all the scoring.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    (tmp_path / "out.png").write_bytes(b"keep")
    (tmp_path / "run.json").write_text("{not json")
    assert run_cli(main, ["--run", str(tmp_path), "--out", str(tmp_path / "out.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'out.png'}: cannot be created: {tmp_path / 'out.png'} is a file, "
        f"not a folder")
    assert (tmp_path / "out.png").read_bytes() == b"keep"


def test_without_a_pool_only_the_model_is_scored():
    inputs, references = _images(0), _images(1)
    result = evaluate_predictions("ct2mri", ["a", "b", "c"], inputs, references, references, None)
    assert set(result.summary) == {"n", "model", "std"}
    assert {r["method"] for r in result.rows} == {"model"}


# Per tissue on 8-bit CT in a brain window (-160..240 HU): a level is 400 / 255 HU.
BRAIN_WINDOW = (-160.0, 240.0)
HU_PER_LEVEL = 400.0 / 255.0
AIR, SOFT, BONE = 0, 102, 255  # -160, 0 and 240 HU
TISSUE_KEYS = ("mae_air", "mae_soft", "mae_bone", "bone_dice")


def _frame(top, left, side=12, width=2, shape=(24, 24)):
    """A square bone ring (side 12, 2 thick: 80 pixels) on soft tissue, air in row 0."""
    image = np.full(shape, SOFT, np.uint8)
    image[0] = AIR
    image[top:top + side, left:left + side] = BONE
    image[top + width:top + side - width, left + width:left + side - width] = SOFT
    return image


def _brain(predictions, references, direction="mri2ct", **kwargs):
    inputs = [np.zeros_like(r) for r in references]
    names = [f"{i}.png" for i in range(len(references))]
    pool = pooled_pixels(references)
    return evaluate_predictions(direction, names, inputs, predictions, references, pool,
                                ct_window=BRAIN_WINDOW, **kwargs)


def test_an_offset_in_soft_tissue_shows_only_in_mae_soft():
    reference = _frame(6, 6)
    prediction = reference.copy()
    prediction[reference == SOFT] += 16  # +16 levels = +25.1 HU, soft tissue only
    model = _brain([prediction], [reference]).summary["model"]
    assert model["mae_soft"] == pytest.approx(16 * HU_PER_LEVEL, abs=1e-3)
    assert model["mae_air"] == 0.0 and model["mae_bone"] == 0.0 and model["bone_dice"] == 1.0
    # Control: the same offset in the air row shows there.
    prediction[0] += 16
    model = _brain([prediction], [reference]).summary["model"]
    assert model["mae_air"] == pytest.approx(16 * HU_PER_LEVEL, abs=1e-3)


def test_a_skull_drawn_dark_has_no_bone_dice_and_a_large_bone_error():
    reference = _frame(6, 6)
    dark = reference.copy()
    dark[reference == BONE] = SOFT
    model = _brain([dark], [reference]).summary["model"]
    assert model["bone_dice"] == 0.0 and model["mae_bone"] == pytest.approx(240.0, abs=1e-3)
    assert model["mae_soft"] == 0.0
    # The 8-bit MAE hides it: 80 of 576 pixels are wrong.
    assert model["mae"] == pytest.approx(80 * (BONE - SOFT) / 576)


def test_a_ring_shifted_two_columns_gives_the_dice_worked_by_hand():
    # Rings of 80 pixels; shifted by 2 columns only the top and bottom bands
    # overlap: 2 bands x 2 rows x 10 columns = 40, Dice 2 * 40 / 160.
    reference, shifted = _frame(6, 6), _frame(6, 8)
    result = _brain([shifted, reference], [reference, reference])
    rows = {r["file"]: r for r in result.rows if r["method"] == "model"}
    assert rows["0.png"]["bone_dice"] == 0.5
    assert rows["0.png"]["mae_bone"] == pytest.approx(40 * 240.0 / 80, abs=1e-3)
    assert rows["1.png"]["bone_dice"] == 1.0  # control: unshifted
    assert result.summary["model"]["bone_dice"] == 0.75
    assert result.bones[0][0].sum() == 80 and (result.bones[0][0] & result.bones[0][1]).sum() == 40


def test_a_class_missing_from_a_reference_is_nan_and_left_out_of_the_mean():
    with_air, without_air = _frame(6, 6), _frame(6, 6)
    without_air[0] = SOFT
    prediction = np.full_like(with_air, SOFT)  # air +160 HU, bone -240 HU
    result = _brain([prediction, prediction], [with_air, without_air])
    rows = {r["file"]: r for r in result.rows if r["method"] == "model"}
    assert math.isnan(rows["1.png"]["mae_air"])
    assert rows["0.png"]["mae_air"] == pytest.approx(160.0, abs=1e-3)
    assert result.summary["model"]["mae_air"] == pytest.approx(160.0, abs=1e-3)
    # No image with air at all: the mean stays NaN.
    only = _brain([prediction], [without_air]).summary["model"]
    assert math.isnan(only["mae_air"]) and only["mae_bone"] == pytest.approx(240.0, abs=1e-3)


def test_the_baselines_get_the_tissue_keys_and_ct2mri_none():
    reference = _frame(6, 6)
    result = _brain([reference], [reference])
    for method in ("model", "identity", "histogram_matching"):
        assert set(TISSUE_KEYS) <= set(result.summary[method])
    # The identity (an all-air input) misses bone entirely.
    assert result.summary["identity"]["bone_dice"] == 0.0
    # A brain window saturates bone: only its top band is bone.
    assert result.summary["tissue"]["thresholds_hu"] == [-152.0, 232.0]
    control = _brain([reference], [reference], direction="ct2mri")
    assert not set(TISSUE_KEYS) & set(control.summary["model"])
    assert "tissue" not in control.summary and control.bones is None


def test_an_hu_reference_sets_the_classes_and_the_errors():
    reference = _frame(6, 6)
    reference_hu = -160.0 + reference * HU_PER_LEVEL
    reference_hu[reference == SOFT] -= 3.0
    reference_hu[reference == BONE] = 1200.0  # clipped to the window: 240
    model = _brain([reference], [reference], hu_references=[reference_hu]).summary["model"]
    assert model["mae_soft"] == pytest.approx(3.0, abs=1e-3)
    assert model["mae_bone"] == pytest.approx(0.0, abs=1e-3)
    control = _brain([reference], [reference]).summary["model"]
    assert control["mae_soft"] == 0.0


def test_16bit_references_are_hu_plus_1024_without_a_window():
    reference = np.full((16, 16), 1024 + 40, np.uint16)
    reference[:4] = 0  # -1024 HU: air, clipped to -1000 by the default window
    reference[-4:] = 1024 + 900  # bone
    prediction = reference.copy()
    prediction[4:-4] += 20  # +20 HU in soft tissue
    result = evaluate_predictions("mri2ct", ["a"], [reference], [prediction], [reference], None)
    model = result.summary["model"]
    assert model["mae_soft"] == pytest.approx(20.0, abs=1e-6)
    assert model["mae_air"] == pytest.approx(0.0, abs=1e-6) and model["bone_dice"] == 1.0
    assert result.summary["tissue"]["window"] != "given"


def test_the_tissue_keys_reach_metrics_json_the_csv_the_table_and_the_page(tmp_path):
    from vaecyclegan.evaluation.scoring import format_table

    reference = _frame(6, 6)
    mri2ct = _brain([_frame(6, 8)], [reference])
    ct2mri = _brain([_frame(6, 8)], [reference], direction="ct2mri")
    written = write_report(str(tmp_path), [mri2ct, ct2mri], "tissue report")
    with open(written["metrics"], encoding="utf-8") as f:
        metrics = json.load(f)
    for method in ("model", "identity", "histogram_matching"):
        assert set(TISSUE_KEYS) <= set(metrics["mri2ct"][method])
        assert not set(TISSUE_KEYS) & set(metrics["ct2mri"][method])  # control
    assert metrics["mri2ct"]["model"]["bone_dice"] == 0.5
    with open(written["per_image"]) as f:
        rows = list(csv.DictReader(f))
    assert set(TISSUE_KEYS) <= set(rows[0])
    assert {r["bone_dice"] for r in rows if r["direction"] == "ct2mri"} == {""}
    header = format_table({"mri2ct": mri2ct.summary, "ct2mri": ct2mri.summary}).splitlines()[0]
    assert all(f" {key}" in header for key in TISSUE_KEYS)
    assert " mae_hu" not in header  # control: keys no summary has stay out
    with open(written["html"], encoding="utf-8") as f:
        page = f.read()
    assert page.count("Per tissue and bone") == 1 and "bone Dice" in page
    assert "air below -152 HU" in page
    # The CT grid has the bone-overlap column: one panel wider than ct2mri's.
    widths = [cv2.imread(written[f"grid_{d}"]).shape[1] for d in ("mri2ct", "ct2mri")]
    assert widths[0] > widths[1] * 1.15


def test_tissue_keys_are_reported_and_picked_the_right_way_round():
    from vaecyclegan.names import LOWER_IS_BETTER, REPORTED_METRICS
    from vaecyclegan.workflows.settings import TrainSettings

    assert set(TISSUE_KEYS) <= set(REPORTED_METRICS)
    assert {"mae_air", "mae_soft", "mae_bone"} <= set(LOWER_IS_BETTER)
    assert "bone_dice" not in LOWER_IS_BETTER
    TrainSettings(preset="smoke", best_metric="bone_dice").validate()
    with pytest.raises(ValueError, match="--best-metric"):
        TrainSettings(preset="smoke", best_metric="dice_bone").validate()


def test_scans_are_scored_as_written_with_deviations_in_grey_levels():
    # A deviation left in [-1, 1] units (127.5 times too small) and 8-bit
    # results scored unrounded both passed: correlations ignore scale.
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.scoring import ScanPair, evaluate_scans
    from vaecyclegan.io.image_format import image_scan

    rng = np.random.default_rng(3)
    inputs = [image_scan(rng.integers(0, 256, (16, 16), dtype=np.uint8), f"{n}.png", "mri")
              for n in "ab"]
    references = [image_scan(rng.integers(0, 256, (16, 16), dtype=np.uint8), f"{n}.png", "ct")
                  for n in "ab"]
    means = [rng.uniform(-1, 1, (1, 16, 16)).astype(np.float32) for _ in "ab"]
    stds = [rng.uniform(0, 0.2, (1, 16, 16)).astype(np.float32) for _ in "ab"]
    pairs = [ScanPair(*row) for row in zip(["a.png", "b.png"], inputs, means, stds, references)]
    result = evaluate_scans("mri2ct", pairs, None, IntensityConfig(), samples=3,
                            synthrad=False)
    for written, mean in zip(result.predictions, means):
        np.testing.assert_array_equal(written, np.round((mean[0] + 1.0) * 127.5))
    assert result.summary["uncertainty"]["mean_std"] == pytest.approx(
        np.mean([s.mean() for s in stds]) * 127.5, rel=1e-5)


def test_the_scorer_keeps_only_the_images_its_grid_draws_and_scores_them_all():
    from vaecyclegan.evaluation.figures import GRID_ROWS
    from vaecyclegan.evaluation.scoring import DirectionScorer

    count = GRID_ROWS + 3
    references = _images(4, count)
    scorer = DirectionScorer("mri2ct", pooled_pixels(references), (-160.0, 240.0))
    for index, reference in enumerate(references):
        scorer.add(f"{index}.png", _inputs(index, 1)[0], np.clip(reference + 0.0 + index, 0, 255),
                   reference)
    result = scorer.result()
    assert result.summary["n"] == len(result.names) == count and len(result.rows) == 3 * count
    assert len(result.predictions) == len(result.inputs) == len(result.bones) == GRID_ROWS
    # The last image, not kept, is scored: its MAE is the offset added.
    last = [r for r in result.rows if r["method"] == "model"][-1]
    assert last["file"] == f"{count - 1}.png" and last["mae"] == pytest.approx(
        np.mean(np.abs(np.clip(references[-1] + (count - 1.0), 0, 255) - references[-1])))


def test_the_uncertainty_is_every_pixel_where_it_fits_and_an_even_sample_past_it(monkeypatch):
    from vaecyclegan.evaluation.scoring import DirectionScorer
    from vaecyclegan.evaluation.uncertainty import std_error_correlation

    rng = np.random.default_rng(5)
    references = _images(6, 4, (32, 32))
    predictions = [np.clip(r + rng.normal(0, 20, r.shape), 0, 255) for r in references]
    errors = [np.abs(p - r) for p, r in zip(predictions, references)]
    # float32, as a translator's deviations are: the sample keeps them so,
    # and its saturation then equals infer.py's scale.json to the digit.
    stds = [(e * 0.5 + rng.uniform(0, 10, e.shape)).astype(np.float32) for e in errors]

    def correlation():
        scorer = DirectionScorer("ct2mri", None, samples=3)
        for index, row in enumerate(zip(references, predictions, references, [None] * 4, stds)):
            scorer.add(f"{index}.png", *row)
        return scorer.result().summary["uncertainty"]

    exact = std_error_correlation(stds, errors)
    assert correlation() == {"samples": 3, **exact}
    monkeypatch.setattr("vaecyclegan.evaluation.scoring.UNCERTAINTY_PIXELS", 4 * 256)
    sampled = correlation()
    assert sampled != {"samples": 3, **exact}
    for key in ("pearson", "spearman", "mean_std", "mean_abs_error"):
        assert sampled[key] == pytest.approx(exact[key], rel=0.05), key


def test_2d_synthrad_cases_past_the_figure_are_scored_without_their_pictures():
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.figures import SYNTHRAD_ROWS
    from vaecyclegan.evaluation.scoring import ScanPair, evaluate_scans
    from vaecyclegan.io.image_format import image_scan

    reference_hu = np.full((24, 24), -1000.0)
    reference_hu[4:20, 4:20] = 40.0
    reference_hu[8:16, 8:16] = 700.0
    stored = (reference_hu + 1024).astype(np.uint16)
    mean = ((stored.astype(np.float32) / 65535.0) * 2.0 - 1.0)[None]
    count = SYNTHRAD_ROWS + 2
    pairs = (ScanPair(f"{n}.png", image_scan(stored, "a.png", "mri"), mean, None,
                      image_scan(stored, "a.png", "ct")) for n in range(count))
    result = evaluate_scans("mri2ct", pairs, None, IntensityConfig())
    assert result.summary["synthrad"]["n"] == len(result.synthrad) == count
    assert [case.figure is not None for case in result.synthrad] == \
        [True] * SYNTHRAD_ROWS + [False] * 2
    assert {case.details["spacing_from"] for case in result.synthrad} == {
        "assumed: 1 mm, the file holds no pixel spacing"}
