"""A training run's folder: where it is, and the two files that describe
it, `options.json` (every setting) and `run.json` (the absolute data and
weights folders, which `vaecyclegan-eval --run` reads back)."""

import dataclasses
import datetime
import fnmatch
import json
import logging
import os

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_write_text

OPTIONS_FILE = "options.json"
RUN_FILE = "run.json"
EARLIER_RUN_PREFIX = "earlier_run_"
# What a training run writes into its folder (fnmatch patterns): its record,
# loss logs, checkpoints, TensorBoard events and sample grids, and the
# closing evaluation's report.
# The loss logs a run writes, by stage, as its report plots them.
LOSS_LOGS = (("translate", "losses.csv"), ("upscale", "sr_losses.csv"),
             ("upscale GAN", "sr_gan_losses.csv"))
RUN_WRITES = (OPTIONS_FILE, RUN_FILE, "checkpoint", "*losses.csv", "checkpoint_evals.csv",
              "tensorboard", "samples", "*metrics.json", "metrics_per_*.csv", "grid_*.png",
              "synthrad_*.png", "loss_curves.png", "index.html")

logger = logging.getLogger(__name__)


def run_folder(logdir):
    """`logdir`, or a new `runs/<date-time>` when it is None."""
    return logdir or os.path.join("runs", datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))


def set_aside_earlier_run(logdir):
    """Moves an earlier run's files out of the way of a run that starts
    afresh in its folder, into `<logdir>/earlier_run_<date-time>/`.

    Left where they were, its checkpoint would be resumed by the next run
    in the folder, and its evaluation log, TensorBoard events and report
    would read as the new run's. Only the files a run writes move (the
    table "A run folder ends up holding" in the README, by name); anything
    else in the folder (data, weights, the user's own files) stays. Nothing
    is deleted.

    Returns:
        The folder the files went to, or None when there were none.
    """
    if not os.path.isdir(logdir):
        return None
    moved = sorted(name for name in os.listdir(logdir)
                   if any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_WRITES))
    if not moved:
        return None
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    target = os.path.join(logdir, EARLIER_RUN_PREFIX + stamp)
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = os.path.join(logdir, f"{EARLIER_RUN_PREFIX}{stamp}_{suffix}")
    os.makedirs(target)
    for name in moved:
        os.replace(os.path.join(logdir, name), os.path.join(target, name))
    logger.warning(f"{logdir} held an earlier run; this one starts afresh, and that run's "
                   f"files were moved into {target}")
    return target


def write_options(logdir, settings):
    """Creates the run folder and writes every setting of the run as given,
    and under `from_preset` what the preset gave those left unset."""
    os.makedirs(logdir, exist_ok=True)
    options = {**dataclasses.asdict(settings), "from_preset": settings.preset_values()}
    atomic_write_text(os.path.join(logdir, OPTIONS_FILE), json.dumps(options, indent=2) + "\n")


def read_options(logdir):
    """The `options.json` a run folder's run wrote, or None when it has none
    that reads as a JSON object."""
    try:
        with open(os.path.join(logdir, OPTIONS_FILE), encoding="utf-8") as f:
            options = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return options if isinstance(options, dict) else None


def write_run_file(logdir, data_dir, folders, settings):
    """Records where the run's data and weights are."""
    atomic_write_text(os.path.join(logdir, RUN_FILE), json.dumps({
        "data_dir": os.path.abspath(data_dir) if data_dir else None,
        "ct_dir": os.path.abspath(folders.ct_train) if settings.ct_dir else None,
        "mri_dir": os.path.abspath(folders.mri_train) if settings.mri_dir else None,
        "sr_pairs": os.path.abspath(settings.sr_pairs) if settings.sr_pairs else None,
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
