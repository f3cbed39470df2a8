import importlib
import os
import sys

import h5py
import keras
import numpy as np
import pytest

from vaecyclegan.config import DiscriminatorConfig, RRDBNetConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.weight_files import check_weights_fit, load_weights_h5, save_weights_h5
from vaecyclegan.networks import WEIGHT_FILES, build_network, load_network, save_networks


def _randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) * 0.1 for w in model.get_weights()])


@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_round_trip_through_plain_load_weights(tiny_config, tmp_path, name):
    model = build_network(tiny_config, name)
    _randomise(model)
    path = str(tmp_path / WEIGHT_FILES[name])
    save_weights_h5(model, path)

    fresh = build_network(tiny_config, name)
    fresh.load_weights(path)  # plain Keras 3, no project code
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.concatenate(
            [keras.ops.reshape(o, (-1,)) for o in keras.tree.flatten(model(x))], 0)),
        keras.ops.convert_to_numpy(keras.ops.concatenate(
            [keras.ops.reshape(o, (-1,)) for o in keras.tree.flatten(fresh(x))], 0)),
        atol=1e-6)


def test_file_has_keras2_layout(tiny_config, tmp_path):
    model = build_network(tiny_config, "g_target")
    path = str(tmp_path / "g.h5")
    save_weights_h5(model, path)
    with h5py.File(path, "r") as f:
        assert list(f.attrs["layer_names"]) == [layer.name for layer in model.layers]
        assert f.attrs["backend"] == "tensorflow"
        assert f.attrs["keras_version"] == keras.__version__
        names = list(f["down1_conv"].attrs["weight_names"])
        assert names == ["down1_conv/kernel:0", "down1_conv/bias:0"]
        assert f["down1_conv"]["down1_conv/kernel:0"].shape == (3, 3, 8, 16)
        assert list(f["latent_sample"].attrs["weight_names"]) == []


def test_save_networks_writes_all_files_and_config(tiny_config, tmp_path):
    networks = {name: build_network(tiny_config, name) for name in WEIGHT_FILES}
    save_networks(networks, tiny_config, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([*WEIGHT_FILES.values(), "config.json"])
    loaded = load_network(str(tmp_path), "g_source")
    for a, b in zip(networks["g_source"].get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_of_another_architecture_are_refused(tiny_config, tmp_path):
    path = str(tmp_path / "g_target_weights.h5")
    save_weights_h5(build_network(tiny_config, "g_target"), path)
    tiny_config.generator.filters = 16
    wider = build_network(tiny_config, "g_target")
    with pytest.raises(InputError) as error:
        load_weights_h5(wider, path)
    message = str(error.value)
    assert "g_target_weights.h5" in message
    assert "stem_conv" in message
    assert "(7, 7, 3, 8)" in message and "(7, 7, 3, 16)" in message


def test_a_file_of_fewer_or_more_layers_names_the_first_missing_or_extra(tiny_config,
                                                                          tmp_path):
    # Dropped, these checks let an IndexError or Keras' ValueError through.
    model = build_network(tiny_config, "d_source")
    path = str(tmp_path / "d.h5")
    save_weights_h5(model, path)
    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = [n.encode() for n in names[:-1]]
    with pytest.raises(InputError, match=f"first missing: '{names[-1]}'"):
        check_weights_fit(model, path)
    with h5py.File(path, "r+") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.copy(names[-1], "extra_layer")
        f.attrs["layer_names"] = [n.encode() for n in names + ["extra_layer"]]
    with pytest.raises(InputError, match="first extra: 'extra_layer'"):
        check_weights_fit(model, path)


def test_a_discriminator_file_is_refused_for_a_generator(tiny_config, tmp_path):
    path = str(tmp_path / "d.h5")
    save_weights_h5(build_network(tiny_config, "d_target"), path)
    with pytest.raises(InputError, match="layer #0 is 'scale0_conv0'.*'stem_conv'"):
        check_weights_fit(build_network(tiny_config, "g_target"), path)


def test_missing_and_non_hdf5_files_are_refused(tiny_config, tmp_path):
    model = build_network(tiny_config, "d_source")
    with pytest.raises(InputError, match="not found"):
        load_weights_h5(model, str(tmp_path / "absent.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5"):
        load_weights_h5(model, str(junk))


def test_a_network_saved_by_keras_3_itself_is_named_with_the_writer_to_use(tiny_config,
                                                                          tmp_path):
    # Fine-tuned in one's own code, saved with Keras 3's save_weights and
    # renamed: it had been "not a Keras weights file".
    model = build_network(tiny_config, "d_source")
    native = tmp_path / "d.weights.h5"
    model.save_weights(str(native))
    renamed = tmp_path / WEIGHT_FILES["d_source"]
    native.rename(renamed)
    with pytest.raises(InputError, match=r"a Keras 3 '\.weights\.h5' file .*save_weights_h5"):
        load_weights_h5(model, str(renamed))
    save_weights_h5(model, str(renamed))  # the writer it names
    load_weights_h5(model, str(renamed))


@pytest.mark.parametrize("damage, words", [
    ("weight", "lists weight 'down1_conv/kernel:0' but holds no such array"),
    ("group", "layer 'down1_conv' is a dataset, not a group of weights"),
])
def test_a_file_missing_a_listed_array_is_one_error(tiny_config, tmp_path, damage, words):
    # A KeyError traceback from h5py.
    model = build_network(tiny_config, "g_target")
    path = str(tmp_path / "g.h5")
    save_weights_h5(model, path)
    with h5py.File(path, "r+") as f:
        if damage == "weight":
            del f["down1_conv"]["down1_conv/kernel:0"]
        else:
            del f["down1_conv"]
            f.create_dataset("down1_conv", data=np.zeros(3))
    with pytest.raises(InputError, match=words):
        check_weights_fit(model, path)


def test_write_is_atomic_and_leaves_no_temporary_file(tiny_config, tmp_path):
    model = build_network(tiny_config, "d_source")
    path = tmp_path / "d_source_weights.h5"
    path.write_bytes(b"previous")
    # A write that fails half-way keeps the old file and leaves no temporary.
    original = keras.ops.convert_to_numpy

    def failing(value):
        raise RuntimeError("disk full")

    keras.ops.convert_to_numpy = failing
    try:
        with pytest.raises(RuntimeError):
            save_weights_h5(model, str(path))
    finally:
        keras.ops.convert_to_numpy = original
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["d_source_weights.h5"]


# --- the same files as tf-keras (Keras 2) writes and reads -------------------

def _import_with_tf_keras(module_names):
    """Imports project modules with `keras` bound to tf-keras instead."""
    tf_keras = pytest.importorskip("tf_keras")
    saved = {name: sys.modules.get(name) for name in ["keras", *module_names]}
    sys.modules["keras"] = tf_keras
    for name in module_names:
        sys.modules.pop(name, None)
    try:
        return [importlib.import_module(name) for name in module_names]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _tf_keras_builders():
    _, disc, rrdb = _import_with_tf_keras([
        "vaecyclegan.translation.group_normalization",
        "vaecyclegan.translation.multiscale_patchgan_discriminator",
        "vaecyclegan.upscaler.rrdbnet",
    ])
    return {
        "d_target": lambda: disc.build_multiscale_patchgan_discriminator(
            DiscriminatorConfig(filters=8, max_filters=32, num_layers=2, norm_groups=4),
            name="d_target"),
        "rrdbnet": lambda: rrdb.build_rrdbnet(
            RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4), name="rrdbnet"),
    }


def _keras3_builders():
    from vaecyclegan.translation.multiscale_patchgan_discriminator import (
        build_multiscale_patchgan_discriminator,
    )
    from vaecyclegan.upscaler.rrdbnet import build_rrdbnet

    return {
        "d_target": lambda: build_multiscale_patchgan_discriminator(
            DiscriminatorConfig(filters=8, max_filters=32, num_layers=2, norm_groups=4),
            name="d_target"),
        "rrdbnet": lambda: build_rrdbnet(
            RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4), name="rrdbnet"),
    }


def _layout(path):
    with h5py.File(path, "r") as f:
        layers = list(f.attrs["layer_names"])
        groups = {}
        for name in layers:
            weight_names = f[name].attrs["weight_names"]
            groups[name] = (weight_names.dtype.str, [
                (w, f[name][w].shape, f[name][w].dtype.str) for w in weight_names])
        return (layers, f.attrs["layer_names"].dtype.str, groups, sorted(f.attrs),
                f.attrs["backend"], sorted(f))


@pytest.mark.parametrize("name", ["d_target", "rrdbnet"])
def test_layout_equals_what_tf_keras_writes(tmp_path, name):
    tf_model = _tf_keras_builders()[name]()
    k3_model = _keras3_builders()[name]()
    tf_path, k3_path = str(tmp_path / "tf_keras.h5"), str(tmp_path / "ours.h5")
    tf_model.save_weights(tf_path)
    save_weights_h5(k3_model, k3_path)
    assert _layout(k3_path) == _layout(tf_path)


@pytest.mark.parametrize("name", ["d_target", "rrdbnet"])
def test_tf_keras_and_keras3_read_each_others_files(tmp_path, name):
    x = np.random.default_rng(2).uniform(0, 1, (1, 32, 32, 3)).astype("float32")

    def flat(outputs):
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return np.concatenate([np.asarray(o).ravel() for o in outputs])

    ours = _keras3_builders()[name]()
    _randomise(ours, seed=3)
    ours_path = str(tmp_path / "ours.h5")
    save_weights_h5(ours, ours_path)
    theirs = _tf_keras_builders()[name]()
    theirs.load_weights(ours_path)
    np.testing.assert_allclose(flat(theirs(x)), flat(ours(x)), atol=1e-5)

    _randomise(theirs, seed=4)
    theirs_path = str(tmp_path / "tf_keras.h5")
    theirs.save_weights(theirs_path)
    back = _keras3_builders()[name]()
    back.load_weights(theirs_path)
    np.testing.assert_allclose(flat(back(x)), flat(theirs(x)), atol=1e-5)


def test_long_attributes_are_chunked_as_keras_does(tmp_path):
    from vaecyclegan.io.weight_files import HDF5_OBJECT_HEADER_LIMIT

    inputs = keras.Input((4,), name="x")
    h = inputs
    # Enough long-named layers to pass the HDF5 header limit.
    for index in range(HDF5_OBJECT_HEADER_LIMIT // 180 + 2):
        h = keras.layers.Dense(4, name=f"dense_{index:04d}_" + "n" * 180)(h)
    model = keras.Model(inputs, h, name="many")
    path = str(tmp_path / "many.h5")
    save_weights_h5(model, path)
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
    fresh = keras.models.clone_model(model)
    fresh.load_weights(path)  # Keras 3 reassembles the chunks
    load_weights_h5(fresh, path)  # and so does the checking loader
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])
