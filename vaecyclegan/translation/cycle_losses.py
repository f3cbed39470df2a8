"""The VAE-CycleGAN's two basic losses, in `keras.ops` so that the
TensorFlow/PyTorch trainer (`trainer`) and the JAX step (`jax_trainer`)
share one definition; both compute in float32 under mixed precision."""

from keras import ops


def lsgan_loss(logits_list, target):
    """Least-squares GAN loss, averaged over the discriminator's scales.

    Args:
        logits_list: the logit maps of every scale of a discriminator.
        target: 1.0 (real) or 0.0 (translated).

    Example:
    >>> import numpy as np
    >>> fake_ct = g_target(np.repeat(mri, 3, axis=-1))  # grey to the networks' 3 channels
    >>> loss = lsgan_loss(d_target(fake_ct), 1.0)  # the generator's side
    >>> float(lsgan_loss([np.zeros((1, 8, 8, 1)), np.ones((1, 4, 4, 1))], 1.0))  # 2 scales
    0.5
    """
    losses = [ops.mean(ops.square(ops.cast(logits, "float32") - target)) for logits in logits_list]
    return ops.mean(ops.stack(losses))


def l1_loss(a, b):
    """Mean absolute difference, in float32 (cycle and identity losses).

    Example:
    >>> import numpy as np
    >>> mri_batch = np.repeat(mri, 3, axis=-1)  # grey to the networks' 3 channels
    >>> cycle = l1_loss(g_source(g_target(mri_batch)), mri_batch)
    >>> float(l1_loss(np.zeros(4), np.array([1.0, -1.0, 0.0, 2.0])))
    1.0
    """
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))
