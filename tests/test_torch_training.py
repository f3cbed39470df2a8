"""`KERAS_BACKEND=torch python train.py`: the smoke preset's translation
stage trains on PyTorch in a process where TensorFlow cannot be imported,
with finite losses; a second run resumes from its checkpoint (restored
exactly); the weight files load on TensorFlow and compute what PyTorch
computes with them, to 1e-5; the upscaler's stages train on PyTorch too
(their batches come from tf.data)."""

import json
import math
import os
import shutil
import sys

import numpy as np
import pytest

from tests.harness import REPO
from tests.test_backends import no_tensorflow_path
from tests.test_jax_training import ATOL, NETWORKS, RTOL, _inputs, _losses, _run

pytestmark = pytest.mark.slow  # about 60 s on two cores: four processes


def torch_child(weights_dirs, out, checkpoint):
    """In a PyTorch process: the outputs of the networks of each folder of
    `weights_dirs` (`{label: folder}`) on `_inputs()`, and the checkpoint
    `checkpoint` loaded into a fresh `VAECycleGAN` and read back
    (`roundtrip`: the largest difference, and the pools' counts)."""
    import keras

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import build_network, load_network, run_network
    from vaecyclegan.training.checkpoint import load_checkpoint
    from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
    from vaecyclegan.translation.trainer import VAECycleGAN

    outputs = {}
    for label, folder in weights_dirs.items():
        for name in NETWORKS:
            result = run_network(load_network(folder, name), _inputs())
            for index, array in enumerate(result if isinstance(result, list) else [result]):
                outputs[f"{label}:{name}/{index}"] = np.asarray(array)
    config = ModelConfig.load(next(iter(weights_dirs.values())))
    networks = {name: build_network(config, name) for name in NETWORKS}
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


def _common(root, stage):
    return [os.path.join(REPO, "train.py"), "--preset", "smoke", "--stage", stage,
            "--logdir", str(root / "run"), "--weights-dir", str(root / "weights"),
            "--data-root", str(root / "data"), "--precision", "float32",
            "--eval-every", "0", "--log-every", "0"]


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """Two steps on PyTorch without TensorFlow, then two more resumed; the
    weights after each."""
    root = tmp_path_factory.mktemp("torch_train")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([no_tensorflow_path(root), REPO])}
    # PatchNCE on: its heads are trained, checkpointed and resumed; sample
    # grids after every step (a plain network call failed on PyTorch there).
    common = [*_common(root, "translate"), "--lambda-nce", "1"]
    first = _run([*common, "--steps", "2", "--log-every", "1"], env, root)
    first_rows = _losses(root / "run")
    shutil.copytree(root / "weights", root / "weights_step2")
    shutil.copy(root / "run" / "checkpoint" / "translation.npz", root / "step2.npz")
    second = _run([*common, "--steps", "4", "--resume"], env, root)
    script = ("import json, sys\nfrom tests.test_torch_training import torch_child\n"
              "torch_child(*json.loads(sys.argv[1]))\n")
    folders = {"final": str(root / "weights"), "step2": str(root / "weights_step2")}
    _run(["-c", script, json.dumps([folders, str(root), str(root / "step2.npz")])], env, REPO)
    with np.load(root / "outputs.npz") as data:
        outputs = dict(data)
    with open(root / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    return {"root": root, "first": first, "second": second, "first_rows": first_rows,
            "rows": _losses(root / "run"), "outputs": outputs, "report": report}


def test_the_smoke_preset_trains_on_pytorch_without_tensorflow(torch_run):
    assert "Keras backend: torch" in torch_run["first"]
    assert "one device, cpu (PyTorch)" in torch_run["first"]
    assert not torch_run["report"]["tensorflow_imported"]
    rows = torch_run["first_rows"]
    assert [row["step"] for row in rows] == ["1", "2"]
    # The TensorFlow trainer's columns, in its order.
    assert list(rows[0])[2:] == ["g_loss", "d_loss", "adversarial", "cycle", "identity", "kl",
                                 "patch_nce"]
    for row in rows:
        assert all(math.isfinite(float(v)) for v in row.values())
    with open(torch_run["root"] / "weights" / "config.json", encoding="utf-8") as f:
        training = json.load(f)["training"]
    assert training["versions"]["keras_backend"] == "torch"
    assert "tensorflow" not in training["versions"] and training["versions"]["torch"]
    assert sorted(os.listdir(torch_run["root"] / "run" / "samples")) == [
        "step_000001.png", "step_000002.png"]


def test_a_resumed_run_continues_from_the_checkpoint(torch_run):
    assert "Resuming from step 2 of 4" in torch_run["second"]
    rows = torch_run["rows"]
    assert [row["step"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[:2] == torch_run["first_rows"]
    assert all(math.isfinite(float(row["g_loss"])) for row in rows)
    report = torch_run["report"]
    # Every variable (weights, PatchNCE heads, AdamW moments and step,
    # pools, sampler seeds) comes back bit for bit; the pools hold two
    # steps' images.
    assert report["step"] == 2 and report["roundtrip"] == 0.0
    assert report["pool_counts"] == [8, 8]


def test_tensorflow_loads_the_pytorch_weights_and_computes_the_same(torch_run):
    from vaecyclegan.networks import load_network

    outputs = torch_run["outputs"]
    compared = 0
    for name in NETWORKS:
        model = load_network(str(torch_run["root"] / "weights"), name)
        result = model(_inputs(), training=False)
        for index, array in enumerate(result if isinstance(result, list) else [result]):
            ours = np.asarray(array)
            np.testing.assert_allclose(ours, outputs[f"final:{name}/{index}"], rtol=RTOL,
                                       atol=ATOL, err_msg=name)
            compared += 1
            if name == "g_target":
                # The control: the weights of two steps earlier give other
                # outputs, so the comparison above can fail.
                assert np.abs(ours - outputs[f"step2:{name}/{index}"]).max() > 100 * ATOL
    assert compared == 2 + 2 * 4


def test_the_upscaler_stages_train_on_pytorch(tmp_path):
    # Both stages (L1, then adversarial) on PyTorch; their batches come
    # from tf.data, so TensorFlow is importable here.
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": REPO}
    output = _run(_common(tmp_path, "sr"), env, tmp_path)
    assert "Keras backend: torch" in output
    for name in ("sr_losses.csv", "sr_gan_losses.csv"):
        with open(tmp_path / "run" / name, encoding="utf-8") as f:
            rows = f.read().splitlines()
        assert len(rows) > 1, name
        for row in rows[1:]:
            assert all(math.isfinite(float(v)) for v in row.split(",")), (name, row)
    assert os.path.isfile(tmp_path / "weights" / "rrdbnet_weights.h5")
