"""ESRGAN's discriminator (`Discriminator_VGG_128`, BasicSR's
`VGGStyleDiscriminator`), layer for layer.

Five stages, each a 3x3 convolution and a 4x4 stride-2 convolution (batch
norm after every convolution but the first, LeakyReLU 0.2 after each), then
two dense layers (100 units, then 1 logit). Names follow ESRGAN's keys
(`conv0_0`, `conv0_1`, `bn0_1`, ..., `linear1`, `linear2`). The dense
layers fix the input side: 128 in ESRGAN, any multiple of 32 here.
"""

import keras
from keras import layers


def build_vgg_style_discriminator(input_size=128, num_feat=64, channels=3,
                                  name="sr_discriminator"):
    """Builds ESRGAN's VGG-style discriminator.

    Args:
        input_size: side of the (square) high-resolution patches it judges,
            a multiple of 32.
        num_feat: channels of the first stage (doubled up to 8x).
        channels: image channels.
        name: the model's name.

    Returns:
        A `keras.Model` from (batch, input_size, input_size, channels) in
        [0, 1] to (batch, 1) float32 logits.

    Example:
    >>> d = build_vgg_style_discriminator(input_size=64, num_feat=16)
    >>> tuple(d(keras.ops.zeros((2, 64, 64, 3))).shape)
    (2, 1)
    """
    if input_size % 32:
        raise ValueError(f"input_size {input_size} is not a multiple of 32")
    inputs = keras.Input((input_size, input_size, channels), name="hr_patch")
    x = layers.Conv2D(num_feat, 3, padding="same", name="conv0_0")(inputs)
    x = layers.LeakyReLU(0.2, name="lrelu0_0")(x)
    widths = (num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8)
    for stage, width in enumerate(widths):
        for index, (kernel, stride) in enumerate(((3, 1), (4, 2))):
            if stage == 0 and index == 0:
                continue  # conv0_0 above: biased, not normalised
            label = f"{stage}_{index}"
            x = layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False,
                              name=f"conv{label}")(x)
            # PyTorch's BatchNorm2d defaults (momentum 0.1, eps 1e-5).
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{label}")(x)
            x = layers.LeakyReLU(0.2, name=f"lrelu{label}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(100, name="linear1")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_linear1")(x)
    logits = layers.Dense(1, dtype="float32", name="linear2")(x)
    return keras.Model(inputs, logits, name=name)
