"""`evaluate.py` on the shared smoke training run and its data."""

import json
import os

import pytest

from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.evaluate import main


def test_eval_of_a_run_folder_rewrites_its_report_with_uncertainty(trained_smoke, tmp_path):
    out = tmp_path / "eval"
    assert run_cli(main, ["--run", trained_smoke.logdir, "--samples", "3", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"mri2ct", "ct2mri"}
    assert metrics["ct2mri"]["uncertainty"]["samples"] == 3
    assert (out / "index.html").is_file() and (out / "loss_curves.png").is_file()


def test_eval_of_folders_scores_any_tools_predictions(trained_smoke, tmp_path):
    images = os.path.join(trained_smoke.data, "Dataset", "images")
    # "Predictions" that are the references themselves must score perfectly.
    out = tmp_path / "eval"
    assert run_cli(main, ["--predictions", os.path.join(images, "testA"),
                          "--references", os.path.join(images, "testA"),
                          "--inputs", os.path.join(images, "testB"), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["mri2ct"]
    assert metrics["model"]["mae"] == 0.0 and metrics["model"]["ssim"] == pytest.approx(1.0)
    assert metrics["identity"]["mae"] > 0
