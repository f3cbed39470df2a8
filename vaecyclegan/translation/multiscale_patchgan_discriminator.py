"""The 4-scale PatchGAN discriminator: `d_source` (MRI) and `d_target` (CT)."""

import keras
from keras import layers

from vaecyclegan.translation.group_normalization import group_norm


def _patchgan_branch(x, config, prefix):
    # pix2pix's 70x70 PatchGAN: no norm on the first layer, LeakyReLU(0.2).
    filters = config.filters
    x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{prefix}_conv0")(x)
    x = layers.LeakyReLU(0.2, name=f"{prefix}_lrelu0")(x)
    for index in range(1, config.num_layers + 1):
        filters = min(config.filters * 2**index, config.max_filters)
        # The last feature layer keeps the resolution, as in pix2pix.
        strides = 2 if index < config.num_layers else 1
        x = layers.Conv2D(
            filters, 4, strides=strides, padding="same", name=f"{prefix}_conv{index}"
        )(x)
        x = group_norm(filters, config.norm_groups, name=f"{prefix}_norm{index}")(x)
        x = layers.LeakyReLU(0.2, name=f"{prefix}_lrelu{index}")(x)
    return layers.Conv2D(1, 4, padding="same", dtype="float32", name=f"{prefix}_logits")(x)


def build_multiscale_patchgan_discriminator(config, channels=3, name="discriminator"):
    """Builds a multi-scale PatchGAN with independent branches.

    Branch `s` sees the input average-pooled by `2 ** s` (taken from the
    input directly, not from another branch) and has its own weights, so a
    loss on one scale's logits reaches only that branch ("derivative
    independence").

    Args:
        config: a `DiscriminatorConfig`.
        channels: image channels.
        name: model name (`d_source` or `d_target` in this project).

    Returns:
        A functional `keras.Model` from (batch, H, W, channels) in [-1, 1]
        to a list of `num_scales` float32 logit maps, finest first.

    Example:
    >>> from vaecyclegan.config import DiscriminatorConfig
    >>> d = build_multiscale_patchgan_discriminator(
    ...     DiscriminatorConfig(filters=8, norm_groups=4), name="d_target")
    >>> [tuple(o.shape) for o in d(keras.ops.zeros((1, 64, 64, 3)))]
    [(1, 8, 8, 1), (1, 4, 4, 1), (1, 2, 2, 1), (1, 1, 1, 1)]
    """
    image = keras.Input((None, None, channels), name="image")
    outputs = []
    for scale in range(config.num_scales):
        x = image
        if scale > 0:
            factor = 2**scale
            x = layers.AveragePooling2D(
                factor, strides=factor, padding="same", name=f"scale{scale}_pool"
            )(image)
        outputs.append(_patchgan_branch(x, config, f"scale{scale}"))
    return keras.Model(image, outputs, name=name)
