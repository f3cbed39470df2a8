"""The five networks of a config, and their weight files.

`build_network(config, name)` builds `g_target` (MRI -> CT), `g_source`
(CT -> MRI), `d_source` (judges MRI), `d_target` (judges CT) or `rrdbnet`
as a functional `keras.Model`; `load_network` adds the weights of a
weights folder; `run_network` applies one to numpy arrays for inference.
Nothing here imports TensorFlow: the networks are Keras layers and
`keras.ops`, and build, load and run on Keras' TensorFlow, JAX and PyTorch
backends with the same weight files.
"""

import contextlib
import os

import keras

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

    Returns:
        An untrained functional `keras.Model` named `name`: a generator
        (`build_vae_unet_generator`), a discriminator
        (`build_multiscale_patchgan_discriminator`) or the RRDB-Net
        (`build_rrdbnet`), for `config.channels` channels.

    Raises:
        ValueError: an unknown `name`.

    Example:
    >>> import numpy as np
    >>> g_target = build_network(config, "g_target")  # MRI -> CT
    >>> config.channels
    3
    >>> run_network(g_target, np.zeros((1, 32, 32, 3), "float32")).shape
    (1, 32, 32, 3)
    """
    with _initializer_scope():
        if name in ("g_target", "g_source"):
            return build_vae_unet_generator(config.generator, config.channels, name=name)
        if name in ("d_source", "d_target"):
            return build_multiscale_patchgan_discriminator(
                config.discriminator, config.channels, name=name
            )
        if name == "rrdbnet":
            return build_rrdbnet(config.rrdbnet, config.channels, name=name)
    raise ValueError(f"unknown network {name!r}; expected one of {sorted(WEIGHT_FILES)}")


def _initializer_scope():
    """On JAX, the initial weights drawn with JAX's unpartitionable threefry
    (its default before 0.5): XLA compiles the random initializer once per
    kernel shape, and the partitionable one took 3 to 4 times as long to
    compile on a 2-core CPU (a smoke generator built in 14 s instead of 4).
    Other initial values, equally random and seeded; the weights loaded into
    a network do not change. Elsewhere, nothing."""
    if keras.backend.backend() == "jax":
        import jax

        if hasattr(jax, "threefry_partitionable"):
            return jax.threefry_partitionable(False)
    return contextlib.nullcontext()


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

    Args:
        weights_dir: a weights folder (`config.json` and the weight files
            `save_networks` writes).
        name: a key of `WEIGHT_FILES`.
        config: the `ModelConfig` to build from (None: the folder's
            `config.json`).

    Returns:
        The built `keras.Model` with the folder's weights.

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


def run_network(model, inputs, training=False):
    """`model(inputs, training=training)` as numpy arrays, for inference on
    any Keras backend.

    On JAX the call is one `jax.jit` function of the weights and the input
    (compiled once per input shape, kept on the model): called eagerly,
    Keras on JAX compiles every operation for every new shape, which took
    two to three times as long for a generator. With `training=True` the
    sampler's seed state advances as in an eager call. On PyTorch the call
    runs under `torch.no_grad()`: a plain call records the autograd graph,
    keeping every activation alive until the outputs are converted.
    TensorFlow calls the model eagerly, as before.

    Args:
        model: a network of `build_network`.
        inputs: a numpy array (batch, H, W, channels).
        training: True makes the generators draw their latent samples.

    Returns:
        A numpy array, or a list of them for a model with several outputs.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        outputs = _run_jax(model, inputs, bool(training))
    elif backend == "torch":
        import torch

        with torch.no_grad():
            outputs = model(inputs, training=training)
    else:
        outputs = model(inputs, training=training)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def _run_jax(model, inputs, training):
    import jax

    # Kept on the model, past Keras' attribute tracking; retraced by jax for
    # each new input shape, never for new weights (they are arguments).
    compiled = model.__dict__.get("_vaecyclegan_jax_calls")
    if compiled is None:
        compiled = {}
        object.__setattr__(model, "_vaecyclegan_jax_calls", compiled)
    if training not in compiled:
        def call(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=training)

        compiled[training] = jax.jit(call)
    outputs, non_trainable = compiled[training](
        [variable.value for variable in model.trainable_variables],
        [variable.value for variable in model.non_trainable_variables], inputs)
    if training:  # the latent sampler's seed state
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value)
    return outputs
