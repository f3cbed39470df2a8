import keras
import numpy as np
import pytest
import tensorflow as tf

from vaecyclegan.translation.group_normalization import FusedGroupNormalization


def _pair(groups, channels, seed=0):
    """A fused layer and Keras' own, with the same random gamma and beta."""
    rng = np.random.default_rng(seed)
    fused = FusedGroupNormalization(groups=groups, name="fused")
    plain = keras.layers.GroupNormalization(groups=groups, name="plain")
    for layer in (fused, plain):
        layer.build((None, None, None, channels))
    gamma = rng.normal(size=channels).astype("float32")
    beta = rng.normal(size=channels).astype("float32")
    for layer in (fused, plain):
        layer.set_weights([gamma, beta])
    return fused, plain


def _inputs(shape, seed=1, offset=3.0):
    # An offset mean, as activations after a biased convolution have, is
    # where a one-pass variance would lose precision.
    return np.random.default_rng(seed).normal(offset, 2.0, shape).astype("float32")


@pytest.mark.parametrize("shape,groups", [((2, 16, 12, 32), 8), ((3, 5, 7, 12), 4),
                                          ((1, 8, 8, 6), 6), ((2, 9, 9, 16), 1)])
def test_forward_equals_keras_group_normalization(shape, groups):
    fused, plain = _pair(groups, shape[-1])
    x = _inputs(shape)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x)),
                               keras.ops.convert_to_numpy(plain(x)), atol=2e-5, rtol=1e-5)


def test_gradients_equal_keras_group_normalization():
    fused, plain = _pair(8, 32)
    x = tf.constant(_inputs((2, 16, 16, 32)))
    upstream = tf.constant(_inputs((2, 16, 16, 32), seed=2, offset=0.0))
    grads = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.relu(layer(x))
        grads.append(tape.gradient(y, [x, *layer.trainable_variables], output_gradients=upstream))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-4, rtol=1e-4)


def test_new_image_sizes_need_no_rebuild():
    fused, plain = _pair(4, 8)
    for shape in [(1, 8, 8, 8), (2, 12, 20, 8), (1, 32, 16, 8)]:
        x = _inputs(shape)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x)),
                                   keras.ops.convert_to_numpy(plain(x)), atol=2e-5)


@pytest.mark.parametrize("policy,dtype,ulp", [("mixed_bfloat16", "bfloat16", 2**-7),
                                              ("mixed_float16", "float16", 2**-10)])
def test_mixed_precision_computes_in_float32_and_returns_the_compute_dtype(policy, dtype, ulp):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        fused, plain = _pair(4, 16)
    finally:
        keras.config.set_dtype_policy(previous)
    assert fused.gamma.dtype == "float32"
    x = tf.cast(_inputs((2, 8, 8, 16)), dtype)
    ours, theirs = fused(x), plain(x)
    assert ours.dtype == dtype
    # At most one rounding step apart in the compute dtype.
    np.testing.assert_allclose(tf.cast(ours, "float32").numpy(),
                               tf.cast(theirs, "float32").numpy(), rtol=ulp, atol=ulp)


def test_unfused_is_keras_arithmetic_and_config_round_trips():
    layer = FusedGroupNormalization(groups=2, fused=False, name="norm")
    config = layer.get_config()
    assert config["fused"] is False and config["groups"] == 2
    clone = FusedGroupNormalization.from_config(config)
    assert clone.fused is False and clone.name == "norm"
    x = _inputs((1, 4, 4, 4))
    plain = keras.layers.GroupNormalization(groups=2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)),
                                  keras.ops.convert_to_numpy(plain(x)))


def test_weights_are_named_as_keras_names_them():
    fused, plain = _pair(4, 8)
    assert [w.path.split("/")[-1] for w in fused.weights] == ["gamma", "beta"]
    assert [w.path.split("/")[-1] for w in plain.weights] == ["gamma", "beta"]
