"""Space-to-depth in PyTorch's channel order, for BasicSR's x2 RRDB-Net."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vaecyclegan")
class PixelUnshuffle(keras.layers.Layer):
    """(B, H, W, C) -> (B, H/r, W/r, C*r*r), channel index `c*r*r + i*r + j`.

    That is `torch.nn.functional.pixel_unshuffle`'s order (TensorFlow's
    `space_to_depth` puts the channel last instead), so converted BasicSR
    weights of the first convolution need no permutation.

    Args:
        factor: the block size `r`.

    Example:
    >>> tuple(PixelUnshuffle(2)(keras.ops.zeros((1, 8, 8, 3))).shape)
    (1, 4, 4, 12)
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        r = self.factor
        shape = ops.shape(x)
        height, width, channels = shape[1], shape[2], shape[3]
        x = ops.reshape(x, (-1, height // r, r, width // r, r, channels))
        x = ops.transpose(x, (0, 1, 3, 5, 2, 4))
        return ops.reshape(x, (-1, height // r, width // r, channels * r * r))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        r = self.factor
        return (
            batch,
            None if height is None else height // r,
            None if width is None else width // r,
            channels * r * r,
        )

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
