"""Checkpoints, resume after SIGKILL, the SIGTERM checkpoint, and the stop on
a non-finite loss."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.harness import tiny_model_config
from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError, TrainingStopped
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network, load_network
from vaecyclegan.training.checkpoint import load_checkpoint, save_checkpoint
from vaecyclegan.training.distribution import make_strategy
from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.translation.dataset import make_unpaired_dataset
from vaecyclegan.translation.stage import build_trainer, train_translation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _networks(seed):
    keras.utils.set_random_seed(seed)
    config = tiny_model_config()
    return {name: build_network(config, name) for name in TRANSLATION_NETWORKS}


def _settings(**overrides):
    return StageSettings(make_strategy("default"), **overrides)


def test_the_learning_rate_is_constant_then_decays_linearly():
    schedule = ConstantThenLinearDecay(2e-4, decay_start=600, total_steps=1200)
    assert [float(schedule(s)) for s in (0, 600, 900, 1200, 1500)] == pytest.approx(
        [2e-4, 2e-4, 1e-4, 0.0, 0.0])


def test_a_checkpoint_restores_every_variable_and_the_schedule(tmp_path):
    preset = PRESETS["smoke"]
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    trained = _networks(0)
    model = build_trainer(trained, preset, _settings(decay_start=1))
    model.fit(make_unpaired_dataset(images, images, 2, 3, 0), steps_per_epoch=3, epochs=1,
              verbose=0, shuffle=False)
    save_checkpoint(str(tmp_path / "c.npz"), model, 3, {"note": "x"})

    fresh = build_trainer(_networks(1), preset, _settings(decay_start=1))
    step, extra = load_checkpoint(str(tmp_path / "c.npz"), fresh)
    assert step == 3 and extra == {"note": "x"}
    for name in TRANSLATION_NETWORKS:
        for a, b in zip(trained[name].variables, getattr(fresh, name).variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(fresh.g_optimizer.iterations) == 3
    # The image pools too: 3 steps of 2+2 translated images each.
    assert int(fresh.pool_ct.count.value) == int(model.pool_ct.count.value) == 12
    np.testing.assert_array_equal(fresh.pool_mri.images.numpy(), model.pool_mri.images.numpy())
    assert float(fresh.g_optimizer.learning_rate) == pytest.approx(
        float(model.g_optimizer.learning_rate))
    for a, b in zip(model.d_optimizer.variables, fresh.d_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_checkpoint_of_other_networks_is_refused(tmp_path):
    preset = PRESETS["smoke"]
    model = build_trainer(_networks(0), preset, _settings())
    save_checkpoint(str(tmp_path / "c.npz"), model, 1)
    wider = ModelConfig(image_size=32, generator=PRESETS["quick"].generator,
                        discriminator=preset.discriminator)
    other = build_trainer({name: build_network(wider, name) for name in TRANSLATION_NETWORKS},
                          preset, _settings())
    with pytest.raises(InputError, match="use another --logdir"):
        load_checkpoint(str(tmp_path / "c.npz"), other)


@pytest.mark.parametrize("cut", [0, 100, -20])
def test_an_empty_or_truncated_checkpoint_is_one_clear_error(tmp_path, cut):
    # An empty file was an EOFError, a truncated one a BadZipFile.
    model = build_trainer(_networks(0), PRESETS["smoke"], _settings())
    save_checkpoint(str(tmp_path / "c.npz"), model, 1)
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "c.npz").write_bytes(data[:cut])
    with pytest.raises(InputError, match="not a readable training checkpoint"):
        load_checkpoint(str(tmp_path / "c.npz"), model)


def test_a_non_finite_loss_stops_without_writing(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    broken = images.copy()
    broken[:] = np.nan
    with pytest.raises(TrainingStopped, match="became nan at step 1") as stopped:
        train_translation(_networks(0), PRESETS["smoke"], broken, images, str(tmp_path), 0,
                          _settings(checkpoint_every=1))
    assert stopped.value.exit_code == 3
    assert not os.path.exists(tmp_path / "checkpoint")
    # It named the checkpoint that was never written, in a garbled
    # "(no checkpoint was written yet, and so is <weights-dir>/best)".
    assert stopped.value.path == str(tmp_path)
    assert "stopped before this stage's first checkpoint and no weights were written; try " \
        "a lower --lr" in stopped.value.problem


def _train_command(tmp_path, steps):
    return [sys.executable, os.path.join(REPO, "train.py"), "--preset", "smoke", "--stage",
            "translate", "--steps", str(steps), "--checkpoint-every", "3", "--eval-every", "0",
            "--log-every", "0", "--precision", "float32", "--logdir", str(tmp_path / "run"),
            "--weights-dir", str(tmp_path / "weights"), "--data-root", str(tmp_path / "data")]


def _checkpoint_step(tmp_path, stage="translation"):
    path = tmp_path / "run" / "checkpoint" / f"{stage}.npz"
    try:
        with np.load(path) as data:
            return json.loads(bytes(data["meta"]).decode())["step"]
    except (OSError, ValueError, KeyError):
        return None


def _wait_for_checkpoint(process, tmp_path, stage="translation", timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        step = _checkpoint_step(tmp_path, stage)
        if step:
            return step
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(_train_command(tmp_path, 300), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for_checkpoint(process, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _checkpoint_step(tmp_path)
    assert killed_at and killed_at % 3 == 0 and killed_at < 300
    assert not (tmp_path / "weights" / "g_target_weights.h5").exists()

    # Resumed with nothing left to train, the run writes the checkpoint's
    # weights as they are: the weights continue from the checkpoint.
    result = subprocess.run(_train_command(tmp_path, killed_at), env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    weights_dir = str(tmp_path / "weights")
    g_target = load_network(weights_dir, "g_target")
    # The checkpoint starts with g_target's variables; the weight file holds
    # its weights (all but the latent sampler's seed state).
    position = {id(v): i for i, v in enumerate(g_target.variables)}
    at_kill = [np.asarray(w) for w in g_target.weights]
    with np.load(tmp_path / "run" / "checkpoint" / "translation.npz") as data:
        for weight, array in zip(g_target.weights, at_kill):
            np.testing.assert_array_equal(array, data[f"v{position[id(weight)]:05d}"])

    total = killed_at + 6
    result = subprocess.run(_train_command(tmp_path, total), env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    expected_lr = float(ConstantThenLinearDecay(2e-4, total // 2, total)(killed_at))
    assert f"Resuming from step {killed_at} of {total}" in result.stdout
    assert f"learning rate {expected_lr:.3g}" in result.stdout
    assert _checkpoint_step(tmp_path) == total
    with open(tmp_path / "run" / "losses.csv", encoding="utf-8") as f:
        steps = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert steps == list(range(1, total + 1))
    after = load_network(weights_dir, "g_target").weights
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(at_kill, after))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(_train_command(tmp_path, 100_000), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(process, tmp_path)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "SIGTERM at step" in last and "resume" in last
    stopped_at = int(last.split("SIGTERM at step ")[1].split(":")[0])
    assert _checkpoint_step(tmp_path) == stopped_at


class _Variables:
    """The part of a trainer that checkpoints use: its variables."""

    def __init__(self, oldest_format=None):
        self.variables = [keras.Variable(np.zeros((2, 3), np.float32)),
                          keras.Variable(np.zeros(4, np.float32))]
        if oldest_format:
            self.oldest_checkpoint_format = oldest_format

    def checkpoint_variables(self):
        return self.variables


def test_a_trainer_refuses_checkpoints_older_than_it_can_read(tmp_path):
    # Format-1 JAX checkpoints held the discriminators in the other order:
    # their shapes agree, so they were resumed swapped.
    path = str(tmp_path / "translation.npz")
    save_checkpoint(path, _Variables(), 5)
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
    assert meta["format"] == 2
    assert load_checkpoint(path, _Variables(oldest_format=2))[0] == 5
    del meta["format"]  # as written before formats were numbered
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="a checkpoint of format 1, before 2"):
        load_checkpoint(path, _Variables(oldest_format=2))
    # Control: a trainer whose order never changed still reads it.
    assert load_checkpoint(path, _Variables())[0] == 5
