"""The MIND structure loss ignores intensities and sees edges move."""

import numpy as np
import pytest

from vaecyclegan.translation.structure_loss import mind_descriptor, mind_loss


def _head_like(shift=0, noise=0.01, seed=0):
    """Scalp, skull and brain bands with a little noise, as (2, 32, 32, 3)."""
    image = np.full((2, 32, 32, 3), -1.0, np.float32)
    image[:, :, 6 + shift:10 + shift] = 0.8   # bright scalp
    image[:, :, 10 + shift:13 + shift] = -0.9  # dark skull (T1)
    image[:, :, 13 + shift:28] = 0.1           # grey brain
    rng = np.random.default_rng(seed)
    return image + rng.normal(0, noise, image.shape).astype(np.float32)


@pytest.mark.parametrize("remap", [lambda x: -x, lambda x: 0.5 * x + 0.3, lambda x: -2 * x - 1])
def test_an_affine_remapping_keeps_the_structure(remap):
    image = _head_like()
    assert float(mind_loss(image, remap(image))) < 1e-4
    assert float(mind_loss(image, image)) == 0.0


def test_a_moved_edge_is_seen():
    image = _head_like()
    moved = _head_like(shift=2)
    assert float(mind_loss(image, moved)) > 0.02
    # Control: the same structure drawn with other noise is far closer.
    assert float(mind_loss(image, _head_like(seed=1))) < float(mind_loss(image, moved)) / 5


def test_a_vanished_edge_is_seen_whatever_the_intensities():
    image = _head_like()
    blurred = image.copy()
    blurred[:, :, 10:13] = 0.8  # the skull drawn as scalp: one edge fewer
    assert float(mind_loss(image, -blurred)) > 0.01


def test_the_descriptor_lies_in_zero_one_with_a_one_per_pixel():
    descriptor = np.asarray(mind_descriptor(_head_like()))
    assert descriptor.shape == (2, 32, 32, 4)
    assert descriptor.min() > 0.0 and descriptor.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(descriptor.max(axis=-1), 1.0, atol=1e-6)
    # A blank image is defined (no division by zero) and has no structure.
    assert np.isfinite(np.asarray(mind_descriptor(np.zeros((1, 8, 8, 3), "float32")))).all()
