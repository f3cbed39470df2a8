import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet
from vaecyclegan.upscaler.tiling import TiledUpscaler

# One RRDB: 17 convolutions at input resolution, so 17 pixels of context
# cover the receptive field; 24 leave a margin for the x4 stages.
SMALL = RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(70, 90)), 0), 1)
    return ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)


@pytest.mark.parametrize("scale", [4, 2])
def test_tiled_equals_untiled(image, scale):
    net = build_rrdbnet(RRDBNetConfig(scale=scale, num_feat=8, num_block=1, num_grow_ch=4))
    whole = TiledUpscaler(net, scale, 3, tile=1000, pad=0).upscale(image)
    tiled = TiledUpscaler(net, scale, 3, tile=32, pad=24).upscale(image)
    assert whole.shape == tiled.shape == (70 * scale, 90 * scale)
    np.testing.assert_allclose(tiled, whole, atol=1e-3)


def test_too_little_context_shows_at_tile_edges(image):
    # The same comparison can fail: without context, tiles differ from the
    # whole image near their edges.
    net = build_rrdbnet(SMALL)
    whole = TiledUpscaler(net, 4, 3, tile=1000, pad=0).upscale(image)
    tiled = TiledUpscaler(net, 4, 3, tile=32, pad=0).upscale(image)
    assert np.abs(tiled - whole).max() > 1e-3


def test_odd_sizes_and_colour(image):
    net = build_rrdbnet(RRDBNetConfig(scale=2, num_feat=8, num_block=1, num_grow_ch=4))
    odd = image[:33, :47]
    grey = TiledUpscaler(net, 2, 3, tile=16, pad=8).upscale(odd)
    colour = TiledUpscaler(net, 2, 3, tile=16, pad=8).upscale(np.repeat(odd[..., None], 3, -1))
    assert grey.shape == (66, 94) and colour.shape == (66, 94, 3)
    np.testing.assert_allclose(grey, colour.mean(-1), atol=1e-6)
    assert grey.min() >= 0.0 and grey.max() <= 1.0
