"""Keras HDF5 weight files, the format `model.save_weights("x.h5")` wrote in Keras 2.

Keras 3 still *reads* this format with a plain `model.load_weights("x.h5")`
(order-based, `keras.src.legacy.saving.legacy_h5_format`), and so does
tf-keras 2.x, but Keras 3 refuses to *write* a name that does not end in
`.weights.h5`. So this module writes it, exactly as tf-keras lays it out:

- root attributes `layer_names` (every layer of `model.layers`, in order),
  `backend` and `keras_version`;
- one group per layer (created in sorted-name order, as tf-keras does) with
  an attribute `weight_names` (`"<layer>/<weight>:0"`, trainable weights
  first) and one dataset per weight at `<layer>/<layer>/<weight>:0`;
- a `top_level_model_weights` group for weights owned by the model itself;
- attributes longer than an HDF5 object header split into `name0`, `name1`...

Loading checks the file against the model first, so that weights of another
architecture are refused with a message naming the layer and both shapes.
"""

import h5py
import keras
import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path

# HDF5 object headers hold at most 64 KiB; Keras splits longer attributes
# into name0, name1, ... and so does this module.
HDF5_OBJECT_HEADER_LIMIT = 64512


def _save_attribute(group, name, values):
    chunks = [values]
    while any(np.asarray(chunk).nbytes > HDF5_OBJECT_HEADER_LIMIT for chunk in chunks):
        chunks = np.array_split(np.asarray(values), len(chunks) + 1)
    if len(chunks) == 1:
        group.attrs[name] = values  # a plain list, exactly as tf-keras stores it
    else:
        for index, chunk in enumerate(chunks):
            group.attrs[f"{name}{index}"] = chunk


def _load_attribute(group, name):
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, index = [], 0
        while f"{name}{index}" in group.attrs:
            values += list(group.attrs[f"{name}{index}"])
            index += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _legacy_weights(layer):
    # Keras 2's order in HDF5 files: trainable first, then non-trainable.
    return layer.trainable_weights + layer.non_trainable_weights


def _weight_name(layer, variable):
    return f"{layer.name}/{variable.name}:0"


def save_weights_h5(model, path):
    """Writes `model`'s weights to `path` in the Keras 2 HDF5 layout, atomically.

    Args:
        model: a built `keras.Model`.
        path: destination, normally ending in `_weights.h5`.

    Example:
    >>> save_weights_h5(g_target, "weights/g_target_weights.h5")
    >>> g_target.load_weights("weights/g_target_weights.h5")  # plain Keras
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _save_attribute(f, "layer_names", [layer.name.encode("utf8") for layer in model.layers])
            f.attrs["backend"] = keras.backend.backend().encode("utf8")
            f.attrs["keras_version"] = str(keras.__version__).encode("utf8")
            for layer in sorted(model.layers, key=lambda item: item.name):
                group = f.create_group(layer.name)
                weights = _legacy_weights(layer)
                names = [_weight_name(layer, w) for w in weights]
                _save_attribute(group, "weight_names", [n.encode("utf8") for n in names])
                _save_weight_values(group, names, weights)
            # Weights owned by the model itself, not by a layer: none in a
            # functional model, but tf-keras always writes the group.
            in_layers = {id(w) for layer in model.layers for w in layer.weights}
            top_level = [w for w in model.weights if id(w) not in in_layers]
            group = f.create_group("top_level_model_weights")
            names = [f"{model.name}/{w.name}:0" for w in top_level]
            _save_attribute(group, "weight_names", [n.encode("utf8") for n in names])
            _save_weight_values(group, names, top_level)


def _save_weight_values(group, names, weights):
    for name, weight in zip(names, weights):
        group.create_dataset(name, data=keras.ops.convert_to_numpy(weight))


# Keras 3's `model.save_weights` writes only its own layout (and only to
# names ending in .weights.h5); a fine-tuned network saved that way and
# renamed was "not a Keras weights file".
KERAS3_FORMAT = ("a Keras 3 '.weights.h5' file (model.save_weights); these weight files keep "
                 "Keras 2's HDF5 layout: save with "
                 "vaecyclegan.io.weight_files.save_weights_h5(model, path)")


def read_weight_shapes(path):
    """Returns `[(layer_name, [(weight_name, shape), ...]), ...]` for the
    layers of a Keras HDF5 weights file that hold weights, in file order.

    Raises:
        InputError: the file is missing, not HDF5, or not a weights file.
    """
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise InputError(path, "weights file not found") from None
    except OSError:
        raise InputError(path, "not an HDF5 weights file (unreadable)") from None
    with f:
        if "model_weights" in f and not _load_attribute(f, "layer_names"):
            f = f["model_weights"]
        layer_names = _load_attribute(f, "layer_names")
        if not layer_names and "layers" in f and "vars" in f:
            raise InputError(path, KERAS3_FORMAT)
        if not layer_names:
            raise InputError(path, "HDF5 file has no 'layer_names': not a Keras weights file")
        layers = []
        for layer_name in layer_names:
            if layer_name not in f:
                raise InputError(path, f"layer '{layer_name}' is listed but has no group")
            group = f[layer_name]
            if not isinstance(group, h5py.Group):
                raise InputError(path, f"layer '{layer_name}' is a dataset, not a group of "
                                 "weights")
            names = _load_attribute(group, "weight_names")
            missing = [n for n in names or () if not isinstance(group.get(n), h5py.Dataset)]
            if missing:
                raise InputError(path, f"layer '{layer_name}' lists weight '{missing[0]}' but "
                                 "holds no such array")
            if names:
                layers.append((layer_name, [(n, tuple(group[n].shape)) for n in names]))
        return layers


def check_weights_fit(model, path):
    """Raises `InputError` unless `path` holds weights for exactly this model.

    The message names the first layer that differs and both shapes, e.g.
    "layer 'down1_conv' weight 'kernel' has shape (3, 3, 8, 16) in the file,
    the model built from config.json expects (3, 3, 16, 32)".
    """
    file_layers = read_weight_shapes(path)
    model_layers = [layer for layer in model.layers if _legacy_weights(layer)]
    for index, layer in enumerate(model_layers):
        if index >= len(file_layers):
            raise InputError(
                path,
                f"file has {len(file_layers)} layers with weights, the model "
                f"'{model.name}' needs {len(model_layers)} (first missing: '{layer.name}')",
            )
        file_name, file_weights = file_layers[index]
        weights = _legacy_weights(layer)
        if file_name != layer.name or len(file_weights) != len(weights):
            raise InputError(
                path,
                f"layer #{index} is '{file_name}' with {len(file_weights)} weights in the "
                f"file, the model '{model.name}' has '{layer.name}' with {len(weights)}",
            )
        for (_, file_shape), variable in zip(file_weights, weights):
            model_shape = tuple(variable.shape)
            if file_shape != model_shape:
                raise InputError(
                    path,
                    f"layer '{layer.name}' weight '{variable.name}' has shape "
                    f"{file_shape} in the file, the model '{model.name}' expects {model_shape}",
                )
    if len(file_layers) > len(model_layers):
        raise InputError(
            path,
            f"file has {len(file_layers)} layers with weights, the model "
            f"'{model.name}' needs {len(model_layers)} "
            f"(first extra: '{file_layers[len(model_layers)][0]}')",
        )


def load_weights_h5(model, path):
    """Checks that `path` fits `model`, then loads it with plain `model.load_weights`.

    Args:
        model: a `keras.Model` built from the same config as the file.
        path: a Keras HDF5 weights file.

    Raises:
        InputError: missing, unreadable or mismatched file.
    """
    check_weights_fit(model, path)
    model.load_weights(str(path))
