import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from vaecyclegan.config import DiscriminatorConfig
from vaecyclegan.translation.multiscale_patchgan_discriminator import (
    build_multiscale_patchgan_discriminator,
)

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


def test_the_paper_default_builds_four_independent_branches():
    # The default config (the paper's): 4 scales, 3 stride-2 convolutions per branch.
    d = build_multiscale_patchgan_discriminator(DiscriminatorConfig(), name="d_target")
    outputs = d(np.zeros((1, 64, 64, 3), "float32"))
    assert [tuple(o.shape) for o in outputs] == [
        (1, 8, 8, 1), (1, 4, 4, 1), (1, 2, 2, 1), (1, 1, 1, 1)]
    # Every weight belongs to exactly one branch, and the branches are alike but separate.
    branches = [_branch_variables(d, scale) for scale in range(4)]
    assert sorted(v.path for b in branches for v in b) == sorted(
        v.path for v in d.trainable_variables)
    assert len({id(v) for b in branches for v in b}) == len(d.trainable_variables)
    shapes = [[tuple(v.shape) for v in b] for b in branches]
    assert shapes[0] and all(s == shapes[0] for s in shapes)


@pytest.mark.parametrize("scale", range(4))
def test_a_branch_is_a_patchgan_on_the_input_pooled_by_two_to_its_scale(scale):
    d = build_multiscale_patchgan_discriminator(SMALL, name="d_target")
    _randomise(d, seed=scale)
    single = build_multiscale_patchgan_discriminator(
        dataclasses.replace(SMALL, num_scales=1), name="single")
    # The single-scale network's only branch, given branch `scale`'s weights.
    own = {v.path.split("_", 1)[1]: v for v in _branch_variables(d, scale)}
    assert len(own) == len(single.trainable_variables)
    for v in single.trainable_variables:
        v.assign(own[v.path.split("_", 1)[1]])
    x = np.random.default_rng(scale).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    factor = 2**scale
    pooled = x.reshape(2, 64 // factor, factor, 64 // factor, factor, 3).mean(axis=(2, 4))
    alone = keras.tree.flatten(single(pooled))  # one output: a tensor, not a list
    assert len(alone) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d(x)[scale]),
                               keras.ops.convert_to_numpy(alone[0]), atol=1e-4)


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(w.dtype) for w in model.get_weights()])


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
