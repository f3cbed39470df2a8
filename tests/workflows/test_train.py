import os

import keras
import numpy as np
import pytest

from tests.harness import assert_one_line_error, tiny_model_config, train_options
from vaecyclegan.config import IntensityConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.data.domain_slices import load_domain_slices
from vaecyclegan.errors import InputError
from vaecyclegan.networks import build_network
from vaecyclegan.translation.dataset import make_unpaired_dataset
from vaecyclegan.translation.trainer import VAECycleGAN

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
        on_train_batch_end=lambda batch, logs: losses.append(
            {k: float(v) for k, v in logs.items()}))
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


def test_bad_data_stops_the_run_before_its_folder_is_made(tmp_path, capsys):
    # A dataset in the layout whose CT folder holds nothing readable: the run
    # stops on reading it, and neither options.json nor run.json is written.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main
    from vaecyclegan.io.image_format import write_png

    images = tmp_path / "data" / "Dataset" / "images"
    for folder in ("trainA", "trainB"):
        (images / folder).mkdir(parents=True)
    (images / "trainA" / "0001.png").write_text("not an image")
    write_png(str(images / "trainB" / "0001.png"), np.arange(1024, dtype=np.uint8).reshape(32, 32))
    code = run_cli(main, ["--preset", "smoke", "--data", str(tmp_path / "data"),
                          "--logdir", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: {images / 'trainA'}: no readable CT slice left to train on "
        "(1 unreadable files, 0 blank slices)")
    assert not (tmp_path / "run").exists() and not (tmp_path / "w").exists()


def test_an_output_folder_that_cannot_be_made_stops_the_run_first(tmp_path, capsys):
    # Weights are written after minutes of training: a weights folder under
    # a file is refused before any data is read or rendered.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    (tmp_path / "afile").write_text("a file, not a folder")
    code = run_cli(main, ["--preset", "smoke", "--data-root", str(tmp_path / "data"),
                          "--logdir", str(tmp_path / "run"),
                          "--weights-dir", str(tmp_path / "afile" / "weights")])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'afile' / 'weights'}: cannot be created: "
        f"{tmp_path / 'afile'} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_blocked_checkpoint_path_stops_the_run_first(tmp_path, capsys):
    # It trained every step, then crashed writing the checkpoint.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    common = ["--preset", "smoke", "--data-root", str(tmp_path / "data"),
              "--logdir", str(run), "--weights-dir", str(tmp_path / "w")]
    run.mkdir()
    (run / "checkpoint").write_text("x")
    assert run_cli(main, common) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoint'}: cannot be created: {run / 'checkpoint'} is a file, "
        f"not a folder")
    (run / "checkpoint").unlink()
    (run / "checkpoint" / "translation.npz").mkdir(parents=True)
    assert run_cli(main, common) == 2
    assert "a folder is in the way of the checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "data").exists()


def test_resume_without_a_checkpoint_stops_before_anything_is_written(tmp_path, capsys):
    # It wrote options.json and run.json into the run folder, rendered the
    # phantom, then stopped at the first stage.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    assert run_cli(main, ["--preset", "smoke", "--resume", "--logdir", str(run),
                          "--data-root", str(tmp_path / "data"),
                          "--weights-dir", str(tmp_path / "w")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoint' / 'translation.npz'}: no checkpoint to resume from in "
        "this run folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_resume_with_another_stages_checkpoint_alone_stops_first(tmp_path, capsys):
    # An upscaler checkpoint let `--stage translate --resume` through the
    # first check; the data was read before the translation stage refused.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "upscaler.npz").write_bytes(b"not read")
    assert run_cli(main, ["--preset", "smoke", "--stage", "translate", "--resume",
                          "--logdir", str(run), "--data-root", str(tmp_path / "data"),
                          "--weights-dir", str(tmp_path / "w")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoint' / 'translation.npz'}: no checkpoint to resume from in "
        "this run folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_fresh_run_moves_an_earlier_runs_files_aside(phantom_dir, tmp_path):
    # --no-resume left the earlier run's checkpoint (resumed by the next
    # run in the folder), evaluation log and TensorBoard events beside the
    # new run's files.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "translation.npz").write_bytes(b"the earlier run's")
    (run / "tensorboard").mkdir()
    (run / "options.json").write_text("{}")
    (run / "checkpoint_evals.csv").write_text("step,score\n100,0.5\n")
    assert run_cli(main, ["--preset", "smoke", "--stage", "translate", "--steps", "1",
                          "--no-resume", "--eval-every", "0", "--data", phantom_dir,
                          "--logdir", str(run), "--weights-dir", str(run / "weights")]) == 0
    earlier = [p for p in run.iterdir() if p.name.startswith("earlier_run_")]
    assert len(earlier) == 1
    assert (earlier[0] / "checkpoint" / "translation.npz").read_bytes() == b"the earlier run's"
    assert sorted(p.name for p in earlier[0].iterdir()) == [
        "checkpoint", "checkpoint_evals.csv", "options.json", "tensorboard"]
    assert not (run / "checkpoint_evals.csv").exists()
    assert (run / "checkpoint" / "translation.npz").read_bytes() != b"the earlier run's"
    assert (run / "weights" / "g_target_weights.h5").is_file()


def test_a_data_folder_as_weights_folder_is_refused(phantom_dir, tmp_path, capsys):
    # The weights and config.json were written among the training images.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    train_a = resolve_dataset(phantom_dir).ct_train
    before = sorted(os.listdir(train_a))
    assert run_cli(main, ["--preset", "smoke", "--data", phantom_dir, "--logdir",
                          str(tmp_path / "run"), "--weights-dir", train_a]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {train_a}: --weights-dir is the data folder {os.path.realpath(train_a)}; "
        "choose another")
    assert sorted(os.listdir(train_a)) == before


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path, capsys):
    # A TensorFlow traceback (a tensor over 2 GB) after the data was read.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    assert run_cli(main, ["--preset", "smoke", "--batch-size", "1000000000", "--logdir",
                          str(tmp_path / "run"), "--data-root", str(tmp_path / "data")]) == 2
    assert "error: --batch-size: a batch of 1000000000 slices" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("inside", [False, True])
def test_a_run_folder_in_a_data_folder_is_refused(phantom_dir, tmp_path, capsys, inside):
    # The report's grids landed among the test images (infer.py then said
    # "4 of 6 inputs have no reference"); below a training folder, the next
    # run would have trained on them.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    folders = resolve_dataset(phantom_dir)
    logdir = os.path.join(folders.ct_train, "run") if inside else folders.mri_test
    before = {f: sorted(os.listdir(f)) for f in (folders.ct_train, folders.mri_test)}
    assert run_cli(main, ["--preset", "smoke", "--data", phantom_dir, "--logdir", logdir,
                          "--weights-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {logdir}: --logdir is") and "the data folder" in err
    assert {f: sorted(os.listdir(f)) for f in before} == before


@pytest.mark.parametrize("problem", ["size", "unreadable", "hu size"])
def test_a_bad_test_pair_stops_the_run_before_training(phantom_dir, tmp_path, capsys, problem):
    # A pair of two sizes crashed the first evaluation with a traceback
    # (skimage: "Input images must have the same dimensions"); an unreadable
    # test image stopped it there; both after minutes of training.
    import shutil

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main
    from vaecyclegan.io.image_format import read_grey, write_png

    data = tmp_path / "data"
    shutil.copytree(phantom_dir, data)
    folders = resolve_dataset(str(data))
    name = sorted(os.listdir(folders.ct_test))[0]
    if problem == "size":
        path = os.path.join(folders.ct_test, name)
        write_png(path, np.zeros((40, 40), np.uint8) + 100)
        words = ["is 40x40, its test partner", "must be one size"]
    elif problem == "unreadable":
        path = os.path.join(folders.mri_test, name)
        with open(path, "wb") as f:
            f.write(b"not an image")
        words = ["not a readable image"]
    else:
        path = os.path.join(folders.ct_test_hu, name)
        write_png(path, np.zeros((40, 40), np.uint16) + read_grey(path).max())
        words = ["is 40x40, its test partner"]
    code = run_cli(main, ["--preset", "smoke", "--data", str(data), "--logdir",
                          str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w")])
    assert_one_line_error(capsys, code, path, *words)
    assert not (tmp_path / "run").exists() and not (tmp_path / "w").exists()


def test_a_refused_resume_leaves_the_runs_record_as_it_was(phantom_dir, tmp_path, capsys):
    # The refusal was right, but options.json had been rewritten with the
    # refused options ("lambda_nce": null): the run's own were lost.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    common = ["--preset", "smoke", "--data", phantom_dir, "--stage", "translate",
              "--logdir", str(run), "--weights-dir", str(tmp_path / "w"), "--eval-every", "0",
              "--log-every", "0"]
    assert run_cli(main, [*common, "--steps", "2", "--lambda-nce", "1"]) == 0
    assert (run / "checkpoint" / "translation.npz").exists()
    # No upscaler was trained: config.json had recorded the preset's
    # sr_steps, sr_degradations and sr_gan_steps all the same.
    from vaecyclegan.config import ModelConfig

    training = ModelConfig.load(str(tmp_path / "w")).training
    assert not {"sr_steps", "sr_degradations", "sr_pairs", "sr_gan_steps"} & set(training)
    assert training["steps"] == 2 and training["started"] <= training["finished"]
    assert "resumed_at" not in training
    record = {name: (run / name).read_bytes() for name in ("options.json", "run.json")}
    capsys.readouterr()
    assert run_cli(main, [*common, "--steps", "4", "--resume"]) == 2
    assert "--lambda-nce" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in record} == record
    # Another CT window was accepted: steps 1-2 read CT through one window,
    # 3-4 through another, and config.json named only the second.
    assert run_cli(main, [*common, "--steps", "4", "--lambda-nce", "1", "--ct-window",
                          "40,400"]) == 2
    assert "started with a CT window of -1000..2000 HU; resuming with -160..240 HU" in (
        capsys.readouterr().err)
    assert {name: (run / name).read_bytes() for name in record} == record
    # Another seed was accepted too (with the phantom, other data as well).
    code = run_cli(main, [*common, "--steps", "4", "--lambda-nce", "1", "--seed", "5"])
    assert_one_line_error(capsys, code, str(run / "options.json"), "--seed 0", "--seed 5")
    assert {name: (run / name).read_bytes() for name in record} == record
    # The default given by name is the same window: not refused for that
    # (refused for the step below instead, named with its option).
    assert run_cli(main, [*common, "--steps", "1", "--lambda-nce", "1", "--ct-window",
                          "500,3000"]) == 2
    assert "the checkpoint is at step 2, past --steps 1" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in record} == record
    # Control: a resume the checkpoint fits records its options (with no
    # step left to train: the record is written before training, and a
    # step costs a trace of the step).
    assert run_cli(main, [*common, "--steps", "2", "--resume", "--lambda-nce", "1",
                          "--log-every", "7"]) == 0
    assert b'"log_every": 7' in (run / "options.json").read_bytes()


def test_a_resumed_run_keeps_every_evaluation_and_scalar_at_its_step(phantom_dir, tmp_path):
    # The checkpoint of step 3 was written before that step's evaluation:
    # resumed, the history lost step 3's score, labelled step 4's as 3 and
    # never evaluated step 6. TensorBoard's scalars started over at step 1
    # after the resume, over the first part's, and the upscaler's stages
    # wrote none.
    import csv

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    run = tmp_path / "run"
    common = ["--preset", "smoke", "--data", phantom_dir, "--sr-gan-steps", "0",
              "--logdir", str(run), "--weights-dir", str(tmp_path / "w"), "--log-every", "1",
              "--checkpoint-every", "3", "--eval-every", "3", "--lr-decay-start", "10"]
    assert run_cli(main, [*common, "--steps", "3", "--sr-steps", "2"]) == 0
    with open(run / "checkpoint_evals.csv", encoding="utf-8") as f:
        first = list(csv.DictReader(f))
    assert run_cli(main, [*common, "--steps", "6", "--sr-steps", "3", "--resume"]) == 0
    with open(run / "checkpoint_evals.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [row["step"] for row in rows] == ["3", "6"]
    assert rows[0] == first[0]  # step 3's own score, kept
    # Where each stage was resumed, for whoever would reproduce the run:
    # the data are reseeded at that step. The upscaler, done at its 2
    # steps, was resumed at 2 too, to go on to 3.
    from vaecyclegan.config import ModelConfig

    training = ModelConfig.load(str(tmp_path / "w")).training
    assert training["resumed_at"] == {"translation": [3], "upscaler": [2]}
    board = run / "tensorboard"
    assert _scalar_steps(board / "train", "batch_g_loss") == [1, 2, 3, 4, 5, 6]
    assert _scalar_steps(board / "upscaler", "batch_loss") == [1, 2, 3]


def _scalar_steps(folder, tag):
    """The steps at which the event files under `folder` hold `tag`."""
    import glob

    import tensorflow as tf

    steps = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)


@pytest.mark.parametrize("images,batch,said", [(1, 4, "1 step"), (4, 4, "1 step"),
                                               (5, 4, "2 steps"), (80, 4, "20 steps")])
def test_the_epoch_is_counted_in_whole_steps(images, batch, said):
    # One image a domain was "an epoch is 0 steps".
    from vaecyclegan.workflows.train import _steps_per_epoch

    assert _steps_per_epoch(images, batch) == said


def test_test_folders_without_pairs_turn_the_periodic_evaluation_off(phantom_dir, tmp_path,
                                                                     caplog):
    # Each periodic evaluation said "Skipping ... evaluation" again.
    import logging
    import shutil

    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    data = tmp_path / "data"
    shutil.copytree(phantom_dir, data)
    for path in (data / "Dataset" / "images" / "testB").iterdir():
        path.rename(path.with_name("other_" + path.name))
    with caplog.at_level(logging.INFO, logger="vaecyclegan"):
        assert run_cli(main, ["--preset", "smoke", "--stage", "translate", "--steps", "3",
                              "--eval-every", "1", "--data", str(data),
                              "--logdir", str(tmp_path / "run"),
                              "--weights-dir", str(tmp_path / "w")]) == 0
    assert caplog.text.count("No test pairs to score: no file name is in both") == 1
    # The closing evaluation's, once a direction.
    assert caplog.text.count("Skipping mri2ct evaluation") == 1
    assert not (tmp_path / "w" / "best").exists()


def test_bad_vgg_weights_stop_the_run_before_anything_is_written(tmp_path, capsys):
    # They were read when the adversarial stage began, after the translation
    # and L1 stages had trained and written their files.
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.train import main

    (tmp_path / "bogus.h5").write_bytes(b"not hdf5")
    for vgg, problem in (("bogus.h5", "not VGG19 'notop' weights ("),
                         ("absent.h5", "VGG19 weights file not found")):
        assert run_cli(main, ["--preset", "smoke", "--vgg-weights", str(tmp_path / vgg),
                              "--logdir", str(tmp_path / "run"), "--weights-dir",
                              str(tmp_path / "w"), "--data-root", str(tmp_path / "data")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / vgg}: {problem}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.h5"]


def test_off_tensorflow_training_keeps_tensorflow_off_the_gpus(monkeypatch):
    # On JAX or PyTorch, TensorFlow only feeds tf.data batches; left alone
    # it reserves nearly all of a GPU's memory at its first operation.
    import sys
    import types

    import keras

    from vaecyclegan.workflows import train

    hidden = []
    fake = types.SimpleNamespace(config=types.SimpleNamespace(
        set_visible_devices=lambda devices, kind: hidden.append((devices, kind))))
    monkeypatch.setitem(sys.modules, "tensorflow", fake)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "")  # restored afterwards
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH")
    train._check_backend(types.SimpleNamespace(stage="translate"))
    assert hidden == [] and os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    train._check_backend(types.SimpleNamespace(stage="all"))
    assert hidden == [([], "GPU")]


def test_batches_that_do_not_split_over_jax_devices_are_refused_before_the_run(
        tmp_path, monkeypatch):
    # They were refused at a stage's first step: the upscaler's comes after
    # the whole translation stage, whose weights never reached weights/.
    import types

    from vaecyclegan.errors import InputError
    from vaecyclegan.workflows import train

    monkeypatch.setattr(train, "on_jax", lambda: True)
    for devices, stage, batch, option in ((3, "all", 2, "--batch-size"),
                                          (3, "sr", 3, "--strategy"),
                                          (4, "all", 2, None)):
        strategy = types.SimpleNamespace(num_replicas_in_sync=devices)
        monkeypatch.setattr(train, "make_strategy", lambda name, strategy=strategy: strategy)
        monkeypatch.setattr(train, "is_chief", lambda strategy: True)
        settings = train_options(stage=stage, batch_size=batch, logdir=str(tmp_path / "run"),
                                 weights_dir=str(tmp_path / "w"), data_root=str(tmp_path / "d"))
        if option is None:  # 4 images a step, the smoke preset's 2 upscaler images: not split
            with pytest.raises(InputError, match="upscaler step's .* 2 images do not split "
                                                 "over 4 devices"):
                train.run_training(settings)
        else:
            with pytest.raises(InputError, match=f"^{option}: .* do not split over 3 devices"):
                train.run_training(settings)
        assert not os.path.exists(tmp_path / "run")


def test_the_record_beside_a_converted_upscaler_keeps_its_source_and_no_empty_keys():
    # --stage translate put the sr_* keys a conversion had removed back as
    # null; --stage sr kept the converted file's name for weights it replaced.
    import types

    from tests.harness import train_options
    from vaecyclegan.workflows.train import UPSCALER_RECORD_KEYS, _training_record, resolve_preset

    converted = {"seed": 1, "rrdbnet_source": "ESRGAN.pth",
                 "upscaler_run": {"converted_from": "ESRGAN.pth"}}
    for stage in ("translate", "sr"):
        settings = train_options(stage=stage)
        run = types.SimpleNamespace(settings=settings, preset=resolve_preset(settings),
                                    data_dir="data", kept_record=dict(converted),
                                    started="2026-11-28T07:00:00", resumed_at={})
        record = _training_record(run)
        if stage == "translate":
            assert record["rrdbnet_source"] == "ESRGAN.pth"
            assert not set(UPSCALER_RECORD_KEYS) & set(record)
            assert record["upscaler_run"] == {"converted_from": "ESRGAN.pth"}
        else:
            assert "rrdbnet_source" not in record and record["seed"] == 1
            assert record["upscaler_run"]["seed"] == settings.seed
