import os

import cv2
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.evaluation.metrics import image_metrics
from vaecyclegan.io.image_format import list_images, read_grey
from vaecyclegan.upscaler.degraded_dataset import bicubic_downscale
from vaecyclegan.upscaler.evaluation import evaluate_upscaler
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet


def test_baselines_follow_their_definitions(phantom_dir):
    paths = list_images(os.path.join(phantom_dir, "Dataset", "images", "testA"))
    net = build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))
    summary = evaluate_upscaler(net, 4, 3, paths)
    assert summary["n"] == 4
    assert set(summary) == {"scale", "n", "model", "bicubic", "nearest", "std"}
    original = read_grey(paths[0]).astype(np.float32) / 255.0
    low = np.asarray(bicubic_downscale(original[..., None], 4))[..., 0]
    assert low.shape == (8, 8)
    nearest = cv2.resize(low, (32, 32), interpolation=cv2.INTER_NEAREST)
    expected = image_metrics(nearest * 255, original * 255)["mae"]
    first_only = evaluate_upscaler(net, 4, 3, paths[:1])
    assert first_only["nearest"]["mae"] == pytest.approx(expected)


def _patch():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(32, 32)), 0), 1)
    return ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)[..., None]


@pytest.mark.parametrize("degradations", [("blur",), ("noise",), ("blur", "noise")])
def test_degradations_change_the_input_reproducibly(degradations):
    import tensorflow as tf

    from vaecyclegan.upscaler.degraded_dataset import degrade

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
    from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset

    with pytest.raises(ValueError, match="unknown degradations"):
        make_sr_dataset(np.zeros((2, 32, 32, 1), np.float32), 32, 4, 2, degradations=("jpeg",))
