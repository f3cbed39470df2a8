"""One `train.py` run: data, networks, translation and SR stages, weight
files, and the closing evaluation."""

import copy
import dataclasses
import datetime
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

import vaecyclegan
from vaecyclegan.atomic_write import atomic_write_text
from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation import (
    evaluate_direction, format_table, histogram_pool, paired_files, write_metrics_json,
)
from vaecyclegan.networks import (
    DIRECTIONS, TRANSLATION_NETWORKS, WEIGHT_FILES, build_network, load_network, save_networks,
)
from vaecyclegan.phantom import write_phantom_dataset
from vaecyclegan.presets import PRESETS
from vaecyclegan.progress_callback import ProgressCallback
from vaecyclegan.sr_training import make_sr_dataset, train_rrdbnet
from vaecyclegan.translator import Translator
from vaecyclegan.unpaired_dataset import load_training_images, make_unpaired_dataset
from vaecyclegan.vae_cyclegan import VAECycleGAN

PHANTOM_MARKER = "phantom.json"


def resolve_preset(options):
    """The preset named by `options.preset` with command-line overrides."""
    preset = copy.deepcopy(PRESETS[options.preset])
    overrides = {
        "steps": options.steps, "batch_size": options.batch_size,
        "image_size": options.image_size, "lr": options.lr,
        "weight_decay": options.weight_decay,
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


def _print_parameter_counts(networks):
    print("---------- Networks initialized -------------")
    for name, model in networks.items():
        print(f"[Network {name}] Total number of parameters : {model.count_params() / 1e6:.3f} M")
    print("-----------------------------------------------", flush=True)


def _provenance(options, preset, data_dir):
    return {
        "dataset": data_dir,
        "preset": options.preset,
        "steps": preset.steps,
        "sr_steps": preset.sr_steps,
        "batch_size": preset.batch_size,
        "lr": preset.lr,
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


def train_translation(networks, preset, folders, logdir, seed):
    """Trains the four translation networks with `VAECycleGAN.fit`."""
    mri = load_training_images(folders.mri_train, preset.image_size)
    ct = load_training_images(folders.ct_train, preset.image_size)
    print(f"Training images: {len(mri)} MRI, {len(ct)} CT at {preset.image_size}px; "
          f"an epoch (the larger domain) is {max(len(mri), len(ct)) // preset.batch_size} steps",
          flush=True)
    channels = networks["g_target"].input_shape[-1]
    dataset = make_unpaired_dataset(mri, ct, preset.batch_size, channels, seed)
    model = VAECycleGAN(
        networks["g_target"], networks["g_source"], networks["d_source"], networks["d_target"],
        lambda_cycle=preset.lambda_cycle, lambda_identity=preset.lambda_identity,
        kl_weight=preset.kl_weight,
    )

    def optimizer():
        return keras.optimizers.AdamW(preset.lr, weight_decay=preset.weight_decay,
                                      beta_1=preset.beta_1)

    model.compile(g_optimizer=optimizer(), d_optimizer=optimizer())
    progress = ProgressCallback(
        preset.steps, images_per_step=4 * preset.batch_size,
        csv_path=os.path.join(logdir, "losses.csv"),
        shown=["g_loss", "d_loss", "cycle"], description="translate",
    )
    model.fit(dataset, steps_per_epoch=preset.steps, epochs=1, verbose=0, shuffle=False, callbacks=[progress])
    return progress


def train_upscaler(rrdbnet, preset, folders, scale, logdir, seed):
    """Trains RRDB-Net on both domains' training images."""
    size = max(preset.image_size, preset.sr_patch)
    images = np.concatenate([
        load_training_images(folders.mri_train, size),
        load_training_images(folders.ct_train, size),
    ])
    dataset = make_sr_dataset(images, preset.sr_patch, scale, preset.sr_batch_size,
                              rrdbnet.input_shape[-1], seed)
    progress = ProgressCallback(
        preset.sr_steps, images_per_step=preset.sr_batch_size,
        csv_path=os.path.join(logdir, "sr_losses.csv"), description="upscale",
    )
    train_rrdbnet(rrdbnet, dataset, preset.sr_steps, preset.sr_lr, [progress])
    return progress


def evaluate_weights(weights_dir, folders, config, batch_size=8):
    """Evaluates both directions of the saved generators on the test pairs.

    Returns:
        The metrics report, or None when the dataset has no test pairs.
    """
    if not (folders.ct_test and folders.mri_test):
        return None
    report = {}
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
        generator = load_network(weights_dir, DIRECTIONS[direction], config)
        translator = Translator(generator, config.generator.stride, config.channels)
        hu_folder = folders.ct_test_hu if direction == "mri2ct" else None
        report[direction] = evaluate_direction(
            translator, pairs, histogram_pool(target_train), hu_folder,
            config.intensity.ct_window_hu, batch_size,
        )
    return report or None


def run_training(options):
    """Runs `train.py` with parsed `options`; returns the metrics report."""
    keras.utils.set_random_seed(options.seed)
    preset = resolve_preset(options)
    intensity = IntensityConfig()
    logdir = options.logdir or os.path.join(
        "runs", datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    os.makedirs(logdir, exist_ok=True)
    atomic_write_text(os.path.join(logdir, "options.json"),
                      json.dumps(vars(options), indent=2) + "\n")

    if options.data == "phantom":
        data_dir = prepare_phantom(options.data_root, preset, intensity, options.seed)
    else:
        data_dir = options.data
    folders = resolve_dataset(data_dir)
    print(f"Dataset {data_dir} (A = CT, B = MRI):\n{folders.describe()}", flush=True)

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
    stages = {"translate": TRANSLATION_NETWORKS, "sr": ("rrdbnet",),
              "all": tuple(WEIGHT_FILES)}[options.stage]
    networks = {name: build_network(config, name) for name in stages}
    _print_parameter_counts(networks)

    started = time.perf_counter()
    if "g_target" in networks:
        progress = train_translation(networks, preset, folders, logdir, options.seed)
        print(f"Translation: {preset.steps} steps, {progress.images_per_second:.1f} images/s",
              flush=True)
    if "rrdbnet" in networks:
        progress = train_upscaler(networks["rrdbnet"], preset, folders, config.rrdbnet.scale,
                                  logdir, options.seed)
        print(f"Upscaler: {preset.sr_steps} steps, last L1 {progress.last_logs.get('loss', float('nan')):.4f}",
              flush=True)

    config.training = _provenance(options, preset, data_dir)
    written = save_networks(networks, config, options.weights_dir)
    print("Wrote " + ", ".join(written), flush=True)
    print(f"Training took {time.perf_counter() - started:.0f} s", flush=True)

    report = None
    if "g_target" in networks:
        report = evaluate_weights(options.weights_dir, folders, config)
    if report:
        metrics_path = os.path.join(logdir, "metrics.json")
        write_metrics_json(metrics_path, report)
        print(f"\nTest pairs ({metrics_path}):\n{format_table(report)}", flush=True)
    return report
