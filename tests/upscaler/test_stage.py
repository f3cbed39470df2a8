"""The upscaler stage: L1 then adversarial training, each resumable, under
the run's precision; SIGTERM during it saves a checkpoint."""

import copy
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.training.checkpoint import checkpoint_path
from vaecyclegan.training.distribution import make_strategy, set_precision
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet
from vaecyclegan.upscaler.stage import train_upscaler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4)


def _preset(sr_steps=2, sr_gan_steps=2):
    preset = copy.deepcopy(PRESETS["smoke"])
    preset.sr_steps, preset.sr_gan_steps = sr_steps, sr_gan_steps
    return preset


def _make_dataset(preset):
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    return lambda offset: make_sr_dataset(images, preset.sr_patch, 4, preset.sr_batch_size,
                                          3, offset)


def _train(preset, logdir, seed=0, **settings):
    keras.utils.set_random_seed(seed)
    rrdbnet = build_rrdbnet(TINY)
    settings = StageSettings(make_strategy("default"), **settings)
    progress = train_upscaler(rrdbnet, preset, _make_dataset(preset), str(logdir), settings)
    return rrdbnet, progress


def _csv_steps(path):
    with open(path, encoding="utf-8") as f:
        return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]


def test_both_stages_resume_from_their_checkpoints(tmp_path):
    trained, _ = _train(_preset(), tmp_path, checkpoint_every=1)
    assert os.path.isfile(checkpoint_path(str(tmp_path), "upscaler"))
    assert os.path.isfile(checkpoint_path(str(tmp_path), "upscaler_gan"))

    # The same steps again: nothing left to train, the weights are the
    # checkpoint's (other initial weights would show).
    again, (progress, gan_progress) = _train(_preset(), tmp_path, seed=1)
    assert progress.step == 2 and gan_progress.step == 2
    assert progress.summary("loss") == "2 steps, all done before this run (its checkpoint)"
    for a, b in zip(trained.variables, again.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # Two more adversarial steps continue the log and the optimisers.
    _, (_, gan_progress) = _train(_preset(sr_gan_steps=4), tmp_path, seed=1)
    assert gan_progress.step == 4
    assert _csv_steps(tmp_path / "sr_gan_losses.csv") == [1, 2, 3, 4]
    assert _csv_steps(tmp_path / "sr_losses.csv") == [1, 2]


def test_more_l1_steps_after_the_adversarial_stage_train_it_again_from_them(tmp_path, caplog):
    # The finished adversarial stage's checkpoint was resumed, putting back
    # the RRDB-Net of the earlier L1 steps: the new ones were dropped.
    _train(_preset(), tmp_path)
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        _, (progress, gan_progress) = _train(_preset(sr_steps=4), tmp_path, seed=1)
    assert progress.initial_step == 2 and progress.step == 4
    assert gan_progress.initial_step == 0 and gan_progress.step == 2
    assert "the L1 stage went on from step 2 to 4: the adversarial stage starts again" \
        in caplog.text
    assert _csv_steps(tmp_path / "sr_gan_losses.csv") == [1, 2]
    # Control: the same steps again resume both stages as they are.
    caplog.clear()
    _, (progress, gan_progress) = _train(_preset(sr_steps=4), tmp_path, seed=2)
    assert progress.initial_step == 4 and gan_progress.initial_step == 2
    assert "starts again" not in caplog.text


def test_resume_without_an_upscaler_checkpoint_is_refused(tmp_path):
    from vaecyclegan.errors import InputError

    with pytest.raises(InputError, match="no checkpoint to resume from"):
        _train(_preset(), tmp_path, resume=True)


def test_no_resume_starts_over(tmp_path):
    _train(_preset(), tmp_path, checkpoint_every=1)
    _, (progress, _) = _train(_preset(), tmp_path, resume=False)
    assert progress.initial_step == 0 and _csv_steps(tmp_path / "sr_losses.csv") == [1, 2]


@pytest.fixture
def float16_policy():
    set_precision("mixed_float16")
    yield
    set_precision("float32")


def test_under_float16_each_optimiser_scales_its_own_loss(tmp_path, float16_policy):
    keras.utils.set_random_seed(0)
    rrdbnet = build_rrdbnet(TINY)
    settings = StageSettings(make_strategy("default"), "mixed_float16")
    preset = _preset()
    progress, gan_progress = train_upscaler(rrdbnet, preset, _make_dataset(preset),
                                            str(tmp_path), settings)
    assert all(np.isfinite(v) for v in progress.last_logs.values())
    assert all(np.isfinite(v) for v in gan_progress.last_logs.values())
    assert isinstance(progress.model.optimizer, keras.optimizers.LossScaleOptimizer)
    gan = gan_progress.model
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.g_optimizer is not gan.d_optimizer


def _sr_command(tmp_path, sr_steps):
    return [sys.executable, os.path.join(REPO, "train.py"), "--preset", "smoke", "--stage", "sr",
            "--sr-steps", str(sr_steps), "--sr-gan-steps", "0", "--checkpoint-every", "3",
            "--precision", "float32", "--logdir", str(tmp_path / "run"),
            "--weights-dir", str(tmp_path / "weights"), "--data-root", str(tmp_path / "data")]


@pytest.mark.slow
def test_sigterm_in_the_upscaler_stage_saves_a_checkpoint_and_resumes(tmp_path):
    from tests.training.test_resume import _checkpoint_step, _wait_for_checkpoint

    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(_sr_command(tmp_path, 100_000), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(process, tmp_path, "upscaler")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "upscaler.npz: SIGTERM at step" in last, last
    stopped_at = int(last.split("SIGTERM at step ")[1].split(":")[0])
    assert _checkpoint_step(tmp_path, "upscaler") == stopped_at
    assert not (tmp_path / "weights" / "rrdbnet_weights.h5").exists()

    total = stopped_at + 3
    result = subprocess.run(_sr_command(tmp_path, total), env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Resuming from step {stopped_at} of {total}" in result.stdout
    assert _csv_steps(tmp_path / "run" / "sr_losses.csv") == list(range(1, total + 1))
    assert (tmp_path / "weights" / "rrdbnet_weights.h5").is_file()
