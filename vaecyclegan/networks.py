"""The five networks of a config, and their weight files.

`build_network(config, name)` builds `g_target` (MRI -> CT), `g_source`
(CT -> MRI), `d_source` (judges MRI), `d_target` (judges CT) or `rrdbnet`
as a functional `keras.Model`; `load_network` adds the weights of a
weights folder. Nothing here imports TensorFlow: the networks are Keras
layers and `keras.ops`.
"""

import os

from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.weight_files import load_weights_h5, save_weights_h5
from vaecyclegan.names import DIRECTIONS, TRANSLATION_NETWORKS, WEIGHT_FILES  # noqa: F401 (re-exported)
from vaecyclegan.translation.multiscale_patchgan_discriminator import (
    build_multiscale_patchgan_discriminator,
)
from vaecyclegan.translation.vae_unet_generator import build_vae_unet_generator
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet


def build_network(config, name):
    """Builds one of the five networks by its project name.

    Args:
        config: a `ModelConfig`.
        name: a key of `WEIGHT_FILES`.
    """
    if name in ("g_target", "g_source"):
        return build_vae_unet_generator(config.generator, config.channels, name=name)
    if name in ("d_source", "d_target"):
        return build_multiscale_patchgan_discriminator(
            config.discriminator, config.channels, name=name
        )
    if name == "rrdbnet":
        return build_rrdbnet(config.rrdbnet, config.channels, name=name)
    raise ValueError(f"unknown network {name!r}; expected one of {sorted(WEIGHT_FILES)}")


def save_networks(networks, config, weights_dir):
    """Writes each network's weight file and `config.json`, each atomically.

    Args:
        networks: dict from project names to models (any subset of the five).
        config: the `ModelConfig` they were built from.
        weights_dir: destination folder.

    Returns:
        The paths written.
    """
    paths = []
    for name, model in networks.items():
        path = os.path.join(weights_dir, WEIGHT_FILES[name])
        save_weights_h5(model, path)
        paths.append(path)
    paths.append(config.save(weights_dir))
    return paths


def load_network(weights_dir, name, config=None):
    """Builds a network from `config.json` and loads its weight file.

    Raises:
        InputError: missing config or weights, or weights that do not fit.
    """
    config = config or ModelConfig.load(weights_dir)
    model = build_network(config, name)
    path = os.path.join(weights_dir, WEIGHT_FILES[name])
    if not os.path.isfile(path):
        raise InputError(path, "weights file not found (train first, or check --weights-dir)")
    load_weights_h5(model, path)
    return model
