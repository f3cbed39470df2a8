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


def test_eval_of_a_run_writes_no_report_into_its_data(trained_smoke, tmp_path, capsys):
    # --predictions refused it; --run wrote eight report files among the
    # test images, which the next infer.py or training then read.
    test_a = os.path.join(trained_smoke.data, "Dataset", "images", "testA")
    out = os.path.join(test_a, "eval")
    before = sorted(os.listdir(test_a))
    assert run_cli(main, ["--run", trained_smoke.logdir, "--out", out]) == 2
    assert "--out is in the run's data folder" in capsys.readouterr().err
    assert sorted(os.listdir(test_a)) == before


def test_eval_of_a_run_plots_every_loss_log_training_did(trained_smoke, tmp_path,
                                                        monkeypatch):
    # The adversarial upscaler stage's log was left out of the rewritten
    # loss_curves.png (training's own report plots it).
    import vaecyclegan.evaluation.report as report

    plotted = []
    monkeypatch.setattr(report, "save_loss_curves", lambda path, curves: plotted.extend(curves))
    assert os.path.isfile(os.path.join(trained_smoke.logdir, "sr_gan_losses.csv"))
    assert run_cli(main, ["--run", trained_smoke.logdir, "--out", str(tmp_path / "eval")]) == 0
    assert {label.split(":")[0] for label in plotted} == {"translate", "upscale", "upscale GAN"}


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


@pytest.mark.parametrize("direction", ["mri2ct", "ct2mri"])
def test_eval_of_infers_outputs_agrees_with_infer_reference(trained_smoke, tmp_path,
                                                          direction):
    # 8-bit MRI and 16-bit CT (HU + 1024), each as input and as reference.
    # The 8-bit table read 16-bit CT linearly (mri2ct: 5.6 dB where infer
    # said 7.4), and a 16-bit synthetic MRI by its own percentiles.
    import numpy as np

    from tests.harness import infer, write_image
    from vaecyclegan.io.image_format import read_grey

    images = os.path.join(trained_smoke.data, "Dataset", "images")
    mri = tmp_path / "mri"
    for name in os.listdir(os.path.join(images, "testB")):
        # 16-bit MRI for ct2mri's reference, so that its output is 16-bit too.
        pixels = read_grey(os.path.join(images, "testB", name))
        write_image(mri / name, pixels.astype(np.uint16) * 257 if direction == "ct2mri"
                    else pixels)
    ct = os.path.join(images, "testA_hu")
    inputs, references = (str(mri), ct) if direction == "mri2ct" else (ct, str(mri))
    common = ("--direction", direction, "--input", inputs,
              "--weights-dir", trained_smoke.weights_dir)
    assert infer(*common, "--reference", references, "--output", str(tmp_path / "scored")) == 0
    # The translations alone (the folder also holds infer's report).
    os.makedirs(tmp_path / "out")
    for name in os.listdir(inputs):
        os.replace(tmp_path / "scored" / (os.path.splitext(name)[0] + ".png"),
                   tmp_path / "out" / (os.path.splitext(name)[0] + ".png"))
    assert run_cli(main, ["--predictions", str(tmp_path / "out"), "--references", references,
                          "--inputs", inputs, "--direction", direction, "--no-wepl",
                          "--out", str(tmp_path / "eval")]) == 0
    by_infer, by_eval = (json.loads((tmp_path / folder / "metrics.json").read_text())[direction]
                         for folder in ("scored", "eval"))
    for method in ("model", "identity", "histogram_matching"):
        for key in ("psnr", "ssim", "mae"):
            assert by_eval[method][key] == pytest.approx(by_infer[method][key], abs=1e-3), (
                method, key)
