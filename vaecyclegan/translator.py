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
    >>> means, stds = translator.sample_stored([mri_pixels], samples=8)
    >>> [ct_unit], _ = translator.translate_stacks([mri_volume_unit])
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

    def translate_stacks(self, stacks, batch_size=8, samples=1):
        """Translates stacks of slices in [-1, 1]; slices of one size share
        forward passes across stacks.

        Args:
            stacks: a list of arrays (slices, H, W) in [-1, 1], any sizes.
            samples: latent draws per slice; 1 is the deterministic
                translation (latent mean).

        Returns:
            `(means, stds)`: per stack, the translation (the mean of the
            draws) in [-1, 1], and the per-pixel standard deviation of the
            draws in [-1, 1] units (None when `samples` is 1).
        """
        groups = {}
        for index, stack in enumerate(stacks):
            groups.setdefault(stack.shape[1:], []).append(index)
        means, stds = [None] * len(stacks), [None] * len(stacks)
        for indices in groups.values():
            batch = np.concatenate([stacks[i] for i in indices])
            if samples <= 1:
                mean, std = self.translate_unit(batch, batch_size), None
            else:
                draws = np.stack([self.translate_unit(batch, batch_size, sample=True)
                                  for _ in range(samples)])
                mean, std = draws.mean(axis=0), draws.std(axis=0)
            start = 0
            for i in indices:
                count = len(stacks[i])
                means[i] = mean[start:start + count]
                stds[i] = None if std is None else std[start:start + count]
                start += count
        return means, stds

    def translate_stored(self, images, batch_size=8):
        """Translates 8- or 16-bit images deterministically, each into its own
        bit depth, linearly over the full scale of that depth.

        Args:
            images: a list of 2-D `uint8` / `uint16` arrays of any sizes.

        Returns:
            A list of arrays, in the input's order, shapes and depths.
        """
        return self.sample_stored(images, 1, batch_size)[0]

    def sample_stored(self, images, samples, batch_size=8):
        """Draws `samples` latent samples per 8- or 16-bit image.

        Returns:
            `(means, stds)`: per image, the mean of the samples in the input's
            bit depth, and the per-pixel standard deviation as float32 on the
            8-bit scale (0..255); zeros when `samples` is 1.
        """
        means, stds = self.translate_stacks([stored_to_unit(p)[None] for p in images],
                                            batch_size, samples)
        return ([unit_to_stored(m[0], p.dtype) for m, p in zip(means, images)],
                [np.zeros(p.shape, np.float32) if s is None else (s[0] * 127.5).astype(np.float32)
                 for s, p in zip(stds, images)])
