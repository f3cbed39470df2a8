"""Every docstring example (`>>>`) of the package runs as it is written:
doctest, with ELLIPSIS and NORMALIZE_WHITESPACE.

Each docstring runs in an empty folder of its own under `tmp_path` (what
an example writes stays there), with its module's globals and these
names, which stand for what a user of the library has at hand:

- `config`: the smoke preset's `ModelConfig` (32-px images);
- `g_target`, `g_source`, `d_source`, `d_target`, `rrdbnet`: its five
  networks, untrained (`vaecyclegan.networks.build_network`);
- `mri`, `ct`: four random grey slices of each domain, float32
  (4, 32, 32, 1) in [-1, 1], as the datasets take them.

The library's log messages are not part of an example's output (as in a
Python session that has not called `configure_logging`). The JAX
trainers' modules (`JAX_MODULES`) run in one child process with
KERAS_BACKEND=jax, the others here, on TensorFlow, with `fit`'s steps
run eagerly (`tf.config.run_functions_eagerly`): tracing the translation
step alone takes some 40 s on 2 cores, and no example's output depends
on it.
"""

import doctest
import importlib
import io
import logging
import os
import pkgutil

import pytest

from tests.harness import report_from_jax

JAX_MODULES = ("vaecyclegan.training.jax_loop", "vaecyclegan.translation.jax_trainer",
               "vaecyclegan.upscaler.jax_trainers")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def package_modules():
    """The package and every module in it, by name."""
    import vaecyclegan

    return ["vaecyclegan"] + sorted(
        module.name for module in pkgutil.walk_packages(vaecyclegan.__path__, "vaecyclegan."))


def example_namespace():
    """The names the module docstring lists."""
    import numpy as np

    from tests.harness import tiny_model_config
    from vaecyclegan.networks import build_network

    config = tiny_model_config()
    names = {"config": config}
    for name in ("g_target", "g_source", "d_source", "d_target", "rrdbnet"):
        names[name] = build_network(config, name)
    rng = np.random.default_rng(0)
    for name in ("mri", "ct"):
        names[name] = rng.uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    return names


def run_doctests(module_names, folder, namespace):
    """Runs the examples of every docstring of `module_names`, each in a new
    subfolder of `folder`.

    Returns:
        `(docstrings with examples, doctest's reports of the failures)`.
    """
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    library_log = logging.getLogger("vaecyclegan")
    level, here = library_log.level, os.getcwd()
    count, failures = 0, []
    library_log.setLevel(logging.WARNING)
    try:
        for module_name in module_names:
            for test in finder.find(importlib.import_module(module_name)):
                if not test.examples:
                    continue
                count += 1
                work = os.path.join(folder, f"{count:03d}")
                os.makedirs(work)
                test.globs = {**namespace, **test.globs}
                report = io.StringIO()
                os.chdir(work)
                try:
                    if runner.run(test, out=report.write).failed:
                        failures.append(report.getvalue())
                finally:
                    os.chdir(here)
    finally:
        library_log.setLevel(level)
    return count, failures


# Eager fit (above) on tf.data, and examples' fit on a tf.data dataset:
# notices about settings that do not apply there.
@pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions")
@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_every_docstring_example_runs(tmp_path):
    import tensorflow as tf

    modules = [name for name in package_modules() if name not in JAX_MODULES]
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        count, failures = run_doctests(modules, str(tmp_path), example_namespace())
    finally:
        tf.config.run_functions_eagerly(eager)
    assert not failures, "\n".join(failures)
    assert count >= 60  # control: the examples were found


CHILD = r'''
import json, sys
from tests.test_docstrings import JAX_MODULES, example_namespace, run_doctests

count, failures = run_doctests(JAX_MODULES, sys.argv[1], example_namespace())
print(json.dumps({"count": count, "failures": failures}))
'''


def test_every_jax_docstring_example_runs_on_jax(tmp_path):
    assert set(JAX_MODULES) <= set(package_modules())
    report = report_from_jax(CHILD, tmp_path)
    assert not report["failures"], "\n".join(report["failures"])
    assert report["count"] == 3  # JaxStrategy, JaxVAECycleGAN, JaxL1Upscaler
