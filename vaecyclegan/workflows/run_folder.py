"""A training run's folder: where it is, and the two files that describe
it, `options.json` (every setting) and `run.json` (the absolute data and
weights folders, which `vaecyclegan-eval --run` reads back)."""

import dataclasses
import datetime
import json
import os

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_write_text

OPTIONS_FILE = "options.json"
RUN_FILE = "run.json"


def run_folder(logdir):
    """`logdir`, or a new `runs/<date-time>` when it is None."""
    return logdir or os.path.join("runs", datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))


def write_options(logdir, settings):
    """Creates the run folder and writes every setting of the run."""
    os.makedirs(logdir, exist_ok=True)
    atomic_write_text(os.path.join(logdir, OPTIONS_FILE),
                      json.dumps(dataclasses.asdict(settings), indent=2) + "\n")


def write_run_file(logdir, data_dir, folders, settings):
    """Records where the run's data and weights are."""
    atomic_write_text(os.path.join(logdir, RUN_FILE), json.dumps({
        "data_dir": os.path.abspath(data_dir) if data_dir else None,
        "ct_dir": os.path.abspath(folders.ct_train) if settings.ct_dir else None,
        "mri_dir": os.path.abspath(folders.mri_train) if settings.mri_dir else None,
        "weights_dir": os.path.abspath(settings.weights_dir)}, indent=2) + "\n")


def read_run_file(run_dir):
    """The `run.json` of a run folder, as a dict.

    Raises:
        InputError: not a run folder written by `train.py`.
    """
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        raise InputError(run_dir, f"no {RUN_FILE}: not a run folder written by train.py")
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(path, f"not a readable {RUN_FILE} ({error})") from None
    if not isinstance(run, dict) or not isinstance(run.get("weights_dir"), str) or any(
            not isinstance(run.get(key), (str, type(None)))
            for key in ("data_dir", "ct_dir", "mri_dir")) or "data_dir" not in run or not (
            run["data_dir"] or (run.get("ct_dir") and run.get("mri_dir"))):
        raise InputError(path, "not a run file written by train.py: it needs weights_dir, "
                         "and data_dir (or ct_dir and mri_dir) as folder names")
    return run
