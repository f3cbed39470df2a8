"""The training input pipeline: two domains, each shuffled on its own."""

import keras

from vaecyclegan.names import AUGMENTATIONS

# The augmentation's ranges, as fractions in Keras' terms: a rotation of up
# to 0.03 of a turn (about 11 degrees), a shift of up to 6 % of the side, a
# zoom of up to 8 % in or out. `array_batches` draws the same geometry.
ROTATION = 0.03
SHIFT = 0.06
ZOOM = 0.08


def check_augmentation(augmentation):
    """Raises ValueError unless `augmentation` is one of `names.AUGMENTATIONS`."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, "
                         f"not {augmentation!r}")


def build_augmenter(seed, augmentation="affine"):
    """Random geometry that a head scan can plausibly take: left-right flip,
    and for "affine" a small rotation, shift and zoom, edges filled by
    reflection. Intensities are left alone, so CT keeps its HU mapping.

    Args:
        seed: seeds each random layer.
        augmentation: one of `names.AUGMENTATIONS`.
    """
    check_augmentation(augmentation)
    # float32 whatever the global policy: this runs in the input pipeline,
    # not in the network.
    layers = [keras.layers.RandomFlip("horizontal", seed=seed, name="flip", dtype="float32")]
    if augmentation == "affine":
        layers += [
            keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 1, name="rotate",
                                        dtype="float32"),
            keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="reflect", seed=seed + 2,
                                           name="shift", dtype="float32"),
            keras.layers.RandomZoom(ZOOM, fill_mode="reflect", seed=seed + 3, name="zoom",
                                    dtype="float32"),
        ]
    return keras.Sequential(layers, name="augmenter")


def make_unpaired_dataset(mri, ct, batch_size, channels=3, seed=0, crop=None,
                          augmentation="affine"):
    """Yields `(mri_batch, ct_batch)`, each of `2 * batch_size` images.

    Each domain is shuffled on its own (unpaired) and repeated forever; each
    batch of `batch_size` loaded images is doubled by an augmented view of
    every image (the original recipe's 4 -> 8). Grey images are repeated to
    `channels`.

    Args:
        mri, ct: float32 arrays (n, H, W, 1) in [-1, 1].
        batch_size: images loaded per domain and step.
        channels: channels the networks take.
        seed: makes shuffling and augmentation reproducible.
        crop: side of a random crop drawn from each image before
            augmentation (None or the images' side: whole images).
        augmentation: the augmented view's geometry, one of
            `names.AUGMENTATIONS` (`build_augmenter`).
    """
    import tensorflow as tf  # here: `array_batches` uses the augmenter without it

    augmenter = build_augmenter(seed, augmentation)

    def domain(images, domain_seed):
        dataset = (
            tf.data.Dataset.from_tensor_slices(images)
            .shuffle(len(images), seed=domain_seed, reshuffle_each_iteration=True)
            .repeat()
        )
        if crop and crop < images.shape[1]:
            dataset = dataset.map(lambda image: tf.image.random_crop(
                image, (crop, crop, images.shape[-1]), seed=domain_seed + 1))
        return dataset.batch(batch_size, drop_remainder=True)

    def double(batch):
        views = tf.clip_by_value(augmenter(batch, training=True), -1.0, 1.0)
        both = tf.concat([batch, views], axis=0)
        return tf.repeat(both, channels, axis=-1) if channels > 1 else both

    pairs = tf.data.Dataset.zip((domain(mri, seed + 10), domain(ct, seed + 20)))
    # Sequential map: the augmenter's seed state must advance in one order
    # for a run to be reproducible.
    return pairs.map(lambda m, c: (double(m), double(c))).prefetch(tf.data.AUTOTUNE)
