"""The upscaler's training data: high-resolution crops of the training
images and their degraded (bicubic, optionally blurred and noisy)
low-resolution versions."""

import numpy as np
import tensorflow as tf


def bicubic_downscale(images, scale):
    """The degradation the upscaler learns to undo: bicubic with
    antialiasing (as MATLAB's `imresize`), by `scale`.

    Args:
        images: (..., H, W, C) in [0, 1], H and W divisible by `scale`.
        scale: the factor each side shrinks by (an integer: 2 or 4).
    """
    height, width = images.shape[-3], images.shape[-2]
    low = tf.image.resize(images, (height // scale, width // scale), method="bicubic",
                          antialias=True)
    return tf.clip_by_value(low, 0.0, 1.0)


DEGRADATIONS = ("blur", "noise")
# Ranges of the random degradations, per patch: Gaussian blur sigma in
# high-resolution pixels before downscaling, and Gaussian noise sigma (of
# [0, 1] intensities) after it.
BLUR_SIGMA_RANGE = (0.2, 2.0)
NOISE_SIGMA_RANGE = (0.0, 0.03)


def _gaussian_blur(image, sigma, radius=6):
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(x / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]],
                    mode="REFLECT")
    rows = tf.nn.conv2d(padded, tf.reshape(kernel, (-1, 1, 1, 1)), 1, "VALID")
    return tf.nn.conv2d(rows, tf.reshape(kernel, (1, -1, 1, 1)), 1, "VALID")[0]


def degrade(hr, scale, degradations, seeds):
    """Low-resolution input for one high-resolution patch: optional random
    Gaussian blur, the bicubic downscale, optional random Gaussian noise.

    Args:
        hr: (H, W, 1) in [0, 1].
        scale: the factor each side shrinks by (as `bicubic_downscale`).
        degradations: a subset of `DEGRADATIONS`.
        seeds: a stateless seed pair.
    """
    if "blur" in degradations:
        sigma = tf.random.stateless_uniform((), seeds + 2, *BLUR_SIGMA_RANGE)
        hr = _gaussian_blur(hr, sigma)
    lr = bicubic_downscale(hr, scale)
    if "noise" in degradations:
        sigma = tf.random.stateless_uniform((), seeds + 3, *NOISE_SIGMA_RANGE)
        lr = lr + sigma * tf.random.stateless_normal(tf.shape(lr), seeds + 4)
    return tf.clip_by_value(lr, 0.0, 1.0)


# Candidate crops per patch; the one with the most detail is kept.
CROP_CANDIDATES = 4


def _crop_with_detail(image, patch, seeds):
    """The candidate crop with the largest standard deviation: a head slice
    is mostly uniform air and brain, and a patch of either teaches an
    upscaler nothing; edges are what it has to restore."""
    candidates = tf.stack([
        tf.image.stateless_random_crop(image, (patch, patch, 1), seed=seeds + 10 * k)
        for k in range(CROP_CANDIDATES)])
    return candidates[tf.argmax(tf.math.reduce_std(candidates, axis=(1, 2, 3)))]


def make_sr_dataset(images, patch, scale, batch_size, channels=3, seed=0, degradations=()):
    """Yields `(low_res, high_res)` batches in [0, 1] (ESRGAN's range).

    High-resolution patches are random `patch`-pixel crops (random
    left-right flips) of the images, each the most detailed of
    `CROP_CANDIDATES` drawn; low-resolution inputs are their bicubic
    downscales by `scale` with antialiasing, as MATLAB's `imresize` does,
    after an optional random blur and before optional random noise.

    Args:
        images: float32 array (n, H, W, 1) in [-1, 1], H and W >= patch;
            or a list of such arrays whose sizes differ (CT and MRI loaded
            at their own native sizes), each image drawn as often as in
            one shuffled array.
        patch: high-resolution crop side, divisible by `scale`.
        scale: the upscaling factor.
        batch_size: patches per batch.
        channels: channels the network takes (grey is repeated).
        seed: makes crops reproducible.
        degradations: a subset of `DEGRADATIONS` ("blur", "noise").
    """
    unknown = set(degradations) - set(DEGRADATIONS)
    if unknown:
        raise ValueError(f"unknown degradations {sorted(unknown)}; known: {DEGRADATIONS}")
    if patch % scale:
        raise ValueError(f"SR patch {patch} is not divisible by scale {scale}")

    def crop(image, index):
        seeds = tf.stack([tf.cast(index, tf.int32), tf.constant(seed, tf.int32)])
        hr = _crop_with_detail(image, patch, seeds)
        hr = tf.image.stateless_random_flip_left_right(hr, seed=seeds + 1)
        hr = (hr + 1.0) / 2.0
        lr = degrade(hr, scale, degradations, seeds)
        if channels > 1:
            hr, lr = tf.repeat(hr, channels, -1), tf.repeat(lr, channels, -1)
        return lr, hr

    stacks = _stacks_by_size(images)

    def patches(stack, stream):
        return (
            tf.data.Dataset.from_tensor_slices(stack)
            .shuffle(len(stack), seed=seed + stream, reshuffle_each_iteration=True)
            .repeat()
            .enumerate()
            # Streams of different sizes get disjoint crop seeds.
            .map(lambda index, image: crop(image, index * len(stacks) + stream),
                 num_parallel_calls=tf.data.AUTOTUNE)
        )

    if len(stacks) == 1:
        dataset = patches(stacks[0], 0)
    else:
        total = sum(len(stack) for stack in stacks)
        dataset = tf.data.Dataset.sample_from_datasets(
            [patches(stack, k) for k, stack in enumerate(stacks)],
            weights=[len(stack) / total for stack in stacks], seed=seed)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _stacks_by_size(images):
    """`images` as a list of arrays of one size each (one array where all
    are one size, so that a single stack trains exactly as before)."""
    if not isinstance(images, (list, tuple)):
        return [images]
    by_size = {}
    for stack in images:
        by_size.setdefault(tuple(stack.shape[1:]), []).append(stack)
    return [np.concatenate(group) for group in by_size.values()]
