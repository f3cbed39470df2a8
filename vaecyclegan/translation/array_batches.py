"""The translation stage's input without TensorFlow: the batches of
`dataset.make_unpaired_dataset` (each domain shuffled on its own and
repeated, an optional random crop, every batch doubled by an augmented view,
grey repeated to the networks' channels) drawn with numpy and OpenCV, for
training on JAX and PyTorch, where TensorFlow may not be installed. Same recipe and
distributions, other random draws than tf.data's for one seed.

The augmented view is `build_augmenter`'s geometry (flip, rotation, shift,
zoom, reflected edges, its ranges; for "flips" the flip alone, no warp) drawn
as one affine warp an image by
`cv2.warpAffine`, not by the Keras layers: on JAX those run op by op,
un-jitted, and on a GPU each op is a launch and each batch a round trip,
which made the input, not the network, the step's cost (the quick
networks at 256 px on an H200: 56 ms a batch through the Keras layers
against 0.5 through OpenCV, 193 ms a step before, 86 after)."""

import cv2
import numpy as np

from vaecyclegan.translation.dataset import ROTATION, SHIFT, ZOOM, check_augmentation


def augmented_views(batch, rng, augmentation="affine"):
    """`batch` (n, H, W, C) float32, each image under its own random
    geometry: a left-right flip with probability 1/2, then (for "affine",
    not for "flips"; `names.AUGMENTATIONS`) a rotation about
    the centre of up to `ROTATION` of a turn, a zoom by a factor 1/(1 + z),
    z up to `ZOOM` either way (positive: out, as Keras' RandomZoom), and a
    shift of up to `SHIFT` of each side (made before the zoom, as Keras'
    layers make it), bilinear, edges reflected (d c b a | a b c d, Keras'
    "reflect"). One resampling where the Keras layers make three, so the
    views are a little sharper than theirs.

    Example:
    >>> views = augmented_views(mri, np.random.default_rng(0))
    >>> views.shape == mri.shape
    True
    """
    check_augmentation(augmentation)
    views = np.empty_like(batch)
    height, width = batch.shape[1:3]
    for index, image in enumerate(batch):
        if rng.random() < 0.5:
            image = image[:, ::-1]
        if augmentation == "flips":
            views[index] = image
            continue
        degrees = np.degrees(rng.uniform(-ROTATION, ROTATION) * 2 * np.pi)
        scale = 1.0 / (1.0 + rng.uniform(-ZOOM, ZOOM))
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, scale)
        # Keras shifts before it zooms, so the zoom scales the shift too.
        matrix[:, 2] += rng.uniform(-SHIFT, SHIFT, 2) * (width, height) * scale
        warped = cv2.warpAffine(np.ascontiguousarray(image), matrix, (width, height),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        views[index] = warped.reshape(views.shape[1:])
    return views


def unpaired_batches(mri, ct, batch_size, channels=3, seed=0, crop=None,
                     augmentation="affine"):
    """Yields `(mri_batch, ct_batch)` numpy arrays of `2 * batch_size` images.

    Args: as `make_unpaired_dataset`.

    Example:
    >>> mri.shape, ct.shape  # grey images in [-1, 1]
    ((4, 32, 32, 1), (4, 32, 32, 1))
    >>> mri_batch, ct_batch = next(unpaired_batches(mri, ct, 4))
    >>> mri_batch.shape, ct_batch.shape  # 4 images and their views, in 3 channels
    ((8, 32, 32, 3), (8, 32, 32, 3))
    """
    augment_rng = np.random.default_rng(seed + 30)

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
        views = np.clip(augmented_views(batch, augment_rng, augmentation), -1.0, 1.0)
        both = np.concatenate([batch, views], axis=0)
        return np.repeat(both, channels, axis=-1) if channels > 1 else both

    for mri_batch, ct_batch in zip(domain(mri, seed + 10), domain(ct, seed + 20)):
        yield double(mri_batch), double(ct_batch)
