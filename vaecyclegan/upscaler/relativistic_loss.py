"""ESRGAN's relativistic average GAN loss, in `keras.ops` so that the
TensorFlow trainer and the JAX step share one definition."""

from keras import ops


def _bce_with_logits(logits, label):
    # tf.nn.sigmoid_cross_entropy_with_logits' stable form.
    logits = ops.cast(logits, "float32")
    return ops.mean(ops.relu(logits) - logits * label + ops.log1p(ops.exp(-ops.abs(logits))))


def relativistic_losses(real_logits, fake_logits):
    """`(discriminator_loss, generator_loss)` of the relativistic average GAN:
    the discriminator judges whether a real patch looks more real than the
    upscaled ones on average, and vice versa.

    Args:
        real_logits, fake_logits: (batch, 1) logits of the discriminator.

    Example:
    >>> import numpy as np
    >>> d_loss, g_loss = relativistic_losses(np.ones((4, 1)), np.zeros((4, 1)))
    """
    real_logits = ops.cast(real_logits, "float32")
    fake_logits = ops.cast(fake_logits, "float32")
    real_mean, fake_mean = ops.mean(real_logits), ops.mean(fake_logits)
    # As BasicSR: each term sees the other side's mean as a constant.
    d_loss = 0.5 * (_bce_with_logits(real_logits - ops.stop_gradient(fake_mean), 1.0)
                    + _bce_with_logits(fake_logits - ops.stop_gradient(real_mean), 0.0))
    g_loss = 0.5 * (_bce_with_logits(real_logits - fake_mean, 0.0)
                    + _bce_with_logits(fake_logits - real_mean, 1.0))
    return d_loss, g_loss
