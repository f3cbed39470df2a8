"""A model trained on shrunk slices is applied at the pixel scale it saw:
trained at 32 px on 128-px images (the quick preset's 64 on 256, in small),
it translates a 128-px slice at 32 px and returns 128 px; `--ct-window`
and the scale are recorded in config.json."""

import logging
import os

import cv2
import pytest

from tests.harness import infer, train_options
from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.data.phantom import write_phantom_dataset
from vaecyclegan.workflows.train import run_training


@pytest.fixture(scope="module")
def shrunk_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    # The CT written in a brain window, as the Kaggle data's is.
    images = write_phantom_dataset(str(root / "data"), IntensityConfig((-160.0, 240.0)),
                                   size=128, num_train=4, num_test=2, seed=0)
    settings = train_options(data=str(root / "data"), stage="translate", steps=2,
                             eval_every=0, ct_window=(40.0, 400.0),
                             weights_dir=str(root / "weights"), logdir=str(root / "run"))
    run_training(settings)
    return root, images


def test_the_training_scale_and_window_are_recorded(shrunk_run):
    root, _ = shrunk_run
    config = ModelConfig.load(str(root / "weights"))
    assert config.image_size == 32
    assert config.pixel_scale.resize_factor == 4.0 and config.pixel_scale.mm_per_pixel is None
    assert config.intensity.ct_window_hu == (-160.0, 240.0)
    assert config.training["crop_factor"] is None


def test_a_large_slice_is_translated_at_the_training_scale(shrunk_run, caplog):
    root, images = shrunk_run
    source = os.path.join(images, "testB")
    with caplog.at_level(logging.INFO, logger="vaecyclegan"):
        code = infer("--direction", "mri2ct", "--input", source, "--output",
                     str(root / "out"), "--weights-dir", str(root / "weights"))
    assert code == 0
    assert "128x128 slices translated at the training pixel scale (32x32, 4 input pixels " \
           "a network pixel)" in caplog.text
    for name in os.listdir(source):
        assert cv2.imread(str(root / "out" / name), cv2.IMREAD_UNCHANGED).shape == (128, 128)
    # Control: --resample off translates at the slice's own scale.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vaecyclegan"):
        assert infer("--direction", "mri2ct", "--input", source, "--output",
                     str(root / "native"), "--weights-dir", str(root / "weights"),
                     "--resample", "off") == 0
    assert "translated at their own pixel scale" in caplog.text


def test_native_crops_keep_the_native_scale(tmp_path, shrunk_run):
    root, _ = shrunk_run
    settings = train_options(data=str(root / "data"), stage="translate", steps=2,
                             eval_every=0, crop_factor=1.0,
                             weights_dir=str(tmp_path / "weights"), logdir=str(tmp_path / "run"))
    run_training(settings)
    config = ModelConfig.load(str(tmp_path / "weights"))
    assert config.pixel_scale.resize_factor == 1.0 and config.training["crop_factor"] == 1.0


def test_a_crop_factor_that_leaves_no_crop_is_recorded_as_whole_slices(tmp_path, shrunk_run,
                                                                      caplog):
    root, _ = shrunk_run
    # 128-px slices shrunk 8 times are 16 px, under the 32-px training side:
    # whole slices (resized to 32 px) train, as without --crop-factor.
    settings = train_options(data=str(root / "data"), stage="translate", steps=1,
                             eval_every=0, crop_factor=8.0,
                             weights_dir=str(tmp_path / "weights"), logdir=str(tmp_path / "run"))
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        run_training(settings)
    assert "--crop-factor 8 shrinks the slices to 32px or less" in caplog.text
    config = ModelConfig.load(str(tmp_path / "weights"))
    assert config.training["crop_factor"] is None
    assert config.pixel_scale.resize_factor == 4.0


def test_an_image_too_small_for_the_training_scale_is_one_line(shrunk_run, tmp_path, capsys):
    # 20 px at 4 input pixels a network pixel is 5 px, under the 8 px any
    # slice needs; plain images carry no spacing, so their size is named.
    import numpy as np

    from tests.harness import assert_one_line_error, write_image

    root, _ = shrunk_run
    write_image(tmp_path / "in" / "small.png", np.full((20, 20), 90, np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out"), "--weights-dir", str(root / "weights"))
    assert_one_line_error(capsys, code, "small.png: its 20x20 slices would be 5x5 at the "
                          "training pixel scale, smaller than 8x8; check its size")
    assert not (tmp_path / "out").exists()
