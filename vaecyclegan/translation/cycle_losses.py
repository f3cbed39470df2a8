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
    >>> loss = lsgan_loss(d_target(fake_ct), 1.0)  # the generator's side
    """
    losses = [ops.mean(ops.square(ops.cast(logits, "float32") - target)) for logits in logits_list]
    return ops.mean(ops.stack(losses))


def l1_loss(a, b):
    """Mean absolute difference, in float32 (cycle and identity losses).

    Example:
    >>> cycle = l1_loss(g_source(g_target(mri)), mri)
    """
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))
