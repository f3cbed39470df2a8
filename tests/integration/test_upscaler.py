"""The upscaler stages of `train.py`, from the shared smoke training run."""

import json
import os
import shutil

from tests.harness import sr_pairs_folder, train_options
from vaecyclegan.config import ModelConfig
from vaecyclegan.workflows.train import run_training


def test_the_smoke_run_went_through_the_adversarial_stage(trained_smoke):
    with open(os.path.join(trained_smoke.logdir, "sr_gan_losses.csv"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("step") and "d_loss" in lines[0] and len(lines) == 3


def test_train_run_reports_the_upscaler(trained_smoke):
    with open(os.path.join(trained_smoke.logdir, "sr_metrics.json")) as f:
        summary = json.load(f)
    assert summary["scale"] == 4 and summary["n"] == 8
    assert {"psnr", "ssim", "bce", "auc", "f1"} <= set(summary["bicubic"])


def test_stage_sr_trains_an_x2_upscaler_with_degradations(trained_smoke, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    run_training(train_options(stage="sr", sr_scale=2, sr_degradations=["blur", "noise"],
                               weights_dir=str(weights), logdir=str(tmp_path / "run"),
                               data=trained_smoke.data))
    config = ModelConfig.load(str(weights))
    assert config.rrdbnet.scale == 2
    assert config.training["sr_degradations"] == ["bicubic", "blur", "noise"]
    with open(tmp_path / "run" / "sr_metrics.json") as f:
        assert json.load(f)["scale"] == 2


def test_train_sr_on_real_pairs_reports_held_out_metrics(trained_smoke, tmp_path, capsys):
    pairs = sr_pairs_folder(tmp_path / "pairs", 10, size=8)
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    run_training(train_options(stage="sr", weights_dir=str(weights), logdir=str(tmp_path / "run"),
                               data=trained_smoke.data, sr_pairs=str(pairs)))
    assert "9 for training, 1 held out" in capsys.readouterr().out
    with open(tmp_path / "run" / "sr_pairs_metrics.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["n"] == 1 and {"model", "bicubic", "nearest"} <= set(summary)
    assert os.path.isfile(tmp_path / "run" / "sr_metrics.json")


def test_the_upscaler_trains_on_domains_of_different_sizes(trained_smoke, tmp_path):
    # Real CT and MRI rarely share a size; the upscaler stage joined them
    # into one array and crashed (`train.py --stage all` on most DICOM data).
    import numpy as np

    from tests.harness import write_image

    rng = np.random.default_rng(0)
    for domain, side in (("ct", 48), ("mri", 32)):
        for index in range(3):
            write_image(tmp_path / domain / f"{index}.png",
                        rng.integers(0, 256, (side, side), dtype=np.uint8))
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    run_training(train_options(stage="sr", ct_dir=str(tmp_path / "ct"),
                               mri_dir=str(tmp_path / "mri"), weights_dir=str(weights),
                               logdir=str(tmp_path / "run"), data_root=str(tmp_path / "data")))
    assert ModelConfig.load(str(weights)).rrdbnet.scale == 4
    assert os.path.isfile(weights / "rrdbnet_weights.h5")
