"""The five networks on Keras' three backends: weight files written on
TensorFlow load on JAX and on PyTorch and compute what TensorFlow computes;
files written on JAX and on PyTorch are the same layout, and load on
TensorFlow and in tf-keras. Under JAX and PyTorch nothing imports
TensorFlow: each of those runs in its own process (Keras reads
`KERAS_BACKEND` when it is imported) with a `tensorflow` package on its path
that refuses to import.

The children run `child()` below; the parent (this test process, on
TensorFlow) compares what they wrote.
"""

import dataclasses
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.harness import REPO, tiny_model_config

# Equal to 1e-5 in the brief's words; rtol covers the discriminators' larger
# logits, where float32 rounding differs between the backends' kernels.
ATOL, RTOL = 1e-5, 1e-5
NETWORKS = ("g_target", "g_source", "d_source", "d_target", "rrdbnet", "rrdbnet_x2")
OTHER_BACKENDS = ("jax", "torch")
WRITE_SEEDS = {"tensorflow": 0, "jax": 1, "torch": 2}


def _config(name):
    config = tiny_model_config()
    if name == "rrdbnet_x2":
        config.rrdbnet = dataclasses.replace(config.rrdbnet, scale=2)
    return config


def _build(name):
    from vaecyclegan.networks import build_network

    return build_network(_config(name), "rrdbnet" if name == "rrdbnet_x2" else name)


def _inputs():
    """Per network, a random batch: non-square, in its value range."""
    rng = np.random.default_rng(7)
    images = rng.uniform(-1, 1, (2, 32, 48, 3)).astype("float32")
    low = rng.uniform(0, 1, (2, 12, 20, 3)).astype("float32")
    return {name: low if name.startswith("rrdbnet") else images for name in NETWORKS}


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) * 0.1
                       for w in model.get_weights()])


def _outputs(model, name, x):
    """The network's deterministic outputs on `x` as `{key: array}`."""
    from vaecyclegan.networks import run_network

    outputs = run_network(model, x)
    if isinstance(outputs, (list, tuple)):
        return {f"{name}/{index}": out for index, out in enumerate(outputs)}
    return {name: outputs}


def child(backend, folder, reads, write_seed, step_from=None):
    """One backend's part, in its own process: load the networks of each
    folder of `reads` (`{label: folder of weight files written by another
    backend}`) and run them; with `write_seed`, also randomise fresh
    networks, save them into `folder/written` and run them. Outputs go to
    `folder/outputs.npz` keyed `<label>:<network>[/<scale>]`, the rest to
    `folder/report.json`. On TensorFlow with `write_seed`, also one
    translation training step (`_tensorflow_step`); on JAX or PyTorch
    with `step_from` (that TensorFlow folder), the same step (`_jax_step`,
    `_torch_step`), and one step of each of the upscaler's stages
    (`_upscaler_steps`)."""
    import keras

    from vaecyclegan.io.weight_files import load_weights_h5, save_weights_h5

    assert keras.backend.backend() == backend
    inputs = _inputs()
    outputs, report = {}, {"backend": backend}
    for name in NETWORKS:
        for label, read in reads.items():
            model = _build(name)
            load_weights_h5(model, os.path.join(read, f"{name}.h5"))
            outputs.update({f"{label}:{k}": v
                            for k, v in _outputs(model, name, inputs[name]).items()})
        if write_seed is not None:
            model = _build(name)
            _randomise(model, write_seed + NETWORKS.index(name))
            os.makedirs(os.path.join(folder, "written"), exist_ok=True)
            save_weights_h5(model, os.path.join(folder, "written", f"{name}.h5"))
            outputs.update({f"written:{k}": v
                            for k, v in _outputs(model, name, inputs[name]).items()})
    generator = _build("g_target")
    # The latent sampler draws on every backend (other draws than TensorFlow's).
    from vaecyclegan.networks import run_network

    mean = run_network(generator, inputs["g_target"])
    draws = [run_network(generator, inputs["g_target"], training=True) for _ in range(2)]
    report["sampling"] = {
        "finite": bool(all(np.isfinite(d).all() for d in draws)),
        "differs_from_mean": bool(np.abs(draws[0] - mean).max() > 1e-4),
        "draws_differ": bool(np.abs(draws[0] - draws[1]).max() > 1e-4),
    }
    if backend == "jax":
        report["group_norm"] = _group_norm_on_jax()
    report["caffe_input"] = _caffe_input()
    if backend == "torch":
        rrdbnet = _build("rrdbnet")
        names = [n for n, _ in rrdbnet.named_parameters()]
        report["torch_parameters"] = {"count": len(names), "weights": len(rrdbnet.weights),
                                      "dotted": [n for n in names if "." in n.split(".", 1)[1]]}
    if backend == "tensorflow" and write_seed is not None:
        report["step_logs"] = _tensorflow_step(folder)
        report["upscaler_step_logs"] = _upscaler_steps(backend, folder)
    if step_from:
        take_step = _jax_step if backend == "jax" else _torch_step
        report["step_logs"] = take_step(folder, step_from)
        report["upscaler_step_logs"] = _upscaler_steps(backend, folder, step_from)
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    np.savez(os.path.join(folder, "outputs.npz"), **outputs)
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)


def _caffe_input():
    """The VGG19 loss's input layer, built in a model as the loss builds
    it, on one pixel: its BGR 0..255 values less the ImageNet mean."""
    import keras

    from vaecyclegan.upscaler.vgg_perceptual_loss import CaffeInput

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, CaffeInput(name="caffe_input")(inputs))
    pixel = np.array([[[[0.0, 0.5, 1.0]]]], dtype="float32")
    return np.asarray(keras.ops.convert_to_numpy(model(pixel))).ravel().tolist()


def _group_norm_on_jax():
    """The jax.jit GroupNormalization against Keras' arithmetic on JAX:
    largest differences of the output and of the gradients (input, gamma,
    beta) through a ReLU, and whether the compiled function ran."""
    import jax
    import jax.numpy as jnp

    from vaecyclegan.translation import group_normalization

    rng = np.random.default_rng(3)
    # An offset mean, as after a biased convolution: where a one-pass
    # variance would lose precision.
    x = rng.normal(3.0, 2.0, (2, 16, 12, 32)).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    weights = [rng.normal(size=32).astype("float32") for _ in range(2)]
    results = {}
    for fused in (True, False):
        layer = group_normalization.FusedGroupNormalization(groups=8, fused=fused)
        layer.build(x.shape)
        layer.set_weights(weights)

        def loss(trainable, x, layer=layer):
            y, _ = layer.stateless_call(trainable, [], x)
            return jnp.sum(jax.nn.relu(y) * upstream)

        trainable = [v.value for v in layer.trainable_variables]
        results[fused] = [np.asarray(layer(x)),
                          *map(np.asarray, jax.tree_util.tree_leaves(
                              jax.grad(loss, argnums=(0, 1))(trainable, x)))]
    output, *gradients = [float(np.abs(a - b).max()) for a, b in zip(results[True],
                                                                     results[False])]
    return {"output": output, "gradients": max(gradients),
            "compiled": group_normalization._jax_group_normalize.cache_info().currsize > 0}


# --- one translation training step: TensorFlow's trainer, and JAX's -------
#
# In float64 networks (the losses stay float32, as the trainers compute
# them) and with Keras' GroupNormalization arithmetic. In float32 the two
# steps' losses agree to 1e-7, but their generator updates differ by up to
# 3e-4 (of 0.1): every ReLU input within float32 rounding of zero takes
# either side of its kink depending on the order of additions, and each flip
# moves the gradients of the layers before it. In float64 no input comes
# that close, and what is left is the step's arithmetic.

# The MIND structure loss takes part in the step (logged as `structure`),
# and so does PatchNCE (`patch_nce`), comparing every location of every
# encoder level (32 x 32 at most): the backends draw different random
# locations, and the loss of all of them does not depend on their order.
STEP_LAMBDA_STRUCTURE = 1.0
STEP_LAMBDA_NCE = 1.0
STEP_NCE_PATCHES = 32 * 32


def _step_batch():
    rng = np.random.default_rng(11)
    return tuple(rng.uniform(-1, 1, (2, 32, 32, 3)) for _ in range(2))


def _step_networks(initial=None):
    """The four translation networks in float64: Keras' seeded
    initialisation, or the weight files of `initial`."""
    import keras

    from vaecyclegan.io.weight_files import load_weights_h5
    from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
    from vaecyclegan.translation.group_normalization import FusedGroupNormalization

    keras.utils.set_random_seed(0)
    networks = _in_float64(lambda: {name: build_network(tiny_model_config(), name)
                                    for name in TRANSLATION_NETWORKS})
    for model in networks.values():
        for layer in model.layers:
            if isinstance(layer, FusedGroupNormalization):
                layer.fused = False  # the fused function computes in float32
        if initial:
            load_weights_h5(model, os.path.join(initial, f"{model.name}.h5"))
    return networks


def _in_float64(build):
    """`build()` with float64 as the global dtype policy."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(previous)


def _step_weights(networks):
    from vaecyclegan.networks import TRANSLATION_NETWORKS

    return {f"{name}/{index}": np.asarray(variable) for name in TRANSLATION_NETWORKS
            for index, variable in enumerate(networks[name].trainable_variables)}


def _sgd():
    # Plain SGD, as tests/training/mirrored_step.py: the update is the
    # gradient itself, so any difference in a loss or gradient shows.
    import keras

    return keras.optimizers.SGD(0.1)


def _tensorflow_step(folder):
    """Writes the initial weights (`step_initial/`), takes one step of
    `VAECycleGAN` on `_step_batch()`, writes the weights before and after."""
    import tensorflow as tf

    from vaecyclegan.io.weight_files import save_weights_h5
    from vaecyclegan.networks import TRANSLATION_NETWORKS
    from vaecyclegan.translation.trainer import VAECycleGAN

    networks = _step_networks()
    assert networks["g_target"].trainable_variables[0].dtype == "float64"
    for name in ("g_target", "g_source"):
        # The backends draw different latent noise: scaled by exp(-40 / 2)
        # (clipped to exp(-15), 3e-7) it changes nothing measurable, and
        # the rest of the step is deterministic. The clip also stops the
        # gradient to these two weights on both backends.
        layer = networks[name].get_layer("latent_logvar")
        layer.set_weights([np.zeros_like(w) - (40.0 if w.ndim == 1 else 0.0)
                           for w in layer.get_weights()])
    os.makedirs(os.path.join(folder, "step_initial"))
    for name, model in networks.items():
        save_weights_h5(model, os.path.join(folder, "step_initial", f"{name}.h5"))
    np.savez(os.path.join(folder, "step_before.npz"), **_step_weights(networks))
    # The PatchNCE heads in float64 too.
    model = _in_float64(lambda: VAECycleGAN(
        *(networks[n] for n in TRANSLATION_NETWORKS), pool_size=50, image_size=32,
        lambda_structure=STEP_LAMBDA_STRUCTURE, lambda_nce=STEP_LAMBDA_NCE,
        nce_patches=STEP_NCE_PATCHES))
    np.savez(os.path.join(folder, "step_initial", "patch_projectors.npz"),
             **{f"{name}/{index}": np.asarray(weight)
                for name, nce in model.patch_nce.items()
                for index, weight in enumerate(nce.projector.get_weights())})
    model.compile(g_optimizer=_sgd(), d_optimizer=_sgd())
    history = model.fit(tf.data.Dataset.from_tensors(_step_batch()).repeat(), steps_per_epoch=1,
                        epochs=1, verbose=0, shuffle=False)
    np.savez(os.path.join(folder, "step_after.npz"), **_step_weights(networks))
    return {key: float(values[-1]) for key, values in history.history.items()}


def _jax_step(folder, tensorflow_folder):
    """The same step with `JaxVAECycleGAN`, from the weights TensorFlow
    started from; writes the weights after it. Turns on JAX's float64 for
    the rest of the process."""
    import jax

    from vaecyclegan.translation.jax_trainer import JaxVAECycleGAN

    jax.config.update("jax_enable_x64", True)
    networks = _step_networks(os.path.join(tensorflow_folder, "step_initial"))
    assert networks["g_target"].trainable_variables[0].value.dtype == np.float64
    step = _in_float64(lambda: JaxVAECycleGAN(
        networks["g_target"], networks["g_source"], networks["d_source"], networks["d_target"],
        _sgd(), _sgd(), pool_size=50, image_size=32, lambda_structure=STEP_LAMBDA_STRUCTURE,
        lambda_nce=STEP_LAMBDA_NCE, nce_patches=STEP_NCE_PATCHES))
    with np.load(os.path.join(tensorflow_folder, "step_initial", "patch_projectors.npz")) as data:
        for name, (nce, _) in step.patch_nce.items():
            nce.projector.set_weights([data[f"{name}/{index}"]
                                       for index in range(len(nce.projector.weights))])
    logs = step.train_step(_step_batch())
    step.sync_to_variables()
    np.savez(os.path.join(folder, "step_after.npz"), **_step_weights(networks))
    return logs


def _torch_step(folder, tensorflow_folder):
    """The same step with `VAECycleGAN` on PyTorch (eager, torch autograd),
    through `fit`, from the weights TensorFlow started from; writes the
    weights after it."""
    from vaecyclegan.networks import TRANSLATION_NETWORKS
    from vaecyclegan.translation.trainer import VAECycleGAN

    networks = _step_networks(os.path.join(tensorflow_folder, "step_initial"))
    assert str(networks["g_target"].trainable_variables[0].value.dtype) == "torch.float64"
    model = _in_float64(lambda: VAECycleGAN(
        *(networks[n] for n in TRANSLATION_NETWORKS), pool_size=50, image_size=32,
        lambda_structure=STEP_LAMBDA_STRUCTURE, lambda_nce=STEP_LAMBDA_NCE,
        nce_patches=STEP_NCE_PATCHES))
    with np.load(os.path.join(tensorflow_folder, "step_initial", "patch_projectors.npz")) as data:
        for name, nce in model.patch_nce.items():
            nce.projector.set_weights([data[f"{name}/{index}"]
                                       for index in range(len(nce.projector.weights))])
    model.compile(g_optimizer=_sgd(), d_optimizer=_sgd())

    def batches():
        while True:
            yield _step_batch()

    history = model.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    np.savez(os.path.join(folder, "step_after.npz"), **_step_weights(networks))
    return {key: float(values[-1]) for key, values in history.history.items()}


# The upscaler's two stages, one step each: L1 (ESRGAN's first stage), then
# the relativistic GAN stage from the weights the L1 step left, with a small
# frozen network in the perceptual loss's place (VGG19 cannot be loaded
# here). 32-px high-resolution patches, the VGG-style discriminator's least.
UPSCALER_NETWORKS = ("rrdbnet", "sr_discriminator", "features")


def _upscaler_step_batch():
    rng = np.random.default_rng(12)
    # float32, as the stages feed them (the RRDB-Net returns float32).
    return (rng.uniform(0, 1, (4, 16, 16, 3)).astype("float32"),
            rng.uniform(0, 1, (4, 64, 64, 3)).astype("float32"))


def _upscaler_step_networks(initial=None):
    """The RRDB-Net, its discriminator and a frozen feature network, in
    float64: seeded, or the weights of `initial` (`upscaler_initial.npz`)."""
    import keras

    from vaecyclegan.networks import build_network
    from vaecyclegan.upscaler.vgg_style_discriminator import build_vgg_style_discriminator

    def build():
        keras.utils.set_random_seed(0)
        features = keras.Sequential([keras.Input((None, None, 3)),
                                     keras.layers.Conv2D(4, 3, activation="relu")],
                                    name="features")
        return {"rrdbnet": build_network(tiny_model_config(), "rrdbnet"),
                "sr_discriminator": build_vgg_style_discriminator(64, 4), "features": features}

    networks = _in_float64(build)
    if initial:
        with np.load(os.path.join(initial, "upscaler_initial.npz")) as data:
            for name, model in networks.items():
                model.set_weights([data[f"{name}/{index}"]
                                   for index in range(len(model.weights))])
    return networks


def _upscaler_weights(networks, names=UPSCALER_NETWORKS):
    return {f"{name}/{index}": np.asarray(weight) for name in names
            for index, weight in enumerate(networks[name].get_weights())}


def _upscaler_steps(backend, folder, initial=None):
    """One L1 step and one adversarial step of the upscaler's trainers on
    `backend` (TensorFlow and PyTorch: `L1UpscalerTrainer` and
    `RelativisticSRGAN` through `fit`; JAX: `JaxL1Upscaler` and
    `JaxRelativisticSRGAN`), from `initial`'s weights or (None) from seeded
    ones, which it writes. Writes the weights after each step
    (`upscaler_after_l1.npz`, `upscaler_after_gan.npz`); returns the logs."""
    networks = _upscaler_step_networks(initial)
    if initial is None:
        np.savez(os.path.join(folder, "upscaler_initial.npz"), **_upscaler_weights(networks))
    rrdbnet, discriminator = networks["rrdbnet"], networks["sr_discriminator"]
    networks["features"].trainable = False
    batch = _upscaler_step_batch()
    logs = {}
    if backend == "jax":
        import jax

        from vaecyclegan.upscaler.jax_trainers import JaxL1Upscaler, JaxRelativisticSRGAN

        jax.config.update("jax_enable_x64", True)
        l1 = _in_float64(lambda: JaxL1Upscaler(rrdbnet, _sgd()))
        logs["l1"] = l1.train_step(batch)
        l1.sync_to_variables()
        np.savez(os.path.join(folder, "upscaler_after_l1.npz"), **_upscaler_weights(networks))
        gan = _in_float64(lambda: JaxRelativisticSRGAN(rrdbnet, discriminator, _sgd(), _sgd(),
                                                       networks["features"]))
        logs["gan"] = gan.train_step(batch)
        gan.sync_to_variables()
    else:
        from vaecyclegan.upscaler.adversarial_trainer import RelativisticSRGAN
        from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer

        def fit(trainer):
            def batches():
                while True:
                    yield batch

            history = trainer.fit(batches(), steps_per_epoch=1, epochs=1, verbose=0,
                                  shuffle=False)
            return {key: float(values[-1]) for key, values in history.history.items()}

        l1 = _in_float64(lambda: L1UpscalerTrainer(rrdbnet))
        l1.compile(optimizer=_sgd())
        logs["l1"] = fit(l1)
        np.savez(os.path.join(folder, "upscaler_after_l1.npz"), **_upscaler_weights(networks))
        gan = _in_float64(lambda: RelativisticSRGAN(rrdbnet, discriminator,
                                                    networks["features"]))
        gan.compile(g_optimizer=_sgd(), d_optimizer=_sgd())
        logs["gan"] = fit(gan)
    np.savez(os.path.join(folder, "upscaler_after_gan.npz"), **_upscaler_weights(networks))
    return logs


def no_tensorflow_path(tmp_path):
    """A folder holding a `tensorflow` package whose import raises ImportError."""
    stub = tmp_path / "no_tensorflow" / "tensorflow"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(
        'raise ImportError("TensorFlow is hidden from this process by the test")\n')
    return str(stub.parent)


def run_child(backend, folder, reads=None, write_seed=None, block_tensorflow=True,
              tmp_path=None, step_from=None):
    """`child()` in a process of its own on `backend`; returns its outputs
    and report."""
    os.makedirs(folder, exist_ok=True)
    paths = [REPO]
    if block_tensorflow:
        paths.insert(0, no_tensorflow_path(tmp_path))
    script = ("import json, sys\nfrom tests.test_backends import child\n"
              "child(*json.loads(sys.argv[1]))\n")
    arguments = json.dumps([backend, str(folder), reads or {}, write_seed, step_from])
    result = subprocess.run(
        [sys.executable, "-c", script, arguments],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(paths),
             "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(os.path.join(folder, "outputs.npz")) as data:
        outputs = dict(data)
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as f:
        return outputs, json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """TensorFlow writes; JAX and PyTorch read its files and write their own;
    TensorFlow reads theirs. Four processes, each its own backend."""
    root = tmp_path_factory.mktemp("backends")
    results = {"tensorflow": run_child("tensorflow", root / "tensorflow",
                                       write_seed=WRITE_SEEDS["tensorflow"],
                                       block_tensorflow=False)}
    for backend in OTHER_BACKENDS:
        results[backend] = run_child(
            backend, root / backend, reads={"read": str(root / "tensorflow" / "written")},
            write_seed=WRITE_SEEDS[backend], tmp_path=root,
            step_from=str(root / "tensorflow"))
    results["tensorflow_reads"] = run_child(
        "tensorflow", root / "tensorflow_reads", block_tensorflow=False,
        reads={backend: str(root / backend / "written") for backend in OTHER_BACKENDS})
    return root, results


def _compare(ours, theirs, prefix_ours, prefix_theirs):
    keys = sorted(k.split(":", 1)[1] for k in theirs if k.startswith(prefix_theirs))
    assert len(keys) == 4 + 2 * 4  # four logit maps per discriminator
    for key in keys:
        np.testing.assert_allclose(ours[f"{prefix_ours}{key}"], theirs[f"{prefix_theirs}{key}"],
                                   rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_weights_give_tensorflow_outputs(runs, backend):
    _, results = runs
    _compare(results[backend][0], results["tensorflow"][0], "read:", "written:")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_their_weight_files_give_tensorflow_their_outputs(runs, backend):
    _, results = runs
    _compare(results["tensorflow_reads"][0], results[backend][0], f"{backend}:", "written:")


def test_the_comparison_fails_for_other_weights(runs):
    # Control: each backend wrote other random weights, and the check sees it.
    _, results = runs
    with pytest.raises(AssertionError):
        _compare(results["jax"][0], results["torch"][0], "written:", "written:")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_no_tensorflow_and_the_sampler_draws(runs, backend):
    _, results = runs
    report = results[backend][1]
    assert report["tensorflow_imported"] is False
    assert report["sampling"] == {"finite": True, "differs_from_mean": True,
                                  "draws_differ": True}


@pytest.mark.parametrize("backend", ("tensorflow_reads", *OTHER_BACKENDS))
def test_the_vgg_losss_input_layer_builds_on_every_backend(runs, backend):
    # RGB (0, 0.5, 1) as BGR 0..255 less the ImageNet mean.
    _, results = runs
    expected = np.array([255.0, 127.5, 0.0]) - [103.939, 116.779, 123.68]
    np.testing.assert_allclose(results[backend][1]["caffe_input"], expected, rtol=1e-6)


def test_group_normalization_is_compiled_on_jax_and_equals_keras(runs):
    _, results = runs
    report = results["jax"][1]["group_norm"]
    assert report["compiled"] is True
    # As on TensorFlow (tests/translation/test_group_normalization.py).
    assert report["output"] <= 2e-5 and report["gradients"] <= 1e-4, report


def test_torch_registers_every_rrdbnet_parameter_without_dots(runs):
    _, results = runs
    parameters = results["torch"][1]["torch_parameters"]
    assert parameters["count"] == parameters["weights"] > 0
    assert parameters["dotted"] == []


def _layout(path):
    """What the weight files' readers see: names, shapes and dtypes, in order."""
    with h5py.File(path, "r") as f:
        layers = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        return ([(name, [(str(w), f[name][w].shape, f[name][w].dtype.str)
                         for w in f[name].attrs["weight_names"]]) for name in layers],
                f.attrs["layer_names"].dtype.str, sorted(f), sorted(f.attrs),
                f.attrs["keras_version"])


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_their_files_have_tensorflows_layout_and_esrgan_names(runs, backend):
    root, _ = runs
    for name in NETWORKS:
        theirs = str(root / backend / "written" / f"{name}.h5")
        assert _layout(theirs) == _layout(str(root / "tensorflow" / "written" / f"{name}.h5"))
        with h5py.File(theirs, "r") as f:
            assert f.attrs["backend"] == backend
            if name.startswith("rrdbnet"):
                assert "RRDB_trunk.0.RDB2.conv4" in list(f.attrs["layer_names"])
                assert list(f["RRDB_trunk.0.RDB2.conv4"].attrs["weight_names"]) == [
                    "RRDB_trunk.0.RDB2.conv4/kernel:0", "RRDB_trunk.0.RDB2.conv4/bias:0"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("name", ["d_target", "rrdbnet"])
def test_tf_keras_reads_their_files(runs, backend, name):
    from tests.io.test_weight_files import _tf_keras_builders

    root, results = runs
    model = _tf_keras_builders()[name]()
    model.load_weights(str(root / backend / "written" / f"{name}.h5"))
    outputs = model(_inputs()[name])
    outputs = outputs if isinstance(outputs, list) else [outputs]
    keys = [name] if len(outputs) == 1 else [f"{name}/{i}" for i in range(len(outputs))]
    for key, value in zip(keys, outputs):
        np.testing.assert_allclose(np.asarray(value), results[backend][0][f"written:{key}"],
                                   rtol=RTOL, atol=ATOL, err_msg=key)


# One step on JAX, and one on PyTorch, equals one on TensorFlow, for the
# same float64 weights and batch, to STEP_TOLERANCE in every weight (2e-7
# measured: the losses are float32), while the step itself moves every
# network by 0.09 or more.
STEP_TOLERANCE = 1e-6


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_one_training_step_equals_tensorflows(runs, backend):
    root, results = runs
    with np.load(root / "tensorflow" / "step_before.npz") as data:
        before = dict(data)
    with np.load(root / "tensorflow" / "step_after.npz") as data:
        tensorflow = dict(data)
    with np.load(root / backend / "step_after.npz") as data:
        theirs = dict(data)
    assert sorted(theirs) == sorted(tensorflow) == sorted(before)
    moved = max(float(np.abs(tensorflow[k] - before[k]).max()) for k in before)
    difference = max(float(np.abs(theirs[k] - tensorflow[k]).max()) for k in before)
    assert moved > 10000 * STEP_TOLERANCE, moved
    assert difference <= STEP_TOLERANCE, (difference, moved)
    # Every network moved, each the same way.
    for name in ("g_target", "g_source", "d_source", "d_target"):
        keys = [k for k in before if k.startswith(f"{name}/")]
        assert max(float(np.abs(tensorflow[k] - before[k]).max()) for k in keys) > 0.01, name
    tensorflow_logs = results["tensorflow"][1]["step_logs"]
    their_logs = results[backend][1]["step_logs"]
    assert sorted(their_logs) == sorted(tensorflow_logs)
    assert "structure" in their_logs and "patch_nce" in their_logs
    for key, value in tensorflow_logs.items():
        assert their_logs[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("stage", ["l1", "gan"])
def test_one_upscaler_step_equals_tensorflows(runs, backend, stage):
    # The L1 step moves the RRDB-Net alone; the adversarial step both
    # networks (the discriminator's batch statistics too), not the frozen
    # feature network.
    root, results = runs
    before_file = "upscaler_initial.npz" if stage == "l1" else "upscaler_after_l1.npz"
    with np.load(root / "tensorflow" / before_file) as data:
        before = dict(data)
    with np.load(root / "tensorflow" / f"upscaler_after_{stage}.npz") as data:
        tensorflow = dict(data)
    with np.load(root / backend / f"upscaler_after_{stage}.npz") as data:
        theirs = dict(data)
    assert sorted(theirs) == sorted(tensorflow) == sorted(before)
    difference = max(float(np.abs(theirs[k] - tensorflow[k]).max()) for k in before)
    assert difference <= STEP_TOLERANCE, difference
    moved = {name: max(float(np.abs(tensorflow[k] - before[k]).max())
                       for k in before if k.startswith(f"{name}/"))
             for name in UPSCALER_NETWORKS}
    # (ESRGAN's small pixel and GAN weights move the RRDB-Net least, 7e-3.)
    assert moved["rrdbnet"] > 1000 * STEP_TOLERANCE, moved
    assert (moved["sr_discriminator"] > 0.01) == (stage == "gan"), moved
    assert moved["features"] == 0.0, moved
    tensorflow_logs = results["tensorflow"][1]["upscaler_step_logs"][stage]
    their_logs = results[backend][1]["upscaler_step_logs"][stage]
    assert sorted(their_logs) == sorted(tensorflow_logs)
    for key, value in tensorflow_logs.items():
        assert their_logs[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
