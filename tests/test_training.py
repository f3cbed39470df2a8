import json
import os

import keras
import numpy as np
import pytest

from conftest import tiny_model_config, train_options
from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.networks import WEIGHT_FILES, build_network
from vaecyclegan.domain_slices import load_domain_slices
from vaecyclegan.unpaired_dataset import make_unpaired_dataset
from vaecyclegan.vae_cyclegan import VAECycleGAN

LOSS_KEYS = {"g_loss", "d_loss", "adversarial", "cycle", "identity", "kl"}


def _fit_losses(phantom_dir, steps, seed=0):
    keras.utils.set_random_seed(seed)
    config = tiny_model_config()
    folders = resolve_dataset(phantom_dir)
    mri = load_domain_slices(folders.mri_train, "mri", IntensityConfig(), 32).slices
    ct = load_domain_slices(folders.ct_train, "ct", IntensityConfig(), 32).slices
    model = VAECycleGAN(*(build_network(config, n) for n in ("g_target", "g_source",
                                                              "d_source", "d_target")))
    model.compile(g_optimizer=keras.optimizers.AdamW(2e-3, beta_1=0.5),
                  d_optimizer=keras.optimizers.AdamW(2e-3, beta_1=0.5))
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append({k: float(v) for k, v in logs.items()}))
    model.fit(make_unpaired_dataset(mri, ct, 2, 3, seed), steps_per_epoch=steps, epochs=1,
              verbose=0, shuffle=False, callbacks=[record])
    return losses


def test_training_lowers_the_cycle_loss(phantom_dir):
    losses = _fit_losses(phantom_dir, steps=40)
    assert set(losses[0]) == LOSS_KEYS
    assert all(np.isfinite(v) for step in losses for v in step.values())
    first = np.mean([s["cycle"] for s in losses[:5]])
    last = np.mean([s["cycle"] for s in losses[-5:]])
    assert last < 0.6 * first, (first, last)


def test_batches_are_doubled_by_augmentation_and_unpaired(phantom_dir):
    folders = resolve_dataset(phantom_dir)
    mri = load_domain_slices(folders.mri_train, "mri", IntensityConfig(), 32).slices
    ct = load_domain_slices(folders.ct_train, "ct", IntensityConfig(), 32).slices
    mri_batch, ct_batch = next(iter(make_unpaired_dataset(mri, ct, 4, 3, seed=1)))
    assert mri_batch.shape == ct_batch.shape == (8, 32, 32, 3)
    mri_batch = mri_batch.numpy()
    # The second half are views of the first half, not copies.
    assert not np.allclose(mri_batch[:4], mri_batch[4:])
    assert np.all(np.abs(mri_batch) <= 1.0)
    np.testing.assert_array_equal(mri_batch[..., 0], mri_batch[..., 2])


def test_training_images_are_resized_to_the_image_size(phantom_dir):
    images = load_domain_slices(resolve_dataset(phantom_dir).ct_train, "ct", IntensityConfig(),
                                16).slices
    assert images.shape == (8, 16, 16, 1) and images.dtype == np.float32


def test_train_run_writes_weights_config_and_metrics(trained_smoke):
    files = sorted(os.listdir(trained_smoke.weights_dir))
    assert files == sorted([*WEIGHT_FILES.values(), "config.json", "best"])
    config = ModelConfig.load(trained_smoke.weights_dir)
    assert config.image_size == 32 and config.training["preset"] == "smoke"
    assert config.training["versions"]["keras"] == keras.__version__
    with open(os.path.join(trained_smoke.logdir, "metrics.json")) as f:
        metrics = json.load(f)
    assert set(metrics) == {"mri2ct", "ct2mri"}
    for direction in metrics.values():
        assert direction["n"] == 4
        assert set(direction) == {"n", "model", "identity", "histogram_matching", "std"}
        for method in ("model", "identity", "histogram_matching"):
            assert {"psnr", "ssim", "mae", "bce", "auc", "f1"} <= set(direction[method])
    assert "mae_hu" in metrics["mri2ct"]["model"] and "mae_hu" not in metrics["ct2mri"]["model"]
    for name in ("options.json", "losses.csv", "metrics_per_image.csv", "grid_mri2ct.png",
                 "grid_ct2mri.png", "loss_curves.png", "index.html", "checkpoint_evals.csv"):
        assert os.path.isfile(os.path.join(trained_smoke.logdir, name)), name
    best = os.path.join(trained_smoke.weights_dir, "best")
    assert ModelConfig.load(best).training["best"]["metric"] == "ssim"
    assert os.path.isfile(os.path.join(best, "g_target_weights.h5"))


def test_config_json_rebuilds_the_networks(trained_smoke):
    config = ModelConfig.load(trained_smoke.weights_dir)
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert build_network(config, "rrdbnet").count_params() > 0


def test_stage_sr_keeps_the_translators(trained_smoke, tmp_path):
    import shutil

    from vaecyclegan.training_run import run_training

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    before = (weights / "g_target_weights.h5").read_bytes()
    run_training(train_options(stage="sr", weights_dir=str(weights), logdir=str(tmp_path / "run"),
                               data=trained_smoke.data))
    assert (weights / "g_target_weights.h5").read_bytes() == before
    assert ModelConfig.load(str(weights)).generator == ModelConfig.load(
        trained_smoke.weights_dir).generator


def test_a_dataset_without_the_layout_is_refused(tmp_path):
    with pytest.raises(InputError, match="trainA/trainB"):
        resolve_dataset(str(tmp_path))


def test_train_cli_prints_options_and_refuses_bad_data(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    code = run_cli(main, ["--preset", "smoke", "--data", str(tmp_path / "absent"),
                          "--logdir", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w")])
    captured = capsys.readouterr()
    assert code == 2
    assert "----------------- Options ---------------" in captured.out
    assert "[default: quick]" in captured.out
    assert captured.err.strip().splitlines() == [
        f"error: {tmp_path / 'absent'}: dataset folder not found"]
    assert not os.path.exists(tmp_path / "w")


def test_evaluation_skips_empty_test_folders(trained_smoke, tmp_path, capsys):
    import shutil

    from vaecyclegan.training_run import evaluate_weights

    data = tmp_path / "data"
    shutil.copytree(trained_smoke.data, data)
    shutil.rmtree(data / "Dataset" / "images" / "testB")
    (data / "Dataset" / "images" / "testB").mkdir()
    folders = resolve_dataset(str(data))
    config = ModelConfig.load(trained_smoke.weights_dir)
    assert evaluate_weights(trained_smoke.weights_dir, folders, config) == []
    assert "Skipping mri2ct evaluation" in capsys.readouterr().out
