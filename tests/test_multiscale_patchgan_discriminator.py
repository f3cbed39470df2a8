import keras
import numpy as np
import pytest
import tensorflow as tf

from vaecyclegan.config import DiscriminatorConfig
from vaecyclegan.multiscale_patchgan_discriminator import build_multiscale_patchgan_discriminator

SMALL = DiscriminatorConfig(filters=8, max_filters=32, num_layers=2, norm_groups=4)


def test_four_scales_of_float32_logits():
    d = build_multiscale_patchgan_discriminator(SMALL, name="d_target")
    outputs = d(np.zeros((2, 64, 64, 3), "float32"))
    assert len(outputs) == 4
    # Branch s sees the input pooled 2**s, then 2 stride-2 convolutions.
    assert [tuple(o.shape) for o in outputs] == [
        (2, 16, 16, 1), (2, 8, 8, 1), (2, 4, 4, 1), (2, 2, 2, 1)]
    assert all(keras.backend.standardize_dtype(o.dtype) == "float32" for o in outputs)


def test_non_square_input():
    d = build_multiscale_patchgan_discriminator(SMALL, name="d_source")
    outputs = d(np.zeros((1, 32, 64, 3), "float32"))
    assert tuple(outputs[0].shape) == (1, 8, 16, 1)


def test_paper_default_has_four_scales():
    assert DiscriminatorConfig().num_scales == 4


def _branch_variables(d, scale):
    return [v for v in d.trainable_variables if v.path.startswith(f"scale{scale}_")]


@pytest.mark.parametrize("scale", range(4))
def test_a_scales_loss_reaches_only_its_own_branch(scale):
    d = build_multiscale_patchgan_discriminator(SMALL, name="d_target")
    x = tf.random.stateless_uniform((2, 64, 64, 3), seed=(1, 2), minval=-1, maxval=1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(d(x, training=True)[scale] - 1.0))
    variables = [v.value for v in d.trainable_variables]
    gradients = dict(zip([v.path for v in d.trainable_variables], tape.gradient(loss, variables)))
    for other in range(4):
        for v in _branch_variables(d, other):
            g = gradients[v.path]
            if other == scale:
                assert g is not None
            else:
                assert g is None or float(tf.reduce_max(tf.abs(g))) == 0.0
    own = [gradients[v.path] for v in _branch_variables(d, scale)]
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in own)
