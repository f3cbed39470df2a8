"""One `train.py` run: data, networks, translation and SR stages, weight
files, and the closing evaluation."""

import argparse
import copy
import dataclasses
import datetime
import json
import os
import platform
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

import vaecyclegan
from vaecyclegan.atomic_write import atomic_write_text
from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.best_checkpoint import BestCheckpointCallback
from vaecyclegan.dataset_layout import resolve_dataset
from vaecyclegan.distribution import (
    is_chief, make_strategy, resolve_precision, set_precision, strategy_label, worker_scratch,
)
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation import evaluate_direction, format_table, histogram_pool, paired_files
from vaecyclegan.image_io import list_images
from vaecyclegan.kaggle_dataset import ensure_kaggle_dataset
from vaecyclegan.networks import (
    DIRECTIONS, TRANSLATION_NETWORKS, WEIGHT_FILES, build_network, load_network, save_networks,
)
from vaecyclegan.phantom import write_phantom_dataset
from vaecyclegan.presets import PRESETS
from vaecyclegan.report import write_metrics_json, write_report
from vaecyclegan.sr_evaluation import evaluate_upscaler, evaluate_upscaler_on_pairs, format_sr_table
from vaecyclegan.sr_pairs import load_sr_pairs, make_paired_sr_dataset
from vaecyclegan.sr_training import make_sr_dataset
from vaecyclegan.translator import Translator
from vaecyclegan.domain_slices import load_domain_slices
from vaecyclegan.resumable_fit import StageSettings
from vaecyclegan.translation_training import train_translation
from vaecyclegan.upscaler_training import train_upscaler

PHANTOM_MARKER = "phantom.json"
RUN_FILE = "run.json"


def resolve_preset(options):
    """The preset named by `options.preset` with command-line overrides."""
    preset = copy.deepcopy(PRESETS[options.preset])
    if options.sr_scale is not None:
        preset.rrdbnet.scale = options.sr_scale
    overrides = {
        "steps": options.steps, "sr_steps": options.sr_steps, "batch_size": options.batch_size,
        "image_size": options.image_size, "lr": options.lr,
        "weight_decay": options.weight_decay, "sr_gan_steps": options.sr_gan_steps,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(preset, key, value)
    return preset


def prepare_phantom(data_root, preset, intensity, seed):
    """Renders the phantom for this preset once; later runs reuse it."""
    folder = os.path.join(data_root, f"phantom_{preset.image_size}px_seed{seed}")
    spec = {"size": preset.image_size, "train": preset.phantom_train,
            "test": preset.phantom_test, "seed": seed,
            "ct_window_hu": list(intensity.ct_window_hu)}
    marker = os.path.join(folder, PHANTOM_MARKER)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f) == spec:
                return folder
    print(f"Rendering the head phantom into {folder} ...", flush=True)
    write_phantom_dataset(folder, intensity, size=preset.image_size,
                          num_train=preset.phantom_train, num_test=preset.phantom_test,
                          seed=seed)
    atomic_write_text(marker, json.dumps(spec) + "\n")
    return folder


def resolve_data_option(options, preset, intensity):
    """The dataset folder `--data` names: the phantom (rendered on first
    use), the Kaggle dataset (downloaded on first use) or a folder; None
    when `--ct-dir` and `--mri-dir` alone name the data."""
    if options.data == "phantom":
        if options.ct_dir and options.mri_dir:
            return None
        return prepare_phantom(options.data_root, preset, intensity, options.seed)
    if options.data == "kaggle":
        return ensure_kaggle_dataset(options.data_root)
    return options.data


def _test_images(folders):
    """The image files of both test folders (the upscaler's test set)."""
    paths = []
    for folder in (folders.ct_test, folders.mri_test):
        try:
            paths += list_images(folder) if folder else []
        except InputError as error:
            print(f"Upscaler evaluation leaves out {error}", flush=True)
    return paths


def _print_parameter_counts(networks):
    print("---------- Networks initialized -------------")
    for name, model in networks.items():
        print(f"[Network {name}] Total number of parameters : {model.count_params() / 1e6:.3f} M")
    print("-----------------------------------------------", flush=True)


def _provenance(options, preset, data_dir):
    return {
        "dataset": data_dir,
        "ct_dir": options.ct_dir,
        "mri_dir": options.mri_dir,
        "preset": options.preset,
        "steps": preset.steps,
        "sr_steps": preset.sr_steps,
        "sr_degradations": ["bicubic", *options.sr_degradations],
        "sr_pairs": options.sr_pairs,
        "sr_gan_steps": preset.sr_gan_steps,
        "batch_size": preset.batch_size,
        "lr": preset.lr,
        "lr_decay_start": preset.steps // 2 if options.lr_decay_start is None
        else options.lr_decay_start,
        "precision": keras.mixed_precision.global_policy().name,
        "weight_decay": preset.weight_decay,
        "seed": options.seed,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": {
            "vaecyclegan": vaecyclegan.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


def load_training_domains(folders, intensity, image_size):
    """Both domains' training slices, with a summary of what was read."""
    mri = load_domain_slices(folders.mri_train, "mri", intensity, image_size)
    ct = load_domain_slices(folders.ct_train, "ct", intensity, image_size)
    print(f"  CT  ({folders.ct_train}): {ct.describe()}\n"
          f"  MRI ({folders.mri_train}): {mri.describe()}", flush=True)
    return mri.slices, ct.slices


def make_upscaler_dataset(preset, folders, intensity, scale, channels, seed, degradations=(),
                          sr_pairs=None, loaded=None):
    """`seed_offset -> dataset` of the upscaler's `(low, high)` batches:
    real pairs, or both domains' training images degraded. `loaded`: the
    `(mri, ct)` slices already read, if any."""
    if sr_pairs is not None:
        return lambda offset: make_paired_sr_dataset(
            sr_pairs, preset.sr_patch, scale, preset.sr_batch_size, channels, seed + offset)
    size = max(preset.image_size, preset.sr_patch)
    # The translation stage's slices serve when they have this size.
    if loaded is None or loaded[0].shape[1] != size:
        loaded = load_training_domains(folders, intensity, size)
    images = np.concatenate(loaded)
    return lambda offset: make_sr_dataset(images, preset.sr_patch, scale, preset.sr_batch_size,
                                          channels, seed + offset, degradations)


def evaluate_generators(generators, folders, config, batch_size=8, samples=1,
                        baselines=True):
    """Evaluates both directions of in-memory generators on the test pairs.

    Args:
        generators: `{"g_target": model, "g_source": model}`.
        samples: latent draws per image (above 1: mean scored, uncertainty
            correlated with the error).
        baselines: also score identity and histogram matching.

    Returns:
        A list of `DirectionEvaluation`, empty when there are no test pairs.
    """
    if not (folders.ct_test and folders.mri_test):
        return []
    evaluations = []
    for direction, (source_test, target_test, target_train) in {
        "mri2ct": (folders.mri_test, folders.ct_test, folders.ct_train),
        "ct2mri": (folders.ct_test, folders.mri_test, folders.mri_train),
    }.items():
        try:
            pairs = paired_files(source_test, target_test)
        except InputError as error:
            print(f"Skipping {direction} evaluation: {error}", flush=True)
            continue
        if not pairs:
            print(f"Skipping {direction} evaluation: no file name is in both "
                  f"{source_test} and {target_test}", flush=True)
            continue
        translator = Translator(generators[DIRECTIONS[direction]], config.generator.stride,
                                config.channels)
        hu_folder = folders.ct_test_hu if direction == "mri2ct" else None
        target_domain = "ct" if direction == "mri2ct" else "mri"
        pool = histogram_pool(target_train, target_domain, config.intensity) if baselines else None
        evaluations.append(evaluate_direction(
            translator, direction, pairs, pool, config.intensity, hu_folder, batch_size, samples,
        ))
    return evaluations


def evaluate_weights(weights_dir, folders, config, batch_size=8, samples=1):
    """`evaluate_generators` on the generators saved in `weights_dir`."""
    generators = {name: load_network(weights_dir, name, config)
                  for name in ("g_target", "g_source")}
    return evaluate_generators(generators, folders, config, batch_size, samples)


def _chief_paths(options, chief):
    """A non-chief worker writes into private scratch folders, so that only
    the chief's files land in --logdir, --weights-dir and --data-root."""
    if chief:
        return options
    return argparse.Namespace(**{**vars(options),
                                 "logdir": worker_scratch(options.logdir or "runs"),
                                 "weights_dir": worker_scratch(options.weights_dir),
                                 "data_root": worker_scratch(options.data_root)})


def run_training(options):
    """Runs `train.py` with parsed `options`; returns the metrics report.

    The global Keras dtype policy is set for the run and restored after it.
    """
    previous_policy = keras.mixed_precision.global_policy()
    scratch = []
    try:
        return _run_training(options, scratch)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)


def _run_training(options, scratch):
    # The strategy first: a multi-worker one must configure TensorFlow's
    # collectives before anything else runs.
    strategy = make_strategy(options.strategy)
    chief = is_chief(strategy)
    options = _chief_paths(options, chief)
    if not chief:
        scratch += [options.logdir, options.weights_dir, options.data_root]
    policy = set_precision(resolve_precision(options.precision))
    keras.utils.set_random_seed(options.seed)
    preset = resolve_preset(options)
    intensity = IntensityConfig()
    logdir = options.logdir or os.path.join(
        "runs", datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    os.makedirs(logdir, exist_ok=True)
    atomic_write_text(os.path.join(logdir, "options.json"),
                      json.dumps(vars(options), indent=2) + "\n")
    print(f"Strategy {strategy_label(strategy)} ({strategy.num_replicas_in_sync} replica(s)"
          f"{'' if chief else ', non-chief worker: writes to scratch folders'}), "
          f"precision {policy}", flush=True)

    data_dir = resolve_data_option(options, preset, intensity)
    folders = resolve_dataset(data_dir, options.ct_dir, options.mri_dir)
    mapping = "A = CT, B = MRI" if not (options.ct_dir or options.mri_dir) else "--ct-dir/--mri-dir"
    print(f"Dataset {data_dir or '(the --ct-dir/--mri-dir folders)'} ({mapping}):\n"
          f"{folders.describe()}", flush=True)
    # Where this run's data and weights are, for `vaecyclegan-eval --run`.
    atomic_write_text(os.path.join(logdir, RUN_FILE), json.dumps({
        "data_dir": os.path.abspath(data_dir) if data_dir else None,
        "ct_dir": os.path.abspath(folders.ct_train) if options.ct_dir else None,
        "mri_dir": os.path.abspath(folders.mri_train) if options.mri_dir else None,
        "weights_dir": os.path.abspath(options.weights_dir)}, indent=2) + "\n")

    config_path = os.path.join(options.weights_dir, "config.json")
    if options.stage == "sr" and os.path.isfile(config_path):
        # Keep the translators' settings; only the upscaler is new.
        config = ModelConfig.load(options.weights_dir)
        config.rrdbnet = preset.rrdbnet
    else:
        generator = dataclasses.replace(preset.generator, seed=options.seed)
        config = ModelConfig(
            image_size=preset.image_size, generator=generator,
            discriminator=preset.discriminator, rrdbnet=preset.rrdbnet, intensity=intensity,
        )
    sr_train_pairs = sr_held_out = None
    if options.sr_pairs and options.stage != "translate":
        sr_train_pairs, sr_held_out = load_sr_pairs(options.sr_pairs, preset.rrdbnet.scale)
        print(f"Upscaler pairs {options.sr_pairs}: {len(sr_train_pairs)} for training, "
              f"{len(sr_held_out)} held out", flush=True)
    stages = {"translate": TRANSLATION_NETWORKS, "sr": ("rrdbnet",),
              "all": tuple(WEIGHT_FILES)}[options.stage]
    with strategy.scope():
        networks = {name: build_network(config, name) for name in stages}
    _print_parameter_counts(networks)

    config.training = _provenance(options, preset, data_dir)
    settings = StageSettings(
        strategy, policy, chief, options.resume,
        preset.checkpoint_every if options.checkpoint_every is None else options.checkpoint_every,
        options.lr_decay_start, options.log_every, options.seed)
    started = time.perf_counter()
    best, loaded = None, None
    if "g_target" in networks:
        eval_every = preset.eval_every if options.eval_every is None else options.eval_every
        best_callback = None
        if eval_every > 0 and folders.ct_test and folders.mri_test:
            def make_best(resumed):
                return BestCheckpointCallback(
                    lambda: {e.direction: e.summary for e in evaluate_generators(
                        networks, folders, config, baselines=False)},
                    networks, config, eval_every, options.best_metric,
                    os.path.join(options.weights_dir, "best"),
                    os.path.join(logdir, "checkpoint_evals.csv"), resumed)
            best_callback = make_best
        mri, ct = loaded = load_training_domains(folders, config.intensity, preset.image_size)
        print(f"Training slices: {len(mri)} MRI, {len(ct)} CT at {preset.image_size}px; an epoch "
              f"(the larger domain) is {max(len(mri), len(ct)) // preset.batch_size} steps",
              flush=True)
        progress, best = train_translation(networks, preset, mri, ct, logdir, options.seed,
                                           settings, best_callback)
        print(f"Translation: {progress.summary()}", flush=True)
    if "rrdbnet" in networks:
        make_dataset = make_upscaler_dataset(
            preset, folders, config.intensity, config.rrdbnet.scale, config.channels,
            options.seed, options.sr_degradations, sr_train_pairs, loaded)
        sr_settings = settings.later_stage() if "g_target" in networks else settings
        progress, gan_progress = train_upscaler(networks["rrdbnet"], preset, make_dataset, logdir,
                                                sr_settings, options.vgg_weights)
        print(f"Upscaler, L1: {progress.summary('loss')}", flush=True)
        if gan_progress is not None:
            print(f"Upscaler, adversarial: {gan_progress.summary('pixel')}", flush=True)

    config.training.update(_provenance(options, preset, data_dir))
    written = save_networks(networks, config, options.weights_dir)
    print("Wrote " + ", ".join(written), flush=True)
    print(f"Training took {time.perf_counter() - started:.0f} s", flush=True)

    if "rrdbnet" in networks and sr_held_out:
        sr_summary = evaluate_upscaler_on_pairs(networks["rrdbnet"], config.rrdbnet.scale,
                                                config.channels, sr_held_out)
        sr_path = os.path.join(logdir, "sr_pairs_metrics.json")
        write_metrics_json(sr_path, sr_summary)
        print(f"\nUpscaler on the held-out real pairs ({sr_path}):\n"
              f"{format_sr_table(sr_summary)}", flush=True)
    sr_test_images = _test_images(folders) if "rrdbnet" in networks else []
    if sr_test_images:
        sr_summary = evaluate_upscaler(
            networks["rrdbnet"], config.rrdbnet.scale, config.channels, sr_test_images)
        sr_path = os.path.join(logdir, "sr_metrics.json")
        write_metrics_json(sr_path, sr_summary)
        print(f"\nUpscaler on the test images ({sr_path}):\n{format_sr_table(sr_summary)}",
              flush=True)
    if best is not None and best.best is not None:
        print(f"Best {best.metric} {best.best:.4f} at step {best.best_step}: {best.best_dir}",
              flush=True)
    evaluations = evaluate_weights(options.weights_dir, folders, config) if "g_target" in networks else []
    if not evaluations:
        return None
    written = write_report(
        logdir, evaluations, f"vaecyclegan run {os.path.basename(os.path.normpath(logdir))}",
        loss_csvs=[("translate", os.path.join(logdir, "losses.csv")),
                   ("upscale", os.path.join(logdir, "sr_losses.csv")),
                   ("upscale GAN", os.path.join(logdir, "sr_gan_losses.csv"))],
    )
    summaries = {e.direction: e.summary for e in evaluations}
    print(f"\nTest pairs ({written['metrics']}):\n{format_table(summaries)}", flush=True)
    print(f"Report: {written['html']}", flush=True)
    return summaries
