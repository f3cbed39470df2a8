"""`KERAS_BACKEND=torch python train.py`: the smoke preset's translation
stage trains on PyTorch in a process where TensorFlow cannot be imported,
with finite losses; a second run resumes from its checkpoint (restored
exactly); the weight files load on TensorFlow and compute what PyTorch
computes with them, to 1e-5; the upscaler's stages train on PyTorch too
(their batches come from tf.data)."""

import json
import math
import os
import sys

import numpy as np
import pytest

from tests.harness import REPO
from tests.test_backends import no_tensorflow_path
from tests.test_jax_training import (
    NETWORKS,
    _run,
    check_tensorflow_computes_the_same,
    check_the_first_run,
    check_the_resumed_run,
    outputs_and_fresh_networks,
    smoke_arguments,
    train_resume_and_read,
)

pytestmark = pytest.mark.slow  # about 60 s on two cores: four processes


def torch_child(weights_dirs, out, checkpoint):
    """In a PyTorch process: the outputs of the networks of each folder of
    `weights_dirs` (`{label: folder}`) on `_inputs()`, and the checkpoint
    `checkpoint` loaded into a fresh `VAECycleGAN` and read back
    (`roundtrip`: the largest difference, and the pools' counts)."""
    import keras

    from vaecyclegan.training.checkpoint import load_checkpoint
    from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
    from vaecyclegan.translation.trainer import VAECycleGAN

    outputs, networks = outputs_and_fresh_networks(weights_dirs)
    schedule = ConstantThenLinearDecay(1e-4, 2, 4)  # as the stage: AdamW on a schedule
    model = VAECycleGAN(*(networks[name] for name in NETWORKS), pool_size=50, image_size=32,
                        lambda_nce=1.0)
    model.compile(g_optimizer=keras.optimizers.AdamW(schedule),
                  d_optimizer=keras.optimizers.AdamW(schedule))
    step, _ = load_checkpoint(checkpoint, model)
    with np.load(checkpoint) as data:
        saved = [data[f"v{i:05d}"] for i in range(len(model.checkpoint_variables()))]
    restored = [keras.ops.convert_to_numpy(v.value) for v in model.checkpoint_variables()]
    report = {"step": step,
              "roundtrip": max(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
                               for a, b in zip(saved, restored)),
              "pool_counts": [int(keras.ops.convert_to_numpy(pool.count.value))
                              for pool in (model.pool_ct, model.pool_mri)],
              "tensorflow_imported": "tensorflow" in sys.modules}
    np.savez(os.path.join(out, "outputs.npz"), **outputs)
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """Two steps on PyTorch without TensorFlow, then two more resumed; the
    weights after each."""
    root = tmp_path_factory.mktemp("torch_train")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([no_tensorflow_path(root), REPO])}
    # Sample grids after every step (a plain network call failed on PyTorch there).
    return train_resume_and_read(root, env, "tests.test_torch_training", "torch_child",
                                 first_options=["--log-every", "1"])


def test_the_smoke_preset_trains_on_pytorch_without_tensorflow(torch_run):
    training = check_the_first_run(torch_run, "torch")
    assert "one device, cpu (PyTorch)" in torch_run["first"]
    assert training["versions"]["torch"]
    assert sorted(os.listdir(torch_run["root"] / "run" / "samples")) == [
        "step_000001.png", "step_000002.png"]


def test_a_resumed_run_continues_from_the_checkpoint(torch_run):
    check_the_resumed_run(torch_run)


def test_tensorflow_loads_the_pytorch_weights_and_computes_the_same(torch_run):
    check_tensorflow_computes_the_same(torch_run)


def test_the_upscaler_stages_train_on_pytorch(tmp_path):
    # Both stages (L1, then adversarial) on PyTorch; their batches come
    # from tf.data, so TensorFlow is importable here.
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": REPO}
    output = _run(smoke_arguments(tmp_path, "sr"), env, tmp_path)
    assert "Keras backend: torch" in output
    for name in ("sr_losses.csv", "sr_gan_losses.csv"):
        with open(tmp_path / "run" / name, encoding="utf-8") as f:
            rows = f.read().splitlines()
        assert len(rows) > 1, name
        for row in rows[1:]:
            assert all(math.isfinite(float(v)) for v in row.split(",")), (name, row)
    assert os.path.isfile(tmp_path / "weights" / "rrdbnet_weights.h5")
