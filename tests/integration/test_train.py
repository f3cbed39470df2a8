"""`train.py`'s outputs, from the shared smoke training run."""

import dataclasses
import json
import os
import shutil

import keras

from tests.harness import train_options
from vaecyclegan.config import ModelConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.networks import WEIGHT_FILES, build_network


def test_train_run_writes_weights_config_and_metrics(trained_smoke):
    files = sorted(os.listdir(trained_smoke.weights_dir))
    assert files == sorted([*WEIGHT_FILES.values(), "config.json", "best"])
    config = ModelConfig.load(trained_smoke.weights_dir)
    assert config.image_size == 32 and config.training["preset"] == "smoke"
    assert config.training["versions"]["keras"] == keras.__version__
    with open(os.path.join(trained_smoke.logdir, "metrics.json")) as f:
        metrics = json.load(f)
    assert set(metrics) == {"mri2ct", "ct2mri"}
    for name, direction in metrics.items():
        assert direction["n"] == 4
        # mri2ct's references carry HU (testA_hu): its SynthRAD section joins the old keys,
        # and its per-tissue errors say which window and thresholds split the classes.
        extra = {"synthrad", "tissue"} if name == "mri2ct" else set()
        assert set(direction) == {"n", "model", "identity", "histogram_matching", "std", *extra}
        for method in ("model", "identity", "histogram_matching"):
            assert {"psnr", "ssim", "mae", "bce", "auc", "f1"} <= set(direction[method])
    assert "mae_hu" in metrics["mri2ct"]["model"] and "mae_hu" not in metrics["ct2mri"]["model"]
    assert {"mae_bone", "bone_dice"} <= set(metrics["mri2ct"]["model"])
    assert "bone_dice" not in metrics["ct2mri"]["model"]
    # The phantom is rendered at the training size: translated at its own scale.
    assert config.pixel_scale.resize_factor == 1.0 and config.pixel_scale.mm_per_pixel is None
    synthrad = metrics["mri2ct"]["synthrad"]
    assert synthrad["n"] == 4 and {"mae", "psnr_2023", "dice_bone"} <= set(synthrad["mean"])
    for name in ("options.json", "losses.csv", "metrics_per_image.csv", "grid_mri2ct.png",
                 "grid_ct2mri.png", "loss_curves.png", "index.html", "checkpoint_evals.csv"):
        assert os.path.isfile(os.path.join(trained_smoke.logdir, name)), name
    best = os.path.join(trained_smoke.weights_dir, "best")
    assert ModelConfig.load(best).training["best"]["metric"] == "ssim"
    # The page says it scored the final weights, not weights/best (chosen on
    # these test pairs): it had not said which.
    with open(os.path.join(trained_smoke.logdir, "index.html"), encoding="utf-8") as f:
        assert "Scored: the final weights." in f.read()
    assert os.path.isfile(os.path.join(best, "g_target_weights.h5"))


def test_config_json_rebuilds_the_networks(trained_smoke):
    config = ModelConfig.load(trained_smoke.weights_dir)
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert build_network(config, "rrdbnet").count_params() > 0


def test_stage_sr_keeps_the_translators(trained_smoke, tmp_path):
    from vaecyclegan.workflows.train import run_training

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    before = (weights / "g_target_weights.h5").read_bytes()
    run_training(train_options(stage="sr", weights_dir=str(weights), logdir=str(tmp_path / "run"),
                               data=trained_smoke.data, sr_steps=3, seed=7))
    assert (weights / "g_target_weights.h5").read_bytes() == before
    config, original = (ModelConfig.load(str(weights)),
                        ModelConfig.load(trained_smoke.weights_dir))
    assert config.generator == original.generator
    # The translators' record stays theirs (it was rewritten as this run's:
    # its steps, seed and time); the upscaler's keys and run are this one's.
    from vaecyclegan.workflows.train import UPSCALER_RECORD_KEYS

    record = dict(config.training)
    upscaler_run = record.pop("upscaler_run")
    assert upscaler_run["seed"] == 7 and upscaler_run["finished"]
    assert record.pop("sr_steps") == 3
    assert {key: value for key, value in record.items() if key not in UPSCALER_RECORD_KEYS} == {
        key: value for key, value in original.training.items()
        if key not in UPSCALER_RECORD_KEYS and key != "sr_steps"}


def test_stage_sr_refuses_a_ct_window_other_than_the_translators(trained_smoke, tmp_path):
    # The upscaler's data was read through the translators' window while
    # options.json recorded the one given.
    import pytest

    from vaecyclegan.errors import InputError
    from vaecyclegan.workflows.train import run_training

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    with pytest.raises(InputError, match="the translators here read CT through -1000..2000 HU"):
        run_training(train_options(stage="sr", weights_dir=str(weights), sr_steps=1,
                                   logdir=str(tmp_path / "run"), data=trained_smoke.data,
                                   ct_window=(40.0, 400.0)))
    assert not (tmp_path / "run").exists()


def test_evaluation_skips_empty_test_folders(trained_smoke, tmp_path, capsys):
    from vaecyclegan.workflows.train import evaluate_weights

    data = tmp_path / "data"
    shutil.copytree(trained_smoke.data, data)
    shutil.rmtree(data / "Dataset" / "images" / "testB")
    (data / "Dataset" / "images" / "testB").mkdir()
    folders = resolve_dataset(str(data))
    config = ModelConfig.load(trained_smoke.weights_dir)
    assert evaluate_weights(trained_smoke.weights_dir, folders, config) == []
    assert "Skipping mri2ct evaluation" in capsys.readouterr().out


def test_stage_translate_keeps_the_upscaler(trained_smoke, tmp_path):
    # It wrote the preset's upscaler section into config.json beside the
    # folder's weights, which `infer.py` then could not load when the two
    # differed.
    import pytest

    from vaecyclegan.errors import InputError
    from vaecyclegan.networks import load_network
    from vaecyclegan.workflows.train import UPSCALER_RECORD_KEYS, run_training

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    before = (weights / "rrdbnet_weights.h5").read_bytes()
    options = train_options(stage="translate", weights_dir=str(weights), steps=1, seed=7,
                            logdir=str(tmp_path / "run"), data=trained_smoke.data)
    run_training(options)
    assert (weights / "rrdbnet_weights.h5").read_bytes() == before
    config, original = (ModelConfig.load(str(weights)),
                        ModelConfig.load(trained_smoke.weights_dir))
    assert config.rrdbnet == original.rrdbnet
    load_network(str(weights), "rrdbnet", config)
    # The translators' record is this run's; the upscaler's keys and run
    # are those of the run that trained it.
    record = config.training
    assert record["seed"] == 7 and record["steps"] == 1
    assert {key: record[key] for key in UPSCALER_RECORD_KEYS} == {
        key: original.training[key] for key in UPSCALER_RECORD_KEYS}
    assert record["upscaler_run"]["seed"] == original.training["seed"]
    assert record["upscaler_run"]["finished"] == original.training["finished"]
    # Options the kept upscaler was not trained with are refused (they
    # would be recorded, not used), and so are weights it cannot load.
    for changed, words in (({"sr_scale": 2}, "the upscaler here is x4"),
                           ({"ct_window": (40.0, 400.0)}, "learnt CT through -1000..2000 HU")):
        with pytest.raises(InputError, match=words):
            run_training(dataclasses.replace(options, logdir=str(tmp_path / "run2"), **changed))
    (weights / "rrdbnet_weights.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(InputError, match="--stage translate keeps the upscaler"):
        run_training(dataclasses.replace(options, logdir=str(tmp_path / "run2")))


def test_stage_sr_renders_the_phantom_through_the_translators_window(trained_smoke, tmp_path):
    # It rendered (and, over an earlier render, replaced) the phantom in
    # the default window, not in the one the translators were trained in.
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    config = json.loads((weights / "config.json").read_text())
    config["intensity"]["ct_window_hu"] = [-160.0, 240.0]
    (weights / "config.json").write_text(json.dumps(config))
    from vaecyclegan.workflows.train import run_training

    run_training(train_options(stage="sr", weights_dir=str(weights), sr_steps=1, sr_gan_steps=0,
                               logdir=str(tmp_path / "run"), data_root=str(tmp_path / "data")))
    [marker] = (tmp_path / "data").glob("phantom_*/phantom.json")
    assert json.loads(marker.read_text())["ct_window_hu"] == [-160.0, 240.0]
