"""The translation stage's input without TensorFlow: the batches of
`dataset.make_unpaired_dataset` (each domain shuffled on its own and
repeated, an optional random crop, every batch doubled by an augmented view
through the same `build_augmenter`, grey repeated to the networks'
channels) drawn with numpy and Keras' own backend, for training on JAX where
TensorFlow is not installed. Same recipe and distributions, other random
draws than tf.data's for one seed."""

import numpy as np

from vaecyclegan.translation.dataset import build_augmenter


def unpaired_batches(mri, ct, batch_size, channels=3, seed=0, crop=None):
    """Yields `(mri_batch, ct_batch)` numpy arrays of `2 * batch_size` images.

    Args: as `make_unpaired_dataset`.

    Example:
    >>> mri_batch, ct_batch = next(unpaired_batches(mri, ct, 4))
    >>> mri_batch.shape[0]
    8
    """
    augmenter = build_augmenter(seed)

    def domain(images, domain_seed):
        rng = np.random.default_rng(domain_seed)
        size = images.shape[1]
        side = crop if crop and crop < size else size
        # As tf.data's shuffle().repeat().batch(): a batch may span the end
        # of one pass over the images and the start of the next.
        order = np.empty(0, np.int64)
        while True:
            while len(order) < batch_size:
                order = np.concatenate([order, rng.permutation(len(images))])
            chosen, order = order[:batch_size], order[batch_size:]
            batch = []
            for index in chosen:
                top, left = rng.integers(0, size - side + 1, 2)
                batch.append(images[index, top:top + side, left:left + side])
            yield np.stack(batch).astype(np.float32)

    def double(batch):
        views = np.clip(np.asarray(augmenter(batch, training=True), np.float32), -1.0, 1.0)
        both = np.concatenate([batch, views], axis=0)
        return np.repeat(both, channels, axis=-1) if channels > 1 else both

    for mri_batch, ct_batch in zip(domain(mri, seed + 10), domain(ct, seed + 20)):
        yield double(mri_batch), double(ct_batch)
