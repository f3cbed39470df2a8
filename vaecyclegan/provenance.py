"""What `config.json`'s `training` record says about where weights came
from, shared by training and the ESRGAN converter."""

import platform

import keras
import numpy as np

import vaecyclegan

# The keys of the record that describe the upscaler's training alone.
UPSCALER_RECORD_KEYS = ("sr_steps", "sr_degradations", "sr_pairs", "sr_gan_steps")


def backend_versions():
    """The Keras backend and its library's version: TensorFlow's, or on
    JAX and PyTorch, theirs (TensorFlow may be absent there)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return {"keras_backend": "jax", "jax": jax.__version__}
    if backend == "torch":
        import torch

        return {"keras_backend": "torch", "torch": torch.__version__}
    import tensorflow as tf  # the backend in use

    return {"keras_backend": backend, "tensorflow": tf.__version__}


def library_versions():
    """The versions a weights folder records: this project, the backend,
    Keras, numpy and Python."""
    return {
        "vaecyclegan": vaecyclegan.__version__,
        **backend_versions(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
