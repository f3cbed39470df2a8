"""Running the RRDB-Net upscaler on large images in overlapping tiles.

The image is cut into cores of `tile` pixels; each core is upscaled with
`pad` pixels of real image context on every side (the overlap), and only
the core's part of the output is kept. Memory grows with `tile + 2 * pad`,
not with the image, and wherever `pad` covers the network's receptive field
the result equals upscaling the whole image at once, so no seam can show.
"""

import numpy as np

from vaecyclegan.networks import run_network


class TiledUpscaler:
    """Upscales grey or colour images in [0, 1] with an RRDB-Net, tile by tile.

    Args:
        model: an RRDB-Net `keras.Model` (see `build_rrdbnet`).
        scale: its upscaling factor.
        channels: channels it takes (grey is repeated and averaged back).
        tile: core side in input pixels.
        pad: context on each side of a core, in input pixels.

    Example:
    >>> upscaler = TiledUpscaler(rrdbnet, scale=4, channels=3, tile=128, pad=32)
    >>> lr_grey = np.zeros((20, 30), np.float32)  # in [0, 1]
    >>> upscaler.upscale(lr_grey).shape  # (H, W) -> (4H, 4W)
    (80, 120)
    """

    def __init__(self, model, scale, channels, tile=128, pad=32):
        if tile < 2 or pad < 0:
            raise ValueError(f"tile must be at least 2 and pad at least 0, got {tile}, {pad}")
        self.model = model
        self.scale = scale
        self.channels = channels
        self.tile = tile + tile % 2  # x2 RRDB-Nets pixel-unshuffle: keep sides even
        self.pad = pad + pad % 2

    def upscale(self, image):
        """Upscales one (H, W) or (H, W, C) image in [0, 1]; returns float32,
        clipped to [0, 1], of the same layout and `scale` times the size."""
        grey = image.ndim == 2
        x = np.repeat(image[..., None], self.channels, -1) if grey else image
        height, width = x.shape[:2]
        # An odd side cannot be pixel-unshuffled (x2): pad by one, crop after.
        x = np.pad(x.astype(np.float32), ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        s, padded_h, padded_w = self.scale, x.shape[0], x.shape[1]
        output = np.zeros((padded_h * s, padded_w * s, x.shape[2]), np.float32)
        for top in range(0, padded_h, self.tile):
            for left in range(0, padded_w, self.tile):
                bottom, right = min(top + self.tile, padded_h), min(left + self.tile, padded_w)
                y0, x0 = max(top - self.pad, 0), max(left - self.pad, 0)
                y1, x1 = min(bottom + self.pad, padded_h), min(right + self.pad, padded_w)
                result = run_network(self.model, x[None, y0:y1, x0:x1])[0]
                output[top * s:bottom * s, left * s:right * s] = result[
                    (top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s]
        output = np.clip(output[:height * s, :width * s], 0.0, 1.0)
        return output.mean(axis=-1) if grey else output
