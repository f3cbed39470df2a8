"""tf.distribute: MirroredStrategy equals one device; two workers on
127.0.0.1 train together and only the chief writes; mixed precision."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.harness import tiny_model_config
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
from vaecyclegan.training.distribution import make_strategy, resolve_precision, set_precision
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.translation.stage import build_trainer, train_translation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_mirrored_step_over_two_devices_equals_one_device():
    # The translation model, the upscaler's L1 stage and its adversarial stage.
    script = os.path.join(REPO, "tests", "training", "mirrored_step.py")
    result = subprocess.run([sys.executable, script],
                            env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert lines["replicas"] == "2"
    # SGD, lr 0.1: scaling each replica's loss wrongly moves weights by ~0.1
    # (measured: 0.12 for the translation model, 0.116 for the adversarial
    # upscaler stage); summing in another order, by up to 5e-6.
    for model in ("translation", "upscaler_l1", "upscaler_gan"):
        assert float(lines[model].split()[1]) < 1e-4, (model, lines[model])


def _free_ports(count):
    """`count` distinct free ports: bound all at once (one at a time, the
    system may hand the port just released out again)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    # Both stages: translation, then the upscaler's L1 and adversarial ones.
    command = [sys.executable, os.path.join(REPO, "train.py"), "--preset", "smoke", "--stage",
               "all", "--steps", "3", "--strategy", "multiworker", "--precision",
               "float32", "--eval-every", "0", "--log-every", "0",
               "--weights-dir", str(tmp_path / "weights"), "--logdir", str(tmp_path / "run"),
               "--data-root", str(tmp_path / "data")]
    workers = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": REPO, "TF_CONFIG": json.dumps(config)}
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    chief, other = outputs[0][0], outputs[1][0]
    assert "MultiWorkerMirroredStrategy (2 replica(s))" in chief
    assert "non-chief worker" in other and "non-chief worker" not in chief
    assert f"Wrote {tmp_path / 'weights' / 'g_target_weights.h5'}" in chief
    assert str(tmp_path / "weights") not in other.split("Wrote ")[1].splitlines()[0]
    assert sorted(os.listdir(tmp_path / "weights")) == [
        "config.json", "d_source_weights.h5", "d_target_weights.h5", "g_source_weights.h5",
        "g_target_weights.h5", "rrdbnet_weights.h5"]
    assert sorted(os.listdir(tmp_path / "run" / "checkpoint")) == [
        "translation.npz", "upscaler.npz", "upscaler_gan.npz"]


@pytest.fixture
def restore_policy():
    yield
    set_precision("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_smoke_training_under_mixed_precision(policy, tmp_path, restore_policy):
    set_precision(policy)
    keras.utils.set_random_seed(0)
    config = tiny_model_config()
    networks = {name: build_network(config, name) for name in TRANSLATION_NETWORKS}
    assert networks["g_target"].get_layer("stem_conv").compute_dtype == policy.split("_")[1]
    settings = StageSettings(make_strategy("default"), policy)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    progress, _ = train_translation(networks, PRESETS["smoke"], images, images, str(tmp_path), 0,
                                    settings)
    assert progress.step == PRESETS["smoke"].steps
    assert all(np.isfinite(v) for v in progress.last_logs.values())
    batch = images[:2].repeat(3, axis=-1)
    assert networks["g_target"](batch).dtype == "float32"
    assert all(o.dtype == "float32" for o in networks["d_target"](batch))
    model = build_trainer(networks, PRESETS["smoke"], settings)
    wrapped = isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (policy == "mixed_float16")
    assert model.g_optimizer is not model.d_optimizer


def test_auto_precision_follows_the_hardware(monkeypatch):
    import vaecyclegan.training.distribution as distribution

    monkeypatch.setattr(distribution, "cpu_has_bfloat16", lambda: True)
    assert resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(distribution, "cpu_has_bfloat16", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("mixed_float16") == "mixed_float16"


def test_auto_precision_on_gpus_that_only_emulate_bfloat16_is_float16(monkeypatch):
    # torch's is_bf16_supported() says yes on every CUDA GPU unless told
    # not to count emulation; a V100 (7.0) got mixed_bfloat16.
    import types

    import torch

    import vaecyclegan.training.distribution as distribution

    monkeypatch.setattr(distribution, "on_jax", lambda: False)
    monkeypatch.setattr(distribution, "on_torch", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for native, policy in ((False, "mixed_float16"), (True, "mixed_bfloat16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True, native=native:
                            native or including_emulation)
        assert resolve_precision("auto") == policy
    import jax

    monkeypatch.setattr(distribution, "on_jax", lambda: True)
    for capability, policy in (("7.0", "mixed_float16"), ("9.0", "mixed_bfloat16"),
                               (None, "mixed_bfloat16"), ("gfx90a", "mixed_bfloat16")):
        device = types.SimpleNamespace(platform="gpu", compute_capability=capability)
        monkeypatch.setattr(jax, "devices", lambda device=device: [device])
        assert resolve_precision("auto") == policy


def test_jax_strategies_auto_takes_every_device_default_the_first():
    # Two host devices on JAX: `auto` splits batches over both, `default`
    # trains on one (it raised TypeError before).
    script = ("from vaecyclegan.training.distribution import make_strategy\n"
              "for name in ('auto', 'default'):\n"
              "    strategy = make_strategy(name)\n"
              "    print(name, strategy.num_replicas_in_sync, strategy.devices[0])\n")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "jax",
             "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()[-2:]
    assert [line.split()[:2] for line in lines] == [["auto", "2"], ["default", "1"]]
    assert lines[0].split()[2] == lines[1].split()[2]  # the first device
