"""What a resumed run must keep of the run it continues, checked before any
data is read: the CT window, the recipe (the options that shape what the
resumed stages learn), the dataset, and steps at least as many as its
checkpoints hold; and a warning where new steps move the learning rate's
schedule.

The run folder's `options.json` (every option as given, and what the
preset gave those left unset) and `run.json` (the data folders, absolute)
are what its last run was started with. They are compared for the stages
this run resumes that that run also trained; options as they took effect,
so naming a preset's own value is no change.
"""

import logging
import math
import os

from vaecyclegan.config import IntensityConfig
from vaecyclegan.errors import InputError
from vaecyclegan.training.checkpoint import STAGE_CHECKPOINTS, checkpoint_path, checkpoint_step
from vaecyclegan.training.presets import PRESETS, lr_decay_start
from vaecyclegan.workflows.run_folder import OPTIONS_FILE, RUN_FILE, read_options, read_run_file
from vaecyclegan.workflows.settings import window_bounds

logger = logging.getLogger(__name__)

# Options whose change would train one model on two recipes, by the stage
# they shape. Steps, intervals, precision, strategy and where files go may
# change.
TRANSLATION_RECIPE = ("seed", "batch_size", "image_size", "lr", "weight_decay", "crop_factor",
                      "lambda_identity", "lambda_structure", "lambda_nce",
                      "levels_without_skip", "augmentation")
UPSCALER_RECIPE = ("seed", "sr_scale", "sr_degradations")
RECIPES = {"translation": TRANSLATION_RECIPE, "upscaler": UPSCALER_RECIPE,
           "upscaler_gan": UPSCALER_RECIPE}
# --data values that name a dataset rather than a folder.
DATA_KEYWORDS = ("phantom", "kaggle")

# The option that sets each stage's steps, for a checkpoint past them.
STEPS_OPTIONS = {"translation": ("steps", "--steps"), "upscaler": ("sr_steps", "--sr-steps"),
                 "upscaler_gan": ("sr_gan_steps", "--sr-gan-steps")}


def check_resume(logdir, settings, preset, config, kept_translators):
    """Every check of a resume before the data is read (`check_resumed_folders`
    follows once the folders are known): window, steps, and against the
    run folder's record the recipe and the dataset, then the schedule's
    warning."""
    options = read_options(logdir)
    check_resumed_window(logdir, settings, config, kept_translators, options)
    check_checkpoints_within_steps(logdir, STAGE_CHECKPOINTS[settings.stage], preset)
    stages = resumed_stages(logdir, settings, options)
    check_resumed_recipe(logdir, settings, options, stages)
    check_resumed_dataset(logdir, settings, options, stages)
    warn_if_schedule_moves(logdir, settings, preset, options, stages)


def resumed_stages(logdir, settings, options):
    """The stages this run resumes from a checkpoint that the run folder's
    record describes: the folder has one `options.json`, written by its
    last run, whose `--stage` may have trained other stages (a
    `--stage sr` run after a `--stage translate` one). Where no stage is
    shared, nothing is compared."""
    if options is None:
        return []
    recorded = STAGE_CHECKPOINTS.get(options.get("stage", "all"), ())
    return [stage for stage in STAGE_CHECKPOINTS[settings.stage]
            if stage in recorded and os.path.isfile(checkpoint_path(logdir, stage))]


def check_resumed_window(logdir, settings, config, kept_translators, options):
    """A run resumes with the CT window it started with: the steps after
    would read CT otherwise, and config.json would name only the second
    window (an upscaler already trained kept the first). Compared as read,
    in HU: leaving out a window that was the default is the same window."""
    if settings.stage == "sr" and kept_translators:
        return  # always the kept translators' window (another is refused)
    if options is None:  # nothing to compare with
        return
    try:
        started = options.get("ct_window")
        started = IntensityConfig().ct_window_hu if started is None else window_bounds(
            tuple(float(v) for v in started))
    except (TypeError, ValueError):
        return
    now = tuple(config.intensity.ct_window_hu)
    if not all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(started, now)):
        raise InputError(os.path.join(logdir, OPTIONS_FILE),
                         f"this run started with a CT window of {started[0]:g}..{started[1]:g} "
                         f"HU; resuming with {now[0]:g}..{now[1]:g} HU would train on two "
                         "windows: give the same --ct-window, or --no-resume to start afresh")


def check_resumed_recipe(logdir, settings, options, stages):
    """The recipe options of the `stages` resumed, as they took effect, are
    those the run started with: a resume with another seed, learning rate
    or batch had trained one model on two recipes, and config.json
    recorded only the second."""
    if not stages:
        return
    before = _effective(options, options.get("from_preset"))
    now = _effective(vars(settings), settings.preset_values(unset_only=False))
    # Without `from_preset` (an older record) None meant "the preset's",
    # which cannot be compared.
    known = "from_preset" in options
    keys = [key for stage in stages for key in RECIPES[stage]]
    changed = [key for key in dict.fromkeys(keys) if key in before
               and (known or before[key] is not None) and _value(now.get(key), key)
               != _value(before[key], key)]
    if changed:
        raise InputError(os.path.join(logdir, OPTIONS_FILE),
                         f"this run started with {_as_options(before, changed)}; resuming "
                         f"with {_as_options(now, changed)} would train one model on two "
                         "recipes: give the run's values, or --no-resume to start afresh")


def check_resumed_dataset(logdir, settings, options, stages):
    """The dataset a keyword names (`--data phantom`, `--data kaggle`) is the
    one the run started with, checked before it is rendered or downloaded
    (the phantom's size and seed are part of the recipe)."""
    then, now = (options or {}).get("data"), settings.data
    if stages and (then in DATA_KEYWORDS or now in DATA_KEYWORDS) and then != now:
        raise InputError(os.path.join(logdir, OPTIONS_FILE),
                         f"this run trained on --data {then}; resuming on --data {now} would "
                         "train one model on two datasets: give the run's data, or "
                         "--no-resume to start afresh")


def check_resumed_folders(logdir, data_dir, folders, settings):
    """The data folders are those the run started with: `run.json`'s
    absolute paths against the folders found now (wherever the command
    runs from); a dataset named by keyword is compared by
    `check_resumed_dataset`."""
    options = read_options(logdir)
    stages = resumed_stages(logdir, settings, options)
    recorded = _read_run_file(logdir)
    if not stages or recorded is None:
        return
    now = {"data_dir": None if settings.data in DATA_KEYWORDS else data_dir,
           "ct_dir": folders.ct_train if settings.ct_dir else None,
           "mri_dir": folders.mri_train if settings.mri_dir else None}
    if any(stage != "translation" for stage in stages):
        now["sr_pairs"] = settings.sr_pairs
    for key, option in (("data_dir", "--data"), ("ct_dir", "--ct-dir"),
                        ("mri_dir", "--mri-dir"), ("sr_pairs", "--sr-pairs")):
        if key not in now or key not in recorded or (
                key == "data_dir" and options.get("data") in DATA_KEYWORDS):
            continue
        then = recorded.get(key)
        if _same_folder(then, now[key]):
            continue
        raise InputError(os.path.join(logdir, RUN_FILE),
                         f"this run trained on {option} {then or '(none)'}; resuming on "
                         f"{now[key] or '(none)'} would train one model on two datasets: give "
                         "the run's data, or --no-resume to start afresh")


def check_checkpoints_within_steps(logdir, stages_run, preset):
    """A checkpoint past the steps now asked for is refused here, before
    any stage: found when its stage started, an upscaler's came after the
    whole translation stage."""
    for stage in stages_run:
        path = checkpoint_path(logdir, stage)
        step = checkpoint_step(path) if os.path.isfile(path) else None
        field, option = STEPS_OPTIONS[stage]
        if step is not None and step > getattr(preset, field):
            raise InputError(path, f"the checkpoint is at step {step}, past {option} "
                             f"{getattr(preset, field)}: give at least {step}, or --no-resume "
                             "to start afresh")


def warn_if_schedule_moves(logdir, settings, preset, options, stages):
    """Warns where the new steps change the learning rate at a resumed
    stage's checkpoint step: extending a finished run restarts a rate that
    had decayed to zero, which a converged GAN feels as a shock."""
    if not stages:
        return
    before = _effective(options, options.get("from_preset"))
    preset_then = PRESETS.get(options.get("preset"))
    schedules = {"translation": (
        _schedule(before.get("lr"), before.get("lr_decay_start"), before.get("steps")),
        _schedule(preset.lr, lr_decay_start(preset.steps, settings.lr_decay_start),
                  preset.steps), "--lr-decay-start")}
    if preset_then is not None and isinstance(before.get("sr_steps"), int):
        schedules["upscaler"] = (
            _schedule(preset_then.sr_lr, before["sr_steps"] // 2, before["sr_steps"]),
            _schedule(preset.sr_lr, preset.sr_steps // 2, preset.sr_steps), "--sr-steps")
    for stage in stages:
        if stage not in schedules:
            continue  # the adversarial stage's rate is constant
        then, now, option = schedules[stage]
        path = checkpoint_path(logdir, stage)
        step = checkpoint_step(path)
        if step is None or then is None or math.isclose(then(step), now(step), rel_tol=0.01):
            continue
        logger.warning(f"{path}: the learning rate at the checkpoint's step {step} was "
                       f"{then(step):.3g} in the run so far and is {now(step):.3g} with the "
                       f"steps now asked for ({option} sets where its decay starts)")


def _schedule(lr, decay_start, steps):
    """`ConstantThenLinearDecay` as a plain function of the step, or None
    where a value is missing from an older record."""
    if not all(isinstance(v, (int, float)) for v in (lr, decay_start, steps)):
        return None

    def rate(step):
        fraction = min(max((step - decay_start) / max(steps - decay_start, 1), 0.0), 1.0)
        return lr * (1.0 - fraction)

    return rate


def _effective(options, from_preset):
    """Each option as it took effect: as given, else the preset's."""
    from_preset = from_preset if isinstance(from_preset, dict) else {}
    effective = {key: value for key, value in options.items() if key != "from_preset"}
    for key, value in from_preset.items():
        if effective.get(key) is None:
            effective[key] = value
    # JSON has no tuples: compare lists as lists.
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in effective.items()}


def _value(value, key):
    """A recipe value as compared: degradations in any order are the same."""
    if key == "sr_degradations" and isinstance(value, (list, tuple)):
        return sorted(value)
    return list(value) if isinstance(value, tuple) else value


def _as_options(values, keys):
    return " ".join(f"--{key.replace('_', '-')} {_shown(values.get(key))}" for key in keys)


def _shown(value):
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return "(the preset's)" if value is None else f"{value:g}" if isinstance(
        value, float) else str(value)


def _read_run_file(logdir):
    try:
        return read_run_file(logdir)
    except InputError:
        return None


def _same_folder(then, now):
    if not then or not now:
        return not then and not now
    return os.path.realpath(then) == os.path.realpath(now)
