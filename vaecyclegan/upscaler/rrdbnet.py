"""ESRGAN's RRDB-Net, layer for layer.

Reads as ESRGAN's figure: conv_first -> RRDB_trunk (nb RRDBs, each three
residual dense blocks of five convolutions) -> trunk_conv, added to the
conv_first features -> (nearest x2, upconv, LeakyReLU) twice -> HRconv ->
LeakyReLU -> conv_last.

Every convolution is named exactly as its key in ESRGAN's `state_dict`
without the `.weight` / `.bias` suffix (`conv_first`,
`RRDB_trunk.7.RDB2.conv4`, `upconv1`, `HRconv`, ...), so a converter maps
keys one to one. Images are RGB (or grey) in [0, 1], the range ESRGAN was
trained on, not the translators' [-1, 1].

Those dots are kept on every backend: the layer names, the variables' paths
and hence the weight files' `layer_names` / `weight_names` are the same on
TensorFlow, JAX and PyTorch. Only Keras' PyTorch backend needs more: it
registers each variable as a `torch.nn.Parameter` under the variable's path
(`RRDB_trunk.7.RDB2.conv4/kernel`), and torch refuses a dot in a parameter
name. The convolutions and the model are therefore `ESRGANConv2D` and
`RRDBNet`, which on that backend alone register their parameters with the
dots replaced (`RRDB_trunk_7_RDB2_conv4/kernel`, what `named_parameters()`
and `state_dict()` show; `torch_parameter_names.TorchParameterNames`,
which the trainers that own an RRDB-Net mix in too); elsewhere they are
`Conv2D` and a functional `keras.Model` unchanged.
"""

import keras
from keras import layers

from vaecyclegan.torch_parameter_names import TorchParameterNames
from vaecyclegan.upscaler.pixel_unshuffle import PixelUnshuffle

RESIDUAL_SCALE = 0.2


@keras.saving.register_keras_serializable(package="vaecyclegan")
class ESRGANConv2D(TorchParameterNames, layers.Conv2D):
    """`keras.layers.Conv2D` whose name may hold dots (an ESRGAN
    `state_dict` key) on every Keras backend, PyTorch's included."""


@keras.saving.register_keras_serializable(package="vaecyclegan")
class RRDBNet(TorchParameterNames, keras.Model):
    """The functional RRDB-Net model (`build_rrdbnet`), which may hold
    `ESRGANConv2D` layers on every Keras backend, PyTorch's included."""


def _lrelu(name):
    return layers.LeakyReLU(0.2, name=name)


def _conv(filters, name, **kwargs):
    return ESRGANConv2D(filters, 3, padding="same", name=name, **kwargs)


def _residual_dense_block(x, num_feat, num_grow_ch, prefix):
    features = [x]
    for index in range(1, 5):
        inputs = features[0] if index == 1 else layers.Concatenate(
            name=f"{prefix}.cat{index}"
        )(features)
        h = _conv(num_grow_ch, f"{prefix}.conv{index}")(inputs)
        features.append(_lrelu(f"{prefix}.lrelu{index}")(h))
    h = layers.Concatenate(name=f"{prefix}.cat5")(features)
    h = _conv(num_feat, f"{prefix}.conv5")(h)
    h = layers.Rescaling(RESIDUAL_SCALE, name=f"{prefix}.scale")(h)
    return layers.Add(name=f"{prefix}.add")([h, x])


def _rrdb(x, num_feat, num_grow_ch, prefix):
    h = x
    for index in range(1, 4):
        h = _residual_dense_block(h, num_feat, num_grow_ch, f"{prefix}.RDB{index}")
    h = layers.Rescaling(RESIDUAL_SCALE, name=f"{prefix}.scale")(h)
    return layers.Add(name=f"{prefix}.add")([h, x])


def build_rrdbnet(config, channels=3, name="rrdbnet"):
    """Builds ESRGAN's RRDB-Net upscaler.

    Args:
        config: an `RRDBNetConfig`; `scale` 4 is ESRGAN's network, `scale` 2
            puts BasicSR's pixel-unshuffle in front (then conv_first takes
            `4 * channels` channels), so the output is x2.
        channels: image channels in and out.
        name: model name.

    Returns:
        A functional `keras.Model` (an `RRDBNet`) from (batch, H, W,
        channels) in [0, 1] to (batch, scale*H, scale*W, channels),
        unclipped, float32.

    Example:
    >>> from vaecyclegan.config import RRDBNetConfig
    >>> net = build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))
    >>> tuple(net(keras.ops.zeros((1, 8, 8, 3))).shape)
    (1, 32, 32, 3)
    """
    if config.scale not in (2, 4):
        raise ValueError(f"RRDB-Net scale must be 2 or 4, got {config.scale}")
    nf, gc = config.num_feat, config.num_grow_ch

    image = keras.Input((None, None, channels), name="image")
    x = image
    if config.scale == 2:
        x = PixelUnshuffle(2, name="pixel_unshuffle")(x)
    fea = _conv(nf, "conv_first")(x)
    trunk = fea
    for index in range(config.num_block):
        trunk = _rrdb(trunk, nf, gc, f"RRDB_trunk.{index}")
    trunk = _conv(nf, "trunk_conv")(trunk)
    fea = layers.Add(name="trunk_add")([fea, trunk])
    for stage in (1, 2):
        fea = layers.UpSampling2D(2, interpolation="nearest", name=f"upsample{stage}")(fea)
        fea = _conv(nf, f"upconv{stage}")(fea)
        fea = _lrelu(f"upconv{stage}_lrelu")(fea)
    fea = _conv(nf, "HRconv")(fea)
    fea = _lrelu("HRconv_lrelu")(fea)
    output = _conv(channels, "conv_last", dtype="float32")(fea)
    return RRDBNet(image, output, name=name)
