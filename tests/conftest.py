import os

# Before TensorFlow loads: no C++ start-up log, no GPU probing noise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402

import pytest  # noqa: E402

from tests.harness import tiny_model_config, train_options  # noqa: E402
from vaecyclegan.cli.common import configure_logging  # noqa: E402
from vaecyclegan.config import IntensityConfig  # noqa: E402

# The library logs its messages; tests read them as the command lines show them.
configure_logging()


@pytest.fixture
def tiny_config():
    return tiny_model_config()


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    from vaecyclegan.data.phantom import write_phantom_dataset

    folder = tmp_path_factory.mktemp("phantom")
    write_phantom_dataset(str(folder), IntensityConfig(), size=32, num_train=8, num_test=4, seed=3)
    return str(folder)


@pytest.fixture(scope="session")
def trained_smoke(tmp_path_factory):
    """One smoke `train.py` run shared by the tests that need trained weights."""
    from vaecyclegan.workflows.train import run_training

    root = tmp_path_factory.mktemp("smoke_run")
    options = train_options(weights_dir=str(root / "weights"), logdir=str(root / "run"),
                            data_root=str(root / "data"))
    report = run_training(options)
    return argparse.Namespace(root=root, options=options, report=report,
                              weights_dir=str(root / "weights"), logdir=str(root / "run"),
                              data=str(root / "data" / "phantom_32px_seed0"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Captured output in a test's report with backslash escapes for
    undecodable file names (lone surrogates): pytest-xdist sends reports
    between processes as UTF-8, and one such name stopped the whole run."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _escaped(text)) for title, text in report.sections]
    if report.longrepr is not None and _escaped(str(report.longrepr)) != str(report.longrepr):
        report.longrepr = _escaped(str(report.longrepr))


def _escaped(text):
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# The files that take longest, longest first (measured in one process on
# the 2-core machine: 70 to 190 s each, most of it in child processes).
# Handed out first, they leave the many short files to even out the two
# workers' ends; a file not named keeps its place after them.
LONGEST_FILES = (
    "tests/training/test_distribution.py",
    "tests/training/test_resume.py",
    "tests/test_backends.py",
    "tests/workflows/test_train.py",
    "tests/upscaler/test_stage.py",
    "tests/test_jax_training.py",
    "tests/integration/test_training_scale.py",
    "tests/integration/test_backends.py",
    "tests/translation/test_stage.py",
    "tests/test_torch_training.py",
    "tests/integration/test_train.py",
    "tests/integration/test_upscaler.py",
    "tests/test_docstrings.py",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FILES.index(path) if path in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: each file's tests keep their order
