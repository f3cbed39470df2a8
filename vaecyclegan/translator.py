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


def _by_shape(images, translate_group):
    """Calls `translate_group(list_of_indices)` once per (shape, dtype) group
    and returns its per-image results in the input's order."""
    groups = {}
    for index, pixels in enumerate(images):
        groups.setdefault((pixels.shape, pixels.dtype.str), []).append(index)
    results = [None] * len(images)
    for indices in groups.values():
        for i, result in zip(indices, translate_group(indices)):
            results[i] = result
    return results


class Translator:
    """Runs one generator on grey images of any size.

    Args:
        generator: a generator `keras.Model`.
        stride: the size multiple the generator needs.
        channels: channels the generator takes (grey is repeated).

    Example:
    >>> translator = Translator(g_target, stride=8, channels=3)
    >>> [ct_pixels] = translator.translate_stored([mri_pixels])  # uint8 in and out
    >>> means, stds = translator.sample_stored([mri_pixels], samples=8)
    """

    def __init__(self, generator, stride, channels):
        self.generator = generator
        self.stride = stride
        self.channels = channels

    def translate_unit(self, images, batch_size=8, sample=False):
        """Translates same-size 2-D images in [-1, 1].

        Args:
            images: array (n, H, W) in [-1, 1].
            batch_size: images per forward pass.
            sample: draw the latent instead of using its mean (each call
                advances the generator's seeded random stream).

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
            # training=True only switches the VAE sampler: the generator has
            # no batch statistics or dropout.
            result = self.generator(batch[start:start + batch_size], training=sample)
            outputs.append(np.asarray(result))
        output = np.concatenate(outputs)[:, :height, :width, :]
        return output.mean(axis=-1)

    def translate_stored(self, images, batch_size=8):
        """Translates 8- or 16-bit images deterministically, each into its own
        bit depth; images of one shape and depth share forward passes.

        Args:
            images: a list of 2-D `uint8` / `uint16` arrays of any sizes.

        Returns:
            A list of arrays, in the input's order, shapes and depths.
        """
        def group(indices):
            dtype = images[indices[0]].dtype
            unit = np.stack([stored_to_unit(images[i]) for i in indices])
            return [unit_to_stored(r, dtype) for r in self.translate_unit(unit, batch_size)]

        return _by_shape(images, group)

    def sample_stored(self, images, samples, batch_size=8):
        """Draws `samples` latent samples per image.

        Args:
            images: a list of 2-D `uint8` / `uint16` arrays.
            samples: latent draws per image; 1 means the deterministic
                translation (latent mean) with a zero deviation map.

        Returns:
            `(means, stds)`: per image, the mean of the samples in the input's
            bit depth, and the per-pixel standard deviation as float32 on the
            8-bit scale (0..255).
        """
        def group(indices):
            dtype = images[indices[0]].dtype
            unit = np.stack([stored_to_unit(images[i]) for i in indices])
            if samples <= 1:
                draws = self.translate_unit(unit, batch_size)[None]
            else:
                draws = np.stack([self.translate_unit(unit, batch_size, sample=True)
                                  for _ in range(samples)])
            means, stds = draws.mean(axis=0), draws.std(axis=0) * 127.5
            return [(unit_to_stored(m, dtype), s.astype(np.float32)) for m, s in zip(means, stds)]

        pairs = _by_shape(images, group)
        return [m for m, _ in pairs], [s for _, s in pairs]
