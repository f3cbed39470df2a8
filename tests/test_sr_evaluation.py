import json
import os

import cv2
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.image_io import list_images, read_grey
from vaecyclegan.metrics import image_metrics
from vaecyclegan.rrdbnet import build_rrdbnet
from vaecyclegan.sr_evaluation import evaluate_upscaler
from vaecyclegan.sr_training import bicubic_downscale


def test_baselines_follow_their_definitions(phantom_dir):
    paths = list_images(os.path.join(phantom_dir, "Dataset", "images", "testA"))
    net = build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))
    summary = evaluate_upscaler(net, 4, 3, paths)
    assert summary["n"] == 4 and set(summary) == {"scale", "n", "model", "bicubic", "nearest", "std"}
    original = read_grey(paths[0]).astype(np.float32) / 255.0
    low = np.asarray(bicubic_downscale(original[..., None], 4))[..., 0]
    assert low.shape == (8, 8)
    nearest = cv2.resize(low, (32, 32), interpolation=cv2.INTER_NEAREST)
    expected = image_metrics(nearest * 255, original * 255)["mae"]
    first_only = evaluate_upscaler(net, 4, 3, paths[:1])
    assert first_only["nearest"]["mae"] == pytest.approx(expected)


def test_train_run_reports_the_upscaler(trained_smoke):
    with open(os.path.join(trained_smoke.logdir, "sr_metrics.json")) as f:
        summary = json.load(f)
    assert summary["scale"] == 4 and summary["n"] == 8
    assert {"psnr", "ssim", "bce", "auc", "f1"} <= set(summary["bicubic"])


def _patch():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(32, 32)), 0), 1)
    return ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)[..., None]


@pytest.mark.parametrize("degradations", [("blur",), ("noise",), ("blur", "noise")])
def test_degradations_change_the_input_reproducibly(degradations):
    import tensorflow as tf

    from vaecyclegan.sr_training import degrade

    hr = tf.constant(_patch())
    seeds = tf.constant([3, 4])
    clean = degrade(hr, 4, (), seeds).numpy()
    np.testing.assert_allclose(clean, bicubic_downscale(hr, 4).numpy())
    dirty = degrade(hr, 4, degradations, seeds).numpy()
    assert dirty.shape == clean.shape == (8, 8, 1)
    assert np.abs(dirty - clean).max() > 1e-3
    assert dirty.min() >= 0 and dirty.max() <= 1
    np.testing.assert_array_equal(dirty, degrade(hr, 4, degradations, seeds).numpy())


def test_unknown_degradation_is_refused():
    from vaecyclegan.sr_training import make_sr_dataset

    with pytest.raises(ValueError, match="unknown degradations"):
        make_sr_dataset(np.zeros((2, 32, 32, 1), np.float32), 32, 4, 2, degradations=("jpeg",))


def test_stage_sr_trains_an_x2_upscaler_with_degradations(trained_smoke, tmp_path):
    import shutil

    from conftest import train_options
    from vaecyclegan.config import ModelConfig
    from vaecyclegan.training_run import run_training

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
