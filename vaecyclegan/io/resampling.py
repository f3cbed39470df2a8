"""Resampling slices to a pixel scale, one rule for training and inference.

Training loads slices at the scale it records in `config.json`, and
inference brings each input to that scale: both go through these two
functions, so that a millimetre of anatomy spans as many network pixels
in use as it did in training.
"""

import cv2
import numpy as np


def scaled_shape(shape, factor):
    """(H, W) of a slice of `shape` seen at `factor` of its pixels a
    resampled pixel (at least 1 a side); `factor` is one number, or one
    per axis `(rows, columns)` for pixels that are not square.

    Example:
    >>> scaled_shape((256, 200), 4.0)
    (64, 50)
    >>> scaled_shape((256, 128), (8.0, 4.0))
    (32, 32)
    """
    factors = factor if isinstance(factor, (tuple, list)) else (factor,) * len(shape)
    return tuple(max(1, int(round(side / f))) for side, f in zip(shape, factors))


def resample_planes(stack, shape, dtype=np.float32):
    """Slices (n, h, w) in [-1, 1] resampled to `shape` (H, W): area
    averaging when shrinking, bicubic when enlarging, clipped to [-1, 1]
    after bicubic overshoot; a stack already of that shape is returned as
    it is. `dtype`: the precision they are resampled in (None: their own)."""
    stack = np.asarray(stack, dtype)
    shape = tuple(shape)
    if stack.shape[1:] == shape:
        return stack
    shrink = shape[0] < stack.shape[1] or shape[1] < stack.shape[2]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.clip(np.stack([cv2.resize(plane, (shape[1], shape[0]),
                                        interpolation=interpolation)
                             for plane in stack]), -1.0, 1.0)
