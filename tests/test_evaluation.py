import csv
import os
import re

import cv2
import numpy as np
import pytest
from skimage.exposure import match_histograms

from vaecyclegan.evaluation import evaluate_predictions
from vaecyclegan.metrics import image_metrics
from vaecyclegan.report import write_report


def _images(seed, count=3, shape=(24, 20)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def evaluation():
    inputs, references = _images(0), _images(1)
    predictions = [np.clip(r.astype(int) + 5, 0, 255).astype(np.uint8) for r in references]
    pool = np.random.default_rng(2).integers(100, 200, (1, 2000)).astype(np.float64)
    stds = [np.abs(p.astype(float) - r) for p, r in zip(predictions, references)]
    return evaluate_predictions("mri2ct", ["a.png", "b.png", "c.png"], inputs, predictions,
                                references, pool, stds=stds, samples=4), inputs, references, pool


def test_baselines_follow_their_definitions(evaluation):
    result, inputs, references, pool = evaluation
    identity = [image_metrics(i.astype(float), r.astype(float)) for i, r in zip(inputs, references)]
    assert result.summary["identity"]["psnr"] == pytest.approx(np.mean([m["psnr"] for m in identity]))
    matched = [np.clip(match_histograms(i.astype(float), pool), 0, 255) for i in inputs]
    hm = [image_metrics(m, r.astype(float)) for m, r in zip(matched, references)]
    assert result.summary["histogram_matching"]["mae"] == pytest.approx(np.mean([m["mae"] for m in hm]))
    assert result.summary["std"]["identity"]["psnr"] == pytest.approx(np.std([m["psnr"] for m in identity]))


def test_model_rows_and_uncertainty(evaluation):
    result = evaluation[0]
    assert result.summary["n"] == 3
    assert result.summary["model"]["mae"] == pytest.approx(5.0, abs=0.2)
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
    page = open(written["html"]).read()
    targets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert {"grid_mri2ct.png", "loss_curves.png", "metrics.json", "metrics_per_image.csv"} <= set(targets)
    for target in targets:
        assert os.path.isfile(os.path.join(tmp_path, "report", target)), target
    assert "Pearson" in page and "&plusmn;" in page


def test_eval_of_a_run_folder_rewrites_its_report_with_uncertainty(trained_smoke, tmp_path):
    import json

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    out = tmp_path / "eval"
    assert run_cli(main, ["--run", trained_smoke.logdir, "--samples", "3", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"mri2ct", "ct2mri"}
    assert metrics["ct2mri"]["uncertainty"]["samples"] == 3
    assert (out / "index.html").is_file() and (out / "loss_curves.png").is_file()


def test_eval_of_folders_scores_any_tools_predictions(trained_smoke, tmp_path):
    import json

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    images = os.path.join(trained_smoke.data, "Dataset", "images")
    # "Predictions" that are the references themselves must score perfectly.
    out = tmp_path / "eval"
    assert run_cli(main, ["--predictions", os.path.join(images, "testA"),
                          "--references", os.path.join(images, "testA"),
                          "--inputs", os.path.join(images, "testB"), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["mri2ct"]
    assert metrics["model"]["mae"] == 0.0 and metrics["model"]["ssim"] == pytest.approx(1.0)
    assert metrics["identity"]["mae"] > 0


def test_eval_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.evaluate import main

    assert run_cli(main, ["--run", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no run.json: not a run folder written by train.py"


def test_without_a_pool_only_the_model_is_scored():
    inputs, references = _images(0), _images(1)
    result = evaluate_predictions("ct2mri", ["a", "b", "c"], inputs, references, references, None)
    assert set(result.summary) == {"n", "model", "std"}
    assert {r["method"] for r in result.rows} == {"model"}
