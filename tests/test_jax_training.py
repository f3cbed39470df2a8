"""`KERAS_BACKEND=jax python train.py`: the smoke preset's translation stage
trains on JAX in a process where TensorFlow cannot be imported, with
finite losses; a second run resumes from its checkpoint (the checkpoint
restores every variable exactly); the weight files it writes load on
TensorFlow and compute what JAX computes with them, to 1e-5."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.harness import REPO
from tests.test_backends import no_tensorflow_path

pytestmark = pytest.mark.slow  # about 70 s on two cores: three processes, each compiling

NETWORKS = ("g_target", "g_source", "d_source", "d_target")
ATOL, RTOL = 1e-5, 1e-5


def _inputs():
    return np.random.default_rng(5).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")


def outputs_and_fresh_networks(weights_dirs):
    """The outputs of the networks of each folder of `weights_dirs`
    (`{label: folder}`) on `_inputs()`, as `{"label:name/index": array}`,
    and the four networks built afresh from the first folder's config."""
    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import build_network, load_network, run_network

    outputs = {}
    for label, folder in weights_dirs.items():
        for name in NETWORKS:
            result = run_network(load_network(folder, name), _inputs())
            for index, array in enumerate(result if isinstance(result, list) else [result]):
                outputs[f"{label}:{name}/{index}"] = np.asarray(array)
    config = ModelConfig.load(next(iter(weights_dirs.values())))
    return outputs, {name: build_network(config, name) for name in NETWORKS}


def jax_child(weights_dirs, out, checkpoint):
    """In a JAX process: the outputs of the networks of each folder of
    `weights_dirs` (`{label: folder}`) on `_inputs()`, and the checkpoint
    `checkpoint` loaded into a fresh `JaxVAECycleGAN` and read back from
    its state (`roundtrip`: the largest difference, and the pools' counts)."""
    import keras

    from vaecyclegan.training.checkpoint import load_checkpoint
    from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
    from vaecyclegan.translation.jax_trainer import JaxVAECycleGAN

    outputs, networks = outputs_and_fresh_networks(weights_dirs)
    # As the stage builds them: AdamW on a schedule (a constant rate would
    # add a variable).
    schedule = ConstantThenLinearDecay(1e-4, 2, 4)
    trainer = JaxVAECycleGAN(networks["g_target"], networks["g_source"], networks["d_source"],
                             networks["d_target"], keras.optimizers.AdamW(schedule),
                             keras.optimizers.AdamW(schedule), pool_size=50, image_size=32,
                             lambda_nce=1.0)
    step, _ = load_checkpoint(checkpoint, trainer)
    trainer.state = trainer.initial_state()  # what fit starts from
    trainer.sync_to_variables()
    with np.load(checkpoint) as data:
        saved = [data[f"v{i:05d}"] for i in range(len(trainer.checkpoint_variables()))]
    restored = [np.asarray(v.value) for v in trainer.checkpoint_variables()]
    report = {"step": step,
              "roundtrip": max(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
                               for a, b in zip(saved, restored)),
              "pool_counts": [int(trainer.state[p][1]) for p in ("pool_ct", "pool_mri")],
              "tensorflow_imported": "tensorflow" in sys.modules}
    np.savez(os.path.join(out, "outputs.npz"), **outputs)
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)


def _run(arguments, env, cwd):
    result = subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr + result.stdout


def _losses(logdir):
    with open(os.path.join(logdir, "losses.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """Two steps on JAX, then two more resumed; the weights after each."""
    root = tmp_path_factory.mktemp("jax_train")
    # One compilation cache for the three processes: the resumed run and
    # the child reuse the first run's compiled steps.
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "JAX_COMPILATION_CACHE_DIR": str(root / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "PYTHONPATH": os.pathsep.join([no_tensorflow_path(root), REPO])}
    return train_resume_and_read(root, env, "tests.test_jax_training", "jax_child")


def smoke_arguments(root, stage):
    """`train.py` on the smoke preset into `root`, float32, no periodic
    evaluation or sample grids."""
    return [os.path.join(REPO, "train.py"), "--preset", "smoke", "--stage", stage,
            "--logdir", str(root / "run"), "--weights-dir", str(root / "weights"),
            "--data-root", str(root / "data"), "--precision", "float32",
            "--eval-every", "0", "--log-every", "0"]


def train_resume_and_read(root, env, child_module, child, first_options=()):
    """Two translation steps of the smoke preset in the environment `env`
    (its backend), then two more resumed; then `child_module.child` reads
    both runs' weights and the step-2 checkpoint in the same environment.
    PatchNCE is on: its heads are trained, checkpointed and resumed, and at
    32 px it draws 256 of the stem's 1,024 locations."""
    common = [*smoke_arguments(root, "translate"), "--lambda-nce", "1"]
    first = _run([*common, "--steps", "2", *first_options], env, root)
    first_rows = _losses(root / "run")
    shutil.copytree(root / "weights", root / "weights_step2")
    shutil.copy(root / "run" / "checkpoint" / "translation.npz", root / "step2.npz")
    second = _run([*common, "--steps", "4", "--resume"], env, root)
    script = (f"import json, sys\nfrom {child_module} import {child}\n"
              f"{child}(*json.loads(sys.argv[1]))\n")
    folders = {"final": str(root / "weights"), "step2": str(root / "weights_step2")}
    _run(["-c", script, json.dumps([folders, str(root), str(root / "step2.npz")])], env, REPO)
    with np.load(root / "outputs.npz") as data:
        outputs = dict(data)
    with open(root / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    return {"root": root, "first": first, "second": second, "first_rows": first_rows,
            "rows": _losses(root / "run"), "outputs": outputs, "report": report}


def check_the_first_run(run, backend):
    """The first run trained on `backend` without TensorFlow: two finite
    rows of losses in the TensorFlow trainer's columns and order, and a
    `config.json` that names the backend; returns that config's training
    provenance."""
    assert f"Keras backend: {backend}" in run["first"]
    assert not run["report"]["tensorflow_imported"]
    rows = run["first_rows"]
    assert [row["step"] for row in rows] == ["1", "2"]
    assert list(rows[0])[2:] == ["g_loss", "d_loss", "adversarial", "cycle", "identity", "kl",
                                 "patch_nce"]
    for row in rows:
        assert all(math.isfinite(float(v)) for v in row.values())
    with open(run["root"] / "weights" / "config.json", encoding="utf-8") as f:
        training = json.load(f)["training"]
    assert training["versions"]["keras_backend"] == backend
    assert "tensorflow" not in training["versions"]
    return training


def test_the_smoke_preset_trains_on_jax_without_tensorflow(jax_run):
    training = check_the_first_run(jax_run, "jax")
    assert "keras.distribution.DataParallel" in jax_run["first"]
    assert training["lambda_nce"] == 1.0  # the weights say how they were trained


def check_the_resumed_run(run):
    """The second run resumed at step 2 and continued the log; its
    checkpoint restored every variable (weights, PatchNCE heads, AdamW
    moments and step, pools, sampler seeds) bit for bit, with two steps'
    images in the pools."""
    assert "Resuming from step 2 of 4" in run["second"]
    rows = run["rows"]
    assert [row["step"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[:2] == run["first_rows"]
    assert all(math.isfinite(float(row["g_loss"])) for row in rows)
    report = run["report"]
    assert report["step"] == 2 and report["roundtrip"] == 0.0
    assert report["pool_counts"] == [8, 8]


def check_tensorflow_computes_the_same(run):
    """TensorFlow loads the run's weight files and computes what the run's
    backend computed with them, to 1e-5."""
    from vaecyclegan.networks import load_network

    outputs = run["outputs"]
    compared = 0
    for name in NETWORKS:
        model = load_network(str(run["root"] / "weights"), name)
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


def test_a_resumed_run_continues_from_the_checkpoint(jax_run):
    check_the_resumed_run(jax_run)


def test_tensorflow_loads_the_jax_weights_and_computes_the_same(jax_run):
    check_tensorflow_computes_the_same(jax_run)


def test_tensorflow_resumes_the_jax_checkpoint_with_every_network_in_its_place(jax_run):
    # The JAX trainer wrote d_target's variables before d_source's, the
    # TensorFlow trainer reads d_source's first: the shapes agree, so a run
    # resumed on the other backend swapped its discriminators in silence.
    import keras

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import build_network, load_network
    from vaecyclegan.training.checkpoint import load_checkpoint
    from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
    from vaecyclegan.translation.trainer import VAECycleGAN

    step2 = str(jax_run["root"] / "weights_step2")
    config = ModelConfig.load(step2)
    networks = {name: build_network(config, name) for name in NETWORKS}
    schedule = ConstantThenLinearDecay(1e-4, 2, 4)  # as jax_child: AdamW on a schedule
    model = VAECycleGAN(*(networks[name] for name in NETWORKS), pool_size=50, image_size=32,
                        lambda_nce=1.0)
    model.compile(g_optimizer=keras.optimizers.AdamW(schedule),
                  d_optimizer=keras.optimizers.AdamW(schedule))
    step, _ = load_checkpoint(str(jax_run["root"] / "step2.npz"), model)
    assert step == 2
    for name in NETWORKS:
        saved = load_network(step2, name)
        for restored, written in zip(networks[name].trainable_weights, saved.trainable_weights):
            np.testing.assert_array_equal(np.asarray(restored), np.asarray(written), name)
