"""`infer.py` on Keras' JAX and PyTorch backends writes the images it writes
on TensorFlow, from the weights of the shared smoke training run, in a
process where TensorFlow cannot be imported (a `tensorflow` package on its
path refuses to load)."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.harness import REPO, infer, write_image
from tests.test_backends import no_tensorflow_path
from vaecyclegan.io.image_format import read_grey


def _inputs(trained_smoke, folder):
    """The phantom's MRI test slices, and odd-sized 8- and 16-bit images."""
    test_b = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    rng = np.random.default_rng(5)
    for name in sorted(os.listdir(test_b))[:2]:
        write_image(folder / name, read_grey(os.path.join(test_b, name)))
    write_image(folder / "odd.png", rng.integers(0, 256, (37, 53), dtype=np.uint8))
    write_image(folder / "deep.png", rng.integers(0, 65536, (40, 33), dtype=np.uint16))
    return sorted(os.listdir(folder))


def _infer_on(backend, arguments, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([no_tensorflow_path(tmp_path), REPO])}
    return subprocess.run([sys.executable, os.path.join(REPO, "infer.py"), *arguments],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                          env=env)


def test_infer_writes_the_same_images_on_jax_and_pytorch_without_tensorflow(
        trained_smoke, tmp_path):
    # Translated, then upscaled in several tiles: all three networks of the
    # path (the generator, its sampler's mean, the RRDB-Net) on each backend.
    names = _inputs(trained_smoke, tmp_path / "in")
    arguments = ["--direction", "mri2ct", "--input", str(tmp_path / "in"),
                 "--weights-dir", trained_smoke.weights_dir,
                 "--upscale", "4", "--tile", "32", "--tile-pad", "8"]
    assert infer(*arguments, "--output", str(tmp_path / "tensorflow")) == 0
    for backend in ("jax", "torch"):
        started = time.perf_counter()
        result = _infer_on(backend, [*arguments, "--output", str(tmp_path / backend)], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        print(f"{backend}: {time.perf_counter() - started:.1f} s")
        assert f"Keras backend: {backend}" in result.stdout.splitlines()
        assert sorted(os.listdir(tmp_path / backend)) == names
        for name in names:
            ours = read_grey(str(tmp_path / backend / name))
            reference = read_grey(str(tmp_path / "tensorflow" / name))
            assert ours.shape == reference.shape and ours.dtype == reference.dtype, name
            # One grey level of the image's own bit depth.
            difference = np.abs(ours.astype(np.int64) - reference.astype(np.int64)).max()
            assert difference <= 1, (backend, name, difference)


def test_the_tensorflow_stub_blocks_tensorflow(tmp_path):
    # Control: the stub on the path makes `import tensorflow` fail, so the
    # runs above could not have used it; and TensorFlow's backend stops at once.
    env = {**os.environ, "PYTHONPATH": no_tensorflow_path(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode != 0 and "hidden from this process" in result.stderr
    result = _infer_on("tensorflow", ["--direction", "mri2ct", "--input", str(tmp_path),
                                      "--output", str(tmp_path / "out")], tmp_path)
    assert result.returncode != 0 and "hidden from this process" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    # The upscaler's batches come from tf.data.
    (["--stage", "all"], "error: --stage: all trains the upscaler, whose batches come from "
                         "tf.data: TensorFlow cannot be imported; on torch without it use "
                         "--stage translate"),
    (["--stage", "translate", "--strategy", "mirrored"],
     "error: --strategy: mirrored is not available on PyTorch, which trains on one device; "
     "use auto or default"),
])
def test_what_pytorch_cannot_train_is_refused_in_one_line_before_anything_is_written(
        tmp_path, arguments, message):
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([no_tensorflow_path(tmp_path / "stub"), REPO])}
    run = tmp_path / "run"
    run.mkdir()
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), "--preset", "smoke", "--logdir",
         str(run / "log"), "--weights-dir", str(run / "w"), "--data-root",
         str(run / "data"), *arguments], cwd=str(run), capture_output=True, text=True,
        timeout=600, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [message]
    assert os.listdir(run) == []
