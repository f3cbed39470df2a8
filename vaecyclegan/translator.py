"""Applying a trained generator to images of any size."""

import numpy as np

from vaecyclegan.intensity import stored_to_unit, unit_to_stored


def pad_to_multiple(image, multiple):
    """Pads a 2-D image at the bottom and right to a multiple of `multiple`.

    Reflection keeps edge statistics natural; images too small to reflect
    repeat their edge instead.

    Returns:
        The padded image.
    """
    height, width = image.shape
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w)), mode=mode)


class Translator:
    """Runs one generator on grey images of any size.

    Args:
        generator: a generator `keras.Model`.
        stride: the size multiple the generator needs.
        channels: channels the generator takes (grey is repeated).

    Example:
    >>> translator = Translator(g_target, stride=8, channels=3)
    >>> [ct_pixels] = translator.translate_stored([mri_pixels])  # uint8 in and out
    """

    def __init__(self, generator, stride, channels):
        self.generator = generator
        self.stride = stride
        self.channels = channels

    def translate_unit(self, images, batch_size=8):
        """Translates same-size 2-D images in [-1, 1]; deterministic.

        Args:
            images: array (n, H, W) in [-1, 1].
            batch_size: images per forward pass.

        Returns:
            Array (n, H, W) in [-1, 1]: padded to the stride, cropped back,
            channels averaged back to grey.
        """
        images = np.asarray(images, dtype=np.float32)
        height, width = images.shape[1:]
        padded = np.stack([pad_to_multiple(image, self.stride) for image in images])
        batch = np.repeat(padded[..., None], self.channels, axis=-1)
        outputs = []
        for start in range(0, len(batch), batch_size):
            result = self.generator(batch[start:start + batch_size], training=False)
            outputs.append(np.asarray(result))
        output = np.concatenate(outputs)[:, :height, :width, :]
        return output.mean(axis=-1)

    def translate_stored(self, images, batch_size=8):
        """Translates 8- or 16-bit images, each into its own bit depth.

        Images of one shape and depth share forward passes.

        Args:
            images: a list of 2-D `uint8` / `uint16` arrays of any sizes.

        Returns:
            A list of arrays, in the input's order, shapes and depths.
        """
        groups = {}
        for index, pixels in enumerate(images):
            groups.setdefault((pixels.shape, pixels.dtype.str), []).append(index)
        outputs = [None] * len(images)
        for indices in groups.values():
            dtype = images[indices[0]].dtype
            unit = np.stack([stored_to_unit(images[i]) for i in indices])
            translated = self.translate_unit(unit, batch_size)
            for i, result in zip(indices, translated):
                outputs[i] = unit_to_stored(result, dtype)
        return outputs
