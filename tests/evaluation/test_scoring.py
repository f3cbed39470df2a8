import csv
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


def test_without_a_pool_only_the_model_is_scored():
    inputs, references = _images(0), _images(1)
    result = evaluate_predictions("ct2mri", ["a", "b", "c"], inputs, references, references, None)
    assert set(result.summary) == {"n", "model", "std"}
    assert {r["method"] for r in result.rows} == {"model"}
