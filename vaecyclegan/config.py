"""Architecture and intensity settings, and `config.json`.

`ModelConfig` is everything needed to rebuild the five networks and to map
image intensities the way training did. `infer.py` reads it back from
`config.json`, so a weights folder is self-describing.
"""

import dataclasses
import difflib
import json
import math
import numbers
import os

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_write_text

CONFIG_FORMAT_VERSION = 1
CONFIG_FILENAME = "config.json"


@dataclasses.dataclass
class GeneratorConfig:
    """VAE U-Net generator hyperparameters.

    Args:
        filters: channels of the full-resolution level; doubled per level.
        max_filters: cap on the channels of any level.
        num_downsamples: number of stride-2 levels; the network's stride is
            `2 ** num_downsamples`.
        num_res_blocks: residual blocks at the bottleneck, half before the
            latent sampling and half after it.
        latent_channels: channels of the mu / log-variance maps.
        norm_groups: groups of every GroupNormalization (clipped to the
            channel count where a level has fewer channels).
        seed: seed of the latent sampler's `keras.random.SeedGenerator`.
        levels_without_skip: decoder levels, counted from full resolution,
            that get no skip connection from the encoder (0: every level
            has its skip, the plain U-Net; `num_downsamples`: none has).
            A full-resolution skip can carry MRI intensities straight to
            the CT output, which draws bright scalp where CT has bright
            bone.
    """

    filters: int = 64
    max_filters: int = 512
    num_downsamples: int = 4
    num_res_blocks: int = 6
    latent_channels: int = 256
    norm_groups: int = 32
    seed: int = 0
    levels_without_skip: int = 0

    @property
    def stride(self):
        return 2**self.num_downsamples


@dataclasses.dataclass
class DiscriminatorConfig:
    """Multi-scale PatchGAN hyperparameters.

    Args:
        filters: channels of each branch's first convolution.
        max_filters: cap on the channels of any convolution.
        num_layers: stride-2 convolutions per branch.
        num_scales: independent branches; branch `s` sees the input
            average-pooled by `2 ** s`.
        norm_groups: groups of every GroupNormalization.
    """

    filters: int = 64
    max_filters: int = 512
    num_layers: int = 3
    num_scales: int = 4
    norm_groups: int = 32


@dataclasses.dataclass
class RRDBNetConfig:
    """ESRGAN RRDB-Net hyperparameters (names as in ESRGAN's `RRDBNet`).

    Args:
        scale: upscaling factor, 4 (ESRGAN) or 2 (BasicSR's pixel-unshuffle
            input, then the same two x2 stages).
        num_feat: `nf`, trunk channels.
        num_block: `nb`, number of RRDB blocks.
        num_grow_ch: `gc`, growth channels inside a dense block.
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32


@dataclasses.dataclass
class IntensityConfig:
    """How scanner intensities map to the networks' [-1, 1].

    Args:
        ct_window_hu: Hounsfield units mapped to -1 and +1. The default,
            -1000 to 2000 HU, keeps air, soft tissue and cortical bone apart;
            narrower brain windows would clip the skull the model must learn.
        mri_percentiles: robust percentiles of an MRI image (or volume) mapped
            to -1 and +1.
    """

    ct_window_hu: tuple = (-1000.0, 2000.0)
    mri_percentiles: tuple = (0.5, 99.5)


@dataclasses.dataclass
class PixelScaleConfig:
    """The pixel scale the translators were trained at, so that inference
    shows them anatomy at the size they learned it.

    Args:
        resize_factor: input pixels per network pixel for slices that carry
            no spacing (image files): 4.0 when 256-px images were trained
            on at 64 px, 1.0 for native resolution (or crops of it).
        mm_per_pixel: millimetres per network pixel of the training slices
            that carried a spacing (DICOM, NIfTI); None when none did. A
            slice with a spacing is resampled to it; without one, by
            `resize_factor`.

    Example:
    >>> PixelScaleConfig(resize_factor=4.0).factor_for(None)
    4.0
    >>> PixelScaleConfig(mm_per_pixel=2.0).factor_for(0.5)
    4.0
    """

    resize_factor: float = 1.0
    mm_per_pixel: float = None

    def factor_for(self, pixel_mm):
        """Input pixels per network pixel for a slice whose pixels measure
        `pixel_mm` millimetres: one number, or `(rows, columns)` for which
        the factor is a pair too (None: unknown; the resize factor)."""
        if pixel_mm and self.mm_per_pixel:
            if isinstance(pixel_mm, (tuple, list)):
                return tuple(float(self.mm_per_pixel) / float(mm) for mm in pixel_mm)
            return float(self.mm_per_pixel) / float(pixel_mm)
        return float(self.resize_factor)


@dataclasses.dataclass
class ModelConfig:
    """Everything `config.json` holds.

    Args:
        image_size: training image side in pixels (the networks themselves
            take any size divisible by their stride).
        channels: image channels; grey images are repeated to fill them.
        generator, discriminator, rrdbnet, intensity, pixel_scale: the
            sub-configs (`pixel_scale` defaults to native resolution, as
            weights written before it existed were applied).
        domains: which modality is the source and which the target.
        training: provenance of the weights (dataset, steps, seed, library
            versions); free-form and never used to build anything.
    """

    image_size: int = 256
    channels: int = 3
    generator: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = dataclasses.field(
        default_factory=DiscriminatorConfig
    )
    rrdbnet: RRDBNetConfig = dataclasses.field(default_factory=RRDBNetConfig)
    intensity: IntensityConfig = dataclasses.field(default_factory=IntensityConfig)
    pixel_scale: PixelScaleConfig = dataclasses.field(default_factory=PixelScaleConfig)
    domains: dict = dataclasses.field(
        default_factory=lambda: {"source": "MRI", "target": "CT"}
    )
    training: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["intensity"]["ct_window_hu"] = list(self.intensity.ct_window_hu)
        data["intensity"]["mri_percentiles"] = list(self.intensity.mri_percentiles)
        return {"format_version": CONFIG_FORMAT_VERSION, **data}

    def validate(self):
        """Checks every field; returns `self`.

        Raises:
            ValueError: the first field out of place, named as in
                `config.json` (`generator.filters must be a positive
                integer, not -8`).
        """
        for section, sub_cls in _SUBCONFIGS.items():
            value = getattr(self, section)
            if not isinstance(value, sub_cls):
                raise ValueError(f"{section} must be an object of {_names(sub_cls)}, "
                                 f"not {_show(value)}")
            for name, check in _FIELD_CHECKS[section].items():
                check(getattr(value, name), f"{section}.{name}")
        _positive_int(self.image_size, "image_size")
        _positive_int(self.channels, "channels")
        stride = self.generator.stride
        if self.image_size % stride:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of the generator's stride "
                f"{stride} (2 ** generator.num_downsamples = 2 ** "
                f"{self.generator.num_downsamples})")
        if self.generator.levels_without_skip > self.generator.num_downsamples:
            raise ValueError(
                f"generator.levels_without_skip {self.generator.levels_without_skip} is more "
                f"than the generator's {self.generator.num_downsamples} levels "
                f"(generator.num_downsamples)")
        if not isinstance(self.domains, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.domains.items()):
            raise ValueError(f"domains must be an object of strings (e.g. "
                             f'{{"source": "MRI", "target": "CT"}}), not {_show(self.domains)}')
        if not isinstance(self.training, dict):
            raise ValueError(f"training must be an object, not {_show(self.training)}")
        return self

    @classmethod
    def from_dict(cls, data):
        """A validated `ModelConfig` from `to_dict`'s dictionary (a parsed
        `config.json`); missing keys take their defaults.

        Raises:
            ValueError: an unsupported format version, an unknown key, or a
                field of the wrong type or out of range (`validate`).
        """
        if not isinstance(data, dict):
            raise ValueError(f"the config must be a JSON object, not {_show(data)}")
        data = dict(data)
        version = data.pop("format_version", None)
        if type(version) is not int or version != CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"config format_version {version!r} is not supported "
                f"(this vaecyclegan reads version {CONFIG_FORMAT_VERSION})"
            )
        _refuse_unknown_keys(data, cls, "")
        for key, sub_cls in _SUBCONFIGS.items():
            if key in data:
                if not isinstance(data[key], dict):
                    raise ValueError(f"{key} must be an object of {_names(sub_cls)}, "
                                     f"not {_show(data[key])}")
                _refuse_unknown_keys(data[key], sub_cls, f"{key}.")
                data[key] = sub_cls(**data[key])
        config = cls(**data).validate()
        intensity = config.intensity
        intensity.ct_window_hu = tuple(intensity.ct_window_hu)
        intensity.mri_percentiles = tuple(intensity.mri_percentiles)
        return config

    def save(self, weights_dir):
        path = os.path.join(weights_dir, CONFIG_FILENAME)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, weights_dir):
        path = os.path.join(weights_dir, CONFIG_FILENAME)
        if not os.path.isfile(path):
            raise InputError(path, "no config.json here; train first or pass --weights-dir")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            raise InputError(path, f"not a vaecyclegan config: {error}") from None
        except OSError as error:
            raise InputError(path, f"cannot read it ({error.strerror or error})") from None
        try:
            return cls.from_dict(data)
        except ValueError as error:
            raise InputError(path, str(error)) from None


# Field-by-field checks of `ModelConfig.validate`. Each raises ValueError
# naming the field as `config.json` spells it. JSON's true and false are
# Python bools, which are ints: they are refused, as are floats such as 8.0.

def _show(value):
    """`value` as `config.json` spells it (true, null, "eight")."""
    try:
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    except (TypeError, ValueError):
        return repr(value)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _positive_int(value, name):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {_show(value)}")


def _non_negative_int(value, name):
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {_show(value)}")


def _seed(value, name):
    # keras.random.SeedGenerator keeps the seed in an int64 variable.
    if not _is_int(value) or not -2**63 <= value < 2**63:
        raise ValueError(f"{name} must be an integer (a 64-bit seed), not {_show(value)}")


def _upscale_factor(value, name):
    if not _is_int(value) or value not in (2, 4):
        raise ValueError(f"{name} must be 2 or 4, not {_show(value)}")


def _number_pair(value, name):
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(_is_finite_number(v) for v in value)):
        raise ValueError(f"{name} must be two finite numbers [low, high], not {_show(value)}")
    return value


def _positive_number(value, name):
    if not _is_finite_number(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, not {_show(value)}")


def _optional_positive_number(value, name):
    if value is not None:
        _positive_number(value, name)


def _window(value, name):
    low, high = _number_pair(value, name)
    if not low < high:
        raise ValueError(f"{name} must be [low, high] with low < high, not {_show(value)}")


def _percentiles(value, name):
    low, high = _number_pair(value, name)
    if not 0 <= low < high <= 100:
        raise ValueError(f"{name} must be [low, high] with 0 <= low < high <= 100, "
                         f"not {_show(value)}")


_SUBCONFIGS = {
    "generator": GeneratorConfig,
    "discriminator": DiscriminatorConfig,
    "rrdbnet": RRDBNetConfig,
    "intensity": IntensityConfig,
    "pixel_scale": PixelScaleConfig,
}

_FIELD_CHECKS = {
    "generator": {"filters": _positive_int, "max_filters": _positive_int,
                  "num_downsamples": _non_negative_int, "num_res_blocks": _non_negative_int,
                  "latent_channels": _positive_int, "norm_groups": _positive_int,
                  "seed": _seed, "levels_without_skip": _non_negative_int},
    "discriminator": {"filters": _positive_int, "max_filters": _positive_int,
                      "num_layers": _positive_int, "num_scales": _positive_int,
                      "norm_groups": _positive_int},
    "rrdbnet": {"scale": _upscale_factor, "num_feat": _positive_int,
                "num_block": _positive_int, "num_grow_ch": _positive_int},
    "intensity": {"ct_window_hu": _window, "mri_percentiles": _percentiles},
    "pixel_scale": {"resize_factor": _positive_number, "mm_per_pixel": _optional_positive_number},
}


def _names(cls):
    return ", ".join(field.name for field in dataclasses.fields(cls))


def _refuse_unknown_keys(data, cls, prefix):
    known = [field.name for field in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"known: {', '.join(known)}"
            raise ValueError(f"unknown key {prefix}{key} ({hint})")
