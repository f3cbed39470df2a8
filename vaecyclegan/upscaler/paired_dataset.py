"""Real low/high-resolution pairs for the upscaler, from a folder.

`DIR/hr` (or `HR`, `gt`, `GT`) and `DIR/lr` (or `LR`, `lq`, `LQ`) hold
images paired by file name; a low-resolution name may carry BasicSR's
`x4` suffix (`0001x4.png` pairs with `0001.png`). Each high-resolution
image must be exactly `scale` times its partner's size. Every tenth pair
(by name) is held out for evaluation when there are at least ten.
"""

import logging
import os

import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.image_format import list_images, read_grey

HR_NAMES = ("hr", "HR", "gt", "GT")
LR_NAMES = ("lr", "LR", "lq", "LQ")
HOLD_OUT_EVERY = 10

logger = logging.getLogger(__name__)


def _subfolder(folder, names):
    for name in names:
        if os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise InputError(folder, f"no {'/'.join(names)} subfolder (real pairs need {HR_NAMES[0]}/ "
                     f"and {LR_NAMES[0]}/)")


def _grey_0_1(path):
    pixels = read_grey(path)
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def load_sr_pairs(folder, scale, patch=None):
    """Reads the pairs of `folder`.

    Args:
        folder: the pairs' folder (`hr/` and `lr/` inside).
        scale: the factor between a pair's images.
        patch: the high-resolution training crop's side; each pair's
            low-resolution image must hold one (`patch // scale` a side),
            checked here, before training (None: not checked).

    Returns:
        `(train, held_out)`: lists of `(name, low, high)` with grey float32
        images in [0, 1].

    Raises:
        InputError: missing subfolders, no pair, two images of one name
            on a side, or a pair whose sizes do not differ by `scale`.
    """
    if not os.path.isdir(folder):
        raise InputError(folder, "is a file, not a folder of pairs" if os.path.isfile(folder)
                         else "folder of pairs not found")
    hr_dir, lr_dir = _subfolder(folder, HR_NAMES), _subfolder(folder, LR_NAMES)
    highs = _by_stem(list_images(hr_dir), lambda stem: stem, "high-resolution")
    lows = _by_stem(list_images(lr_dir), lambda stem: (
        stem[:-len(f"x{scale}")] if stem.endswith(f"x{scale}") else stem), "low-resolution")
    pairs = []
    for stem, low_path in lows.items():
        if stem not in highs:
            continue
        low, high = _grey_0_1(low_path), _grey_0_1(highs[stem])
        if high.shape != (low.shape[0] * scale, low.shape[1] * scale):
            raise InputError(highs[stem], f"is {high.shape[1]}x{high.shape[0]}, not x{scale} of "
                             f"{low_path} ({low.shape[1]}x{low.shape[0]})")
        if patch and min(low.shape) < patch // scale:
            raise InputError(low_path, f"low-resolution image {low.shape[1]}x{low.shape[0]} is "
                             f"smaller than the {patch // scale}-pixel training patch")
        pairs.append((stem, low, high))
    if not pairs:
        raise InputError(folder, f"no file name is in both {hr_dir} and {lr_dir}")
    for side, paths, other in (("high", highs, lows), ("low", lows, highs)):
        alone = sorted(os.path.basename(paths[stem]) for stem in paths if stem not in other)
        if alone:
            # Said, not refused: the pairs there are still real pairs.
            logger.info("%d %s-resolution image(s) without a partner, not used: %s", len(alone),
                        side, ", ".join(alone[:5]) + (", ..." if len(alone) > 5 else ""))
    if len(pairs) < HOLD_OUT_EVERY:
        return pairs, []
    held = [p for i, p in enumerate(pairs) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    return [p for i, p in enumerate(pairs) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1], held


def _by_stem(paths, stem_of, label):
    """`{stem: path}` in the listing's order; two images of one stem (say
    `0001.png` and `0001.tif`) are refused, not one of them picked."""
    found = {}
    for path in paths:
        stem = stem_of(os.path.splitext(os.path.basename(path))[0])
        if stem in found:
            raise InputError(path, f"two {label} images of one name: this and "
                             f"{os.path.basename(found[stem])}; keep one")
        found[stem] = path
    return found


def make_paired_sr_dataset(pairs, patch, scale, batch_size, channels=3, seed=0):
    """Yields `(low_res, high_res)` batches of aligned random crops.

    Args:
        pairs: `(name, low, high)` from `load_sr_pairs` given `patch`, so
            that every low-resolution image holds `patch // scale` a side.
        patch: high-resolution crop side, divisible by `scale`.
        scale: the factor between a pair's images (the `scale` given to
            `load_sr_pairs`).
        batch_size: pairs of crops per batch.
        channels: channels the network takes (grey is repeated).
        seed: makes the pairs drawn, the crops and the flips reproducible.
    """
    import tensorflow as tf  # here: training on JAX reads pairs without it

    small = patch // scale

    def crops():
        rng = np.random.default_rng(seed)
        while True:
            _, low, high = pairs[rng.integers(len(pairs))]
            top = rng.integers(low.shape[0] - small + 1)
            left = rng.integers(low.shape[1] - small + 1)
            low_patch = low[top:top + small, left:left + small]
            high_patch = high[top * scale:(top + small) * scale,
                              left * scale:(left + small) * scale]
            if rng.integers(2):
                low_patch, high_patch = low_patch[:, ::-1], high_patch[:, ::-1]
            yield (np.repeat(low_patch[..., None], channels, -1),
                   np.repeat(high_patch[..., None], channels, -1))

    signature = (tf.TensorSpec((small, small, channels), tf.float32),
                 tf.TensorSpec((patch, patch, channels), tf.float32))
    return (tf.data.Dataset.from_generator(crops, output_signature=signature)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
