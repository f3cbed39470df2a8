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
