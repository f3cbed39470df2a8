"""A structure-consistency loss that ignores intensity: MIND descriptors.

A translator must move every edge of its input nowhere while remapping the
intensities on either side of it, inverting some of them (a T1 skull is a
dark band between bright scalp and grey brain; a CT skull is the brightest
thing in the slice). Comparing input and output pixel by pixel would fight
that; comparing their MIND descriptors (Heinrich et al. 2012, "MIND:
Modality independent neighbourhood descriptor"; used for unpaired
MR-to-CT synthesis by Yang et al. 2018, "Unpaired brain MR-to-CT synthesis
using a structure-constrained CycleGAN") does not.

For each pixel x and each of the four neighbours r:

    D_r(x)    = mean over the 3x3 patch p around x of (I(p) - I(p + r))^2
    V(x)      = mean over r of D_r(x)
    MIND_r(x) = exp(-D_r(x) / (V(x) + f * mean_x V)),  divided by its maximum over r

An affine remapping `a * I + b` (inversions, a < 0, included) scales every
D_r and V by a^2 and leaves the descriptor unchanged; a moved edge changes
it. The loss is the mean absolute difference of the two images'
descriptors. Written with slicing and `keras.ops` only, so that every Keras
backend computes the same numbers (pooling layers treat borders
differently from one backend to another).
"""

from keras import ops

NEIGHBOURS = ((0, 1), (1, 0), (0, -1), (-1, 0))
# The floor under V, as a fraction of V's mean over the image: differences
# far below the image's typical ones (noise in flat regions) give a
# descriptor near 1 for every neighbour instead of amplified noise. A
# fraction of the image's own mean keeps the descriptor affine-invariant.
RELATIVE_FLOOR = 0.05
# Keeps a blank image's descriptor defined.
EPSILON = 1e-12


def _grey(images):
    # Channels-last images of repeated grey: their mean is the grey image.
    images = ops.cast(images, "float32")
    return ops.mean(images, axis=-1)


def _shifted(padded, dy, dx, height, width, margin):
    return padded[:, margin + dy:margin + dy + height, margin + dx:margin + dx + width]


def mind_descriptor(images):
    """The MIND descriptor of each pixel.

    Args:
        images: (batch, H, W, C) channels-last images (C channels averaged).

    Returns:
        float32 (batch, H, W, 4): one value in (0, 1] per neighbour.

    Example:
    >>> import numpy as np
    >>> descriptor = mind_descriptor(np.zeros((1, 8, 8, 3), "float32"))
    >>> tuple(descriptor.shape)
    (1, 8, 8, 4)
    """
    grey = _grey(images)
    height, width = grey.shape[1], grey.shape[2]
    margin = 2  # one for the neighbour, one for the patch around it
    padded = ops.pad(grey, ((0, 0), (margin, margin), (margin, margin)), mode="reflect")
    distances = []
    for dy, dx in NEIGHBOURS:
        # Squared differences on the image and a one-pixel ring around it.
        squared = ops.square(_shifted(padded, 0, 0, height + 2, width + 2, 1)
                             - _shifted(padded, dy, dx, height + 2, width + 2, 1))
        # The 3x3 patch mean of the squared differences, by nine slices.
        patch = sum(_shifted(squared, py, px, height, width, 1)
                    for py in (-1, 0, 1) for px in (-1, 0, 1)) / 9.0
        distances.append(patch)
    distances = ops.stack(distances, axis=-1)
    variance = ops.mean(distances, axis=-1, keepdims=True)
    floor = RELATIVE_FLOOR * ops.mean(variance, axis=(1, 2, 3), keepdims=True)
    descriptor = ops.exp(-distances / (variance + floor + EPSILON))
    return descriptor / ops.max(descriptor, axis=-1, keepdims=True)


def mind_loss(inputs, outputs):
    """Mean absolute difference of two image batches' MIND descriptors: 0
    when `outputs` is an affine remapping of `inputs`,
    larger the more edges appear, vanish or move.

    Args:
        inputs, outputs: (batch, H, W, C) images of one size.

    Returns:
        A float32 scalar.

    Example:
    >>> import numpy as np
    >>> mri = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    >>> float(mind_loss(mri, -0.5 * mri + 0.2)) < 1e-3
    True
    """
    return ops.mean(ops.abs(mind_descriptor(inputs) - mind_descriptor(outputs)))
