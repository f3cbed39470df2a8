import keras
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.upscaler.pixel_unshuffle import PixelUnshuffle
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet

SMALL = RRDBNetConfig(num_feat=8, num_block=2, num_grow_ch=4)


def esrgan_state_dict_prefixes(num_block):
    """ESRGAN's RRDBNet_arch.py convolution keys, without .weight/.bias."""
    keys = ["conv_first"]
    for block in range(num_block):
        for rdb in range(1, 4):
            keys += [f"RRDB_trunk.{block}.RDB{rdb}.conv{c}" for c in range(1, 6)]
    return keys + ["trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last"]


@pytest.mark.parametrize("scale,height,width", [(4, 8, 8), (4, 6, 10), (2, 8, 12)])
def test_output_is_scaled(scale, height, width):
    config = RRDBNetConfig(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    net = build_rrdbnet(config)
    y = net(np.zeros((2, height, width, 3), "float32"))
    assert tuple(y.shape) == (2, scale * height, scale * width, 3)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


def test_convolutions_are_named_as_esrgan_keys():
    net = build_rrdbnet(SMALL)
    convs = [layer.name for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == esrgan_state_dict_prefixes(2)


def test_esrgan_channel_plan():
    net = build_rrdbnet(SMALL)
    nf, gc = SMALL.num_feat, SMALL.num_grow_ch
    kernel = lambda name: tuple(net.get_layer(name).kernel.shape)  # noqa: E731
    assert kernel("conv_first") == (3, 3, 3, nf)
    for c in range(1, 5):
        assert kernel(f"RRDB_trunk.1.RDB3.conv{c}") == (3, 3, nf + (c - 1) * gc, gc)
    assert kernel("RRDB_trunk.1.RDB3.conv5") == (3, 3, nf + 4 * gc, nf)
    assert kernel("conv_last") == (3, 3, nf, 3)


def test_full_size_matches_esrgan_parameter_count():
    # RRDB_ESRGAN_x4.pth holds 16,697,987 parameters.
    assert build_rrdbnet(RRDBNetConfig()).count_params() == 16_697_987


def test_x2_takes_pixel_unshuffled_input():
    net = build_rrdbnet(RRDBNetConfig(scale=2, num_feat=8, num_block=1, num_grow_ch=4))
    assert tuple(net.get_layer("conv_first").kernel.shape) == (3, 3, 12, 8)


def test_rejects_other_scales():
    with pytest.raises(ValueError, match="scale"):
        build_rrdbnet(RRDBNetConfig(scale=3))


def test_pixel_unshuffle_uses_pytorch_channel_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 4, 3)).astype("float32")
    r = 2
    y = keras.ops.convert_to_numpy(PixelUnshuffle(r)(x))
    # torch: out[n, c*r*r + i*r + j, h, w] = in[n, c, h*r + i, w*r + j]
    for c in range(3):
        for i in range(r):
            for j in range(r):
                np.testing.assert_array_equal(y[..., c * r * r + i * r + j], x[:, i::r, j::r, c])
