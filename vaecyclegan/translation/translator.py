"""Applying a trained generator to images of any size, at the pixel scale
it was trained at: each slice is resampled to that scale, translated, and
returned on its own grid (through the RRDB-Net upscaler where its factor
fits, else by bicubic interpolation)."""

import os

import numpy as np

from vaecyclegan.io.intensity import stored_to_unit, unit_to_stored
from vaecyclegan.io.resampling import resample_planes, scaled_shape
from vaecyclegan.names import DIRECTIONS, WEIGHT_FILES
from vaecyclegan.networks import load_network, run_network
from vaecyclegan.training.progress import WorkProgress
from vaecyclegan.upscaler.tiling import TiledUpscaler

# Pixels a forward pass holds at most (or a larger tile's): the batch
# shrinks for large slices (eight 512-px slices at once held 7.6 GB, one
# 2.3 GB).
PASS_PIXELS = 1024 * 1024


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


def _tile_starts(length, tile, overlap):
    """Tile origins covering `length`, neighbours sharing `overlap` pixels."""
    if length <= tile:
        return [0]
    step = max(tile - overlap, 1)
    return list(range(0, length - tile, step)) + [length - tile]


def _ramp(length, overlap):
    """Blending weights of a tile along one axis: rising over `overlap`
    pixels at each end, never zero (a border pixel has one tile only)."""
    position = np.arange(length, dtype=np.float32)
    edge = np.minimum(position + 1, length - position) / (overlap + 1)
    return np.clip(edge, 1.0 / (overlap + 1), 1.0)


class Translator:
    """Runs one generator on grey images of any size.

    Args:
        generator: a generator `keras.Model`.
        stride: the size multiple the generator needs.
        channels: channels the generator takes (grey is repeated).
        tile: slices with a side above this are translated in tiles of
            this side (0: never).
        overlap: pixels shared by neighbouring tiles.
        pixel_scale: the `PixelScaleConfig` of the training slices; each
            slice is translated at that scale (None: at its own).
        upscaler: a `TiledUpscaler` that brings translations back to the
            input's grid when its factor is the one to undo (within 5 %);
            None, or another factor: bicubic interpolation.

    Example:
    >>> translator = Translator(g_target, stride=config.generator.stride, channels=3)
    >>> mri_pixels = np.zeros((37, 45), np.uint8)  # an 8-bit grey slice, any size
    >>> [ct_pixels] = translator.translate_stored([mri_pixels])  # uint8 in and out
    >>> ct_pixels.dtype, ct_pixels.shape
    (dtype('uint8'), (37, 45))
    >>> means, stds = translator.sample_stored([mri_pixels], samples=8)
    >>> stds[0].shape  # per pixel, in 8-bit grey levels
    (37, 45)
    >>> mri_volume_unit = np.zeros((2, 37, 45), np.float32)  # 2 slices in [-1, 1]
    >>> [ct_unit], [ct_std] = translator.translate_stacks([mri_volume_unit])
    >>> ct_unit.shape, ct_std
    ((2, 37, 45), None)
    """

    def __init__(self, generator, stride, channels, tile=1024, overlap=128, pixel_scale=None,
                 upscaler=None):
        self.generator = generator
        self.stride = stride
        self.channels = channels
        self.tile = tile
        self.overlap = overlap
        self.pixel_scale = pixel_scale
        self.upscaler = upscaler
        # Set by a caller that shows progress (`translate_stacks(progress=True)`).
        self._progress = None

    def factor_for(self, pixel_mm=None):
        """Input pixels per network pixel, `(rows, columns)`, for a slice of
        `pixel_mm` mm pixels (one number or `(rows, columns)`; None:
        unknown); (1, 1) without a pixel scale."""
        factor = 1.0 if self.pixel_scale is None else self.pixel_scale.factor_for(pixel_mm)
        return tuple(factor) if isinstance(factor, (tuple, list)) else (factor, factor)

    def return_path(self, factor):
        """How a translation made `factor` times smaller (one number, or
        `(rows, columns)`) comes back: "none", "upscaler" or "bicubic"."""
        factors = _pair(factor)
        if _same_scale(factors):
            return "none"
        if self.upscaler is not None and all(
                abs(f / self.upscaler.scale - 1.0) <= 0.05 for f in factors):
            return "upscaler"
        return "bicubic"

    def translate_unit(self, images, batch_size=8, sample=False):
        """Translates same-size 2-D images in [-1, 1].

        Slices with a side above `tile` go through overlapping tiles of
        `tile` pixels (memory then grows with the tile, not the slice),
        blended with linear ramps across each `overlap`. The generator's
        GroupNorm sees each tile's own statistics, so a tiled result is
        close to, not equal to, the whole-slice one; the ramps keep seams
        from showing.

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
        grid = self._tile_grid((height, width))
        if grid is None:
            return self._translate_whole(images, batch_size, sample)
        output = np.zeros(images.shape, np.float32)
        total = np.zeros((height, width), np.float32)
        rows, columns = grid
        for top in rows:
            for left in columns:
                bottom, right = min(top + self.tile, height), min(left + self.tile, width)
                weight = np.outer(_ramp(bottom - top, self.overlap),
                                  _ramp(right - left, self.overlap))
                tile = self._translate_whole(images[:, top:bottom, left:right], batch_size, sample)
                output[:, top:bottom, left:right] += tile * weight
                total[top:bottom, left:right] += weight
        return output / total

    def _translate_whole(self, images, batch_size, sample):
        count, height, width = images.shape
        # Large slices take fewer at a time: at most PASS_PIXELS a pass, or a
        # larger tile's, as tiling bounds memory for slices above the tile.
        budget = max(PASS_PIXELS, (self.tile or 0) ** 2)
        padded_pixels = (height + -height % self.stride) * (width + -width % self.stride)
        per_pass = max(1, min(batch_size, budget // padded_pixels))
        # Each pass is padded, repeated to the channels and averaged back on
        # its own, into one preallocated result: done for the whole stack at
        # once, a volume had held twelve copies of itself.
        output = np.empty((count, height, width), np.float32)
        for start in range(0, count, per_pass):
            padded = np.stack([pad_to_multiple(image, self.stride)
                               for image in images[start:start + per_pass]])
            batch = np.repeat(padded[..., None], self.channels, axis=-1)
            # training=True only switches the VAE sampler: the generator has
            # no batch statistics or dropout.
            translated = run_network(self.generator, batch, training=sample)
            output[start:start + len(batch)] = translated[:, :height, :width, :].mean(axis=-1)
            if self._progress is not None:
                self._progress.advance(len(batch))
        return output

    def _tile_grid(self, shape):
        """`(row starts, column starts)` of the tiles a slice of `shape` is
        translated in, or None where it goes whole."""
        if not self.tile or max(shape) <= self.tile:
            return None
        return (_tile_starts(shape[0], self.tile, self.overlap),
                _tile_starts(shape[1], self.tile, self.overlap))

    def _passes_per_slice(self, shape):
        """Forward passes a slice of `shape` takes: one, or one per tile."""
        grid = self._tile_grid(shape)
        return 1 if grid is None else len(grid[0]) * len(grid[1])

    def translate_stacks(self, stacks, batch_size=8, samples=1, pixel_mm=None, progress=False):
        """Translates stacks of slices in [-1, 1] at the training pixel scale;
        single slices of one size (2-D images) share forward passes.

        Args:
            stacks: arrays (slices, H, W) in [-1, 1], any sizes: a list, or
                any iterable (each is resampled to the training scale as
                it comes and let go once translated, so a generator of
                them never holds them all at full size).
            batch_size: slices per forward pass (fewer for large ones: a
                pass holds at most `PASS_PIXELS` pixels, or `tile` ** 2
                where that is more).
            samples: latent draws per slice; 1 is the deterministic
                translation (latent mean).
            pixel_mm: per stack, its pixel size in mm, or None where the
                file gives none (then `pixel_scale.resize_factor` applies).
            progress: show the slices translated so far when the work
                is long (`WorkProgress`).

        Returns:
            `(means, stds)`: per stack, on its own grid, the translation
            (the mean of the draws) in [-1, 1], and the per-pixel standard
            deviation of the draws in [-1, 1] units (None when `samples`
            is 1).
        """
        shapes, factors, shrunk = [], [], []
        for index, stack in enumerate(stacks):
            if pixel_mm and index >= len(pixel_mm):
                raise ValueError(f"pixel_mm has {len(pixel_mm)} entries, fewer than the stacks")
            factor = self.factor_for(pixel_mm[index] if pixel_mm else None)
            shapes.append(stack.shape[1:])
            factors.append(factor)
            shrunk.append(stack if _same_scale(factor)
                          else resample_planes(stack, scaled_shape(stack.shape[1:], factor)))
        if progress:
            self._progress = WorkProgress(
                sum(len(s) * self._passes_per_slice(s.shape[1:]) for s in shrunk)
                * max(samples, 1), "slice", "translating")
        try:
            means, stds = self._translate_as_given(shrunk, batch_size, samples)
        finally:
            if self._progress is not None:
                self._progress.close()
            self._progress = None
        for index, (shape, factor) in enumerate(zip(shapes, factors)):
            if not _same_scale(factor):
                means[index] = self._back_to_grid(means[index], shape, factor)
                if stds[index] is not None:
                    stds[index] = np.maximum(resample_planes(stds[index], shape), 0.0)
        return means, stds

    def describe(self, shape, pixel_mm=None):
        """One line on how a slice of `shape` (H, W) is translated."""
        factor = self.factor_for(pixel_mm)
        if _same_scale(factor):
            return f"{shape[1]}x{shape[0]} slices translated at their own pixel scale"
        height, width = scaled_shape(shape, factor)
        path = self.return_path(factor)
        back = f"the RRDB-Net x{self.upscaler.scale}" if path == "upscaler" else "bicubic"
        rows, columns = factor
        pixels = (f"{rows:.3g}" if f"{rows:.3g}" == f"{columns:.3g}"
                  else f"{columns:.3g} across by {rows:.3g} down")
        # Weights trained on images without spacing know a resize factor, not
        # a millimetre: a spaced slice is shrunk by it whatever its mm.
        scale = ("the training resize factor (the weights know no mm per pixel)"
                 if pixel_mm and not (self.pixel_scale and self.pixel_scale.mm_per_pixel)
                 else "the training pixel scale")
        return (f"{shape[1]}x{shape[0]} slices translated at {scale} "
                f"({width}x{height}, {pixels} input pixels a network pixel), returned to "
                f"their grid by {back}")

    def _back_to_grid(self, translation, shape, factor):
        if self.return_path(factor) != "upscaler":
            return resample_planes(translation, shape)
        # The upscaler works in [0, 1] (ESRGAN's range).
        planes = [self.upscaler.upscale((plane + 1.0) / 2.0) * 2.0 - 1.0
                  for plane in translation]
        return resample_planes(np.stack(planes), shape)

    def _translate_as_given(self, stacks, batch_size, samples):
        """Translates `stacks` (a list, emptied as it goes: each stack is
        let go once translated): single slices of one size share forward
        passes; a stack of several slices fills its own, so that no
        concatenated copy of a folder of volumes is ever held."""
        groups = {}
        for index, stack in enumerate(stacks):
            key = stack.shape[1:] if len(stack) == 1 else ("stack", index)
            groups.setdefault(key, []).append(index)
        counts = [len(stack) for stack in stacks]
        means, stds = [None] * len(stacks), [None] * len(stacks)
        for indices in groups.values():
            batch = (stacks[indices[0]] if len(indices) == 1
                     else np.concatenate([stacks[i] for i in indices]))
            for i in indices:
                stacks[i] = None
            mean, std = self._draws(batch, batch_size, samples)
            del batch
            start = 0
            for i in indices:
                count = counts[i]
                means[i] = mean[start:start + count]
                stds[i] = None if std is None else std[start:start + count]
                start += count
        return means, stds

    def _draws(self, batch, batch_size, samples):
        """`(mean, std)` of `samples` translations of `batch` (std None for
        one, the latent mean's): a running mean and sum of squared
        deviations (Welford), so memory holds three results, not every
        draw."""
        if samples <= 1:
            return self.translate_unit(batch, batch_size), None
        mean = squares = None
        for draw_count in range(1, samples + 1):
            draw = self.translate_unit(batch, batch_size, sample=True)
            if mean is None:
                mean, squares = draw, np.zeros_like(draw)
                continue
            # In place where it can be: a whole volume per temporary.
            delta = draw - mean
            delta /= draw_count
            mean += delta
            delta *= draw_count
            draw -= mean
            draw *= delta
            squares += draw
            del draw, delta  # not alive beside the next draw
        squares /= samples
        return mean, np.sqrt(squares, out=squares)

    def translate_stored(self, images, batch_size=8):
        """Translates 8- or 16-bit images deterministically, each into its own
        bit depth, linearly over the full scale of that depth.

        Args:
            images: a list of 2-D `uint8` / `uint16` arrays of any sizes.
            batch_size: images per forward pass (as `translate_stacks`).

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


def make_translator(generator, config, rrdbnet=None, resample="auto", tile=1024, overlap=128):
    """A `Translator` for `generator` at the pixel scale of `config`.

    Args:
        generator: the direction's generator (`g_target` for MRI -> CT,
            `g_source` for CT -> MRI), built from `config`.
        config: the weights' `ModelConfig`.
        rrdbnet: the weights' trained RRDB-Net, or None.
        resample: "auto" (back through `rrdbnet` where its factor fits,
            else bicubic), "bicubic", or "off" (each slice translated at its
            own pixel scale, as weights without a recorded scale are).
        tile: slices with a side above this many pixels, once at the
            training pixel scale, are translated in tiles of this side
            (0: never).
        overlap: pixels neighbouring tiles share and blend over.
    """
    upscaler = None
    if rrdbnet is not None and resample == "auto":
        upscaler = TiledUpscaler(rrdbnet, config.rrdbnet.scale, config.channels)
    return Translator(generator, config.generator.stride, config.channels, tile, overlap,
                      pixel_scale=None if resample == "off" else config.pixel_scale,
                      upscaler=upscaler)


def load_translator(weights_dir, direction, config, resample="auto", tile=1024, overlap=128,
                    rrdbnet=None):
    """`make_translator` for a direction's generator in `weights_dir`, with
    `rrdbnet` or, when `resample` is "auto", the folder's RRDB-Net if it
    has one.

    Args:
        weights_dir: a weights folder (`config.json` and the weight files).
        direction: "mri2ct" (`g_target`) or "ct2mri" (`g_source`).
        config: the folder's `ModelConfig` (`ModelConfig.load(weights_dir)`).
        resample, tile, overlap: as `make_translator`.
        rrdbnet: an RRDB-Net to use instead of the folder's (None: the
            folder's, where `resample` is "auto" and it has one).

    Returns:
        A `Translator`.

    Raises:
        InputError: the generator's (or the RRDB-Net's) weight file is
            missing or does not fit `config`.

    Example:
    >>> from vaecyclegan.networks import save_networks
    >>> written = save_networks({"g_target": g_target}, config, "weights")  # trained weights
    >>> translator = load_translator("weights", "mri2ct", config)
    >>> [ct_pixels] = translator.translate_stored([np.zeros((40, 48), np.uint8)])
    >>> ct_pixels.shape
    (40, 48)
    """
    generator = load_network(weights_dir, DIRECTIONS[direction], config)
    if rrdbnet is None and resample == "auto" and os.path.isfile(
            os.path.join(weights_dir, WEIGHT_FILES["rrdbnet"])):
        rrdbnet = load_network(weights_dir, "rrdbnet", config)
    return make_translator(generator, config, rrdbnet, resample, tile, overlap)


def _same_scale(factor):
    # Within 2 %, resampling would blur more than the scale differs.
    return all(abs(f - 1.0) <= 0.02 for f in _pair(factor))


def _pair(factor):
    """`(rows, columns)` of a factor given as one number or a pair."""
    return tuple(factor) if isinstance(factor, (tuple, list)) else (factor, factor)
