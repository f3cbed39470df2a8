"""The VAE U-Net generator: `g_target` (MRI -> CT) and `g_source` (CT -> MRI)."""

import keras
from keras import layers

from vaecyclegan.translation.group_normalization import group_norm
from vaecyclegan.translation.vae_sampling import VAESampling


def _conv_norm_relu(x, filters, kernel_size, strides, groups, prefix):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", name=f"{prefix}_conv"
    )(x)
    x = group_norm(filters, groups, name=f"{prefix}_norm")(x)
    return layers.Activation("relu", name=f"{prefix}_relu")(x)


def _residual_block(x, filters, groups, prefix):
    # CycleGAN's ResnetBlock: conv-norm-relu-conv-norm, plus the input.
    h = _conv_norm_relu(x, filters, 3, 1, groups, f"{prefix}_a")
    h = layers.Conv2D(filters, 3, padding="same", name=f"{prefix}_b_conv")(h)
    h = group_norm(filters, groups, name=f"{prefix}_b_norm")(h)
    return layers.Add(name=f"{prefix}_add")([x, h])


def build_vae_unet_generator(config, channels=3, name="generator"):
    """Builds the U-Net generator with a VAE bottleneck.

    Encoder: a 7x7 stem, then `num_downsamples` stride-2 levels (channels
    doubled per level up to `max_filters`). Bottleneck: residual blocks,
    1x1 convolutions to `mu` and `logvar`, the reparameterised sample,
    a projection back, more residual blocks. Decoder: per level, nearest x2
    upsampling and a 3x3 convolution (no checkerboard artefacts), the
    encoder's skip concatenated (except at the `levels_without_skip` finest
    levels), a fusing 3x3 convolution. Output: a 7x7
    convolution and tanh, in float32 under mixed precision.

    Every normalisation is GroupNormalization, so results do not depend on
    the batch size and inference equals training for the same input.

    Args:
        config: a `GeneratorConfig`.
        channels: image channels in and out.
        name: model name (`g_target` or `g_source` in this project).

    Returns:
        A functional `keras.Model` from (batch, H, W, channels) in [-1, 1]
        to the same shape in [-1, 1]; H and W divisible by `config.stride`.

    Example:
    >>> from vaecyclegan.config import GeneratorConfig
    >>> g = build_vae_unet_generator(
    ...     GeneratorConfig(filters=8, num_downsamples=2, latent_channels=8,
    ...                     norm_groups=4, num_res_blocks=2), name="g_target")
    >>> tuple(g(keras.ops.zeros((1, 32, 32, 3))).shape)
    (1, 32, 32, 3)
    """
    groups = config.norm_groups
    level_filters = [
        min(config.filters * 2**level, config.max_filters)
        for level in range(config.num_downsamples + 1)
    ]

    image = keras.Input((None, None, channels), name="image")
    x = _conv_norm_relu(image, level_filters[0], 7, 1, groups, "stem")
    skips = [x]
    for level in range(1, config.num_downsamples + 1):
        x = _conv_norm_relu(x, level_filters[level], 3, 2, groups, f"down{level}")
        skips.append(x)

    bottleneck_filters = level_filters[-1]
    blocks_before = config.num_res_blocks // 2
    for block in range(blocks_before):
        x = _residual_block(x, bottleneck_filters, groups, f"res{block}")

    mu = layers.Conv2D(config.latent_channels, 1, name="latent_mu")(x)
    logvar = layers.Conv2D(config.latent_channels, 1, name="latent_logvar")(x)
    z = VAESampling(seed=config.seed, name="latent_sample")([mu, logvar])
    x = _conv_norm_relu(z, bottleneck_filters, 1, 1, groups, "latent_project")
    for block in range(blocks_before, config.num_res_blocks):
        x = _residual_block(x, bottleneck_filters, groups, f"res{block}")

    for level in range(config.num_downsamples, 0, -1):
        filters = level_filters[level - 1]
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_upsample")(x)
        x = _conv_norm_relu(x, filters, 3, 1, groups, f"up{level}")
        if level > config.levels_without_skip:
            x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level - 1]])
        x = _conv_norm_relu(x, filters, 3, 1, groups, f"up{level}_fuse")

    x = layers.Conv2D(channels, 7, padding="same", name="output_conv")(x)
    output = layers.Activation("tanh", dtype="float32", name="output_tanh")(x)
    return keras.Model(image, output, name=name)
