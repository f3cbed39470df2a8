"""CycleGAN's image pool: fills, then shows older images half the time."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.harness import REPO
from vaecyclegan.translation.image_pool import ImagePool


def _batch(value):
    return np.stack([np.full((4, 4, 1), value, np.float32),
                     np.full((4, 4, 1), value + 0.5, np.float32)])


# Traced by TensorFlow (`fit` on TensorFlow) and as Python control flow (the
# eager step of PyTorch, run here on TensorFlow's eager tensors).
QUERIES = {"traced": lambda pool: tf.function(pool.query),
           "eager": lambda pool: pool._eager_query}


@pytest.mark.parametrize("mode", sorted(QUERIES))
def test_the_pool_fills_then_swaps_about_half_of_the_images(mode):
    pool = ImagePool(3, (4, 4, 1), seed=0)
    query = QUERIES[mode](pool)
    first = query(_batch(0)).numpy()
    np.testing.assert_array_equal(first, _batch(0))  # not full: shown as they are
    assert int(pool.count.value) == 2
    shown_old = 0
    for step in range(1, 200):
        new = _batch(step)
        out = query(new).numpy()
        for image, fresh in zip(out, new):
            if not np.array_equal(image, fresh):
                shown_old += 1
                assert image[0, 0, 0] < fresh[0, 0, 0]  # an earlier translation
    assert int(pool.count.value) == 3
    # After the first fill (one image), each image has a 1/2 chance.
    assert 0.4 < shown_old / (2 * 199 - 1) < 0.6
    values = pool.images.numpy()[:, 0, 0, 0]
    assert len(set(values.tolist())) == 3


def _values_before_and_after(pool, query, first):
    """(the pool's values + a batch's, what was shown + the pool's values
    after), each sorted, for one 8-image query of a full 2-image pool."""
    import keras

    before = keras.ops.convert_to_numpy(pool.images.value)[:, 0, 0, 0].tolist()
    batch = np.stack([np.full((4, 4, 1), first + index, np.float32) for index in range(8)])
    shown = keras.ops.convert_to_numpy(query(batch))[:, 0, 0, 0].tolist()
    after = keras.ops.convert_to_numpy(pool.images.value)[:, 0, 0, 0].tolist()
    return sorted(before + batch[:, 0, 0, 0].tolist()), sorted(shown + after)


@pytest.mark.parametrize("mode", sorted(QUERIES))
def test_a_full_pool_loses_and_repeats_no_image(mode):
    # Eight images into two slots: several swaps hit one slot in a batch,
    # and each must show what the slot holds by then. Every image is either
    # shown or kept, never both, never neither.
    pool = ImagePool(2, (4, 4, 1), seed=1)
    query = QUERIES[mode](pool)
    query(_batch(-10))  # fills it
    for first in range(0, 80, 8):
        before, after = _values_before_and_after(pool, query, first)
        assert before == after


def test_an_empty_pool_is_the_identity():
    pool = ImagePool(0, (4, 4, 1))
    batch = _batch(3)
    assert pool.query(batch) is batch


def torch_pool_child():
    """On PyTorch (run in a process of its own): the fraction of 200
    single-image queries to a full pool of 3 that showed an older image."""
    import keras

    pool = ImagePool(3, (4, 4, 1), seed=0)
    for value in range(3):
        pool.query(_batch(value)[:1])
    older = 0
    for value in range(3, 203):
        shown = keras.ops.convert_to_numpy(pool.query(_batch(value)[:1]))
        older += int(shown[0, 0, 0, 0] < value)
    kept = all(before == after for before, after in (
        _values_before_and_after(pool, pool.query, first) for first in range(300, 380, 8)))
    print(kept, older / 200)


def test_the_pool_shows_older_images_on_pytorch(tmp_path):
    # On PyTorch the pool's variable is written in place: the older image
    # shown was a view of it, and read the new one once the pool was
    # written (no older image was ever shown for one-image batches).
    script = ("from tests.translation.test_image_pool import torch_pool_child\n"
              "torch_pool_child()\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": REPO,
                                 "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    kept, older = result.stdout.strip().splitlines()[-1].split()
    assert kept == "True"  # 8-image batches: every image shown or kept
    assert 0.35 < float(older) < 0.65
