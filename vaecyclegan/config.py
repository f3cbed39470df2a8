"""Architecture and intensity settings, and `config.json`.

`ModelConfig` is everything needed to rebuild the five networks and to map
image intensities the way training did. `infer.py` reads it back from
`config.json`, so a weights folder is self-describing.
"""

import dataclasses
import json
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
    """

    filters: int = 64
    max_filters: int = 512
    num_downsamples: int = 4
    num_res_blocks: int = 6
    latent_channels: int = 256
    norm_groups: int = 32
    seed: int = 0

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
class ModelConfig:
    """Everything `config.json` holds.

    Args:
        image_size: training image side in pixels (the networks themselves
            take any size divisible by their stride).
        channels: image channels; grey images are repeated to fill them.
        generator, discriminator, rrdbnet, intensity: the sub-configs.
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
    domains: dict = dataclasses.field(
        default_factory=lambda: {"source": "MRI", "target": "CT"}
    )
    training: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["intensity"]["ct_window_hu"] = list(self.intensity.ct_window_hu)
        data["intensity"]["mri_percentiles"] = list(self.intensity.mri_percentiles)
        return {"format_version": CONFIG_FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        version = data.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"config format_version {version!r} is not supported "
                f"(this vaecyclegan reads version {CONFIG_FORMAT_VERSION})"
            )
        subconfigs = {
            "generator": GeneratorConfig,
            "discriminator": DiscriminatorConfig,
            "rrdbnet": RRDBNetConfig,
            "intensity": IntensityConfig,
        }
        for key, sub_cls in subconfigs.items():
            if key in data:
                data[key] = sub_cls(**data[key])
        intensity = data.get("intensity")
        if intensity is not None:
            intensity.ct_window_hu = tuple(intensity.ct_window_hu)
            intensity.mri_percentiles = tuple(intensity.mri_percentiles)
        return cls(**data)

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
                return cls.from_dict(json.load(f))
        except (ValueError, TypeError) as error:
            raise InputError(path, f"not a vaecyclegan config: {error}") from None
