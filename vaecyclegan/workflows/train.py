"""What `train.py` does, given `TrainSettings`: the strategy and precision,
the data, the networks, the translation and upscaler stages, the weight
files, and the closing evaluation on the test pairs."""

import copy
import dataclasses
import datetime
import logging
import math
import os
import shutil
import time

import keras

from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.paired_test_set import (
    check_test_pairs,
    evaluate_generators,
    evaluate_weights,
)
from vaecyclegan.evaluation.report import write_metrics_json, write_report
from vaecyclegan.evaluation.scoring import format_table
from vaecyclegan.names import TRANSLATION_NETWORKS, WEIGHT_FILES
from vaecyclegan.networks import build_network, load_network, save_networks
from vaecyclegan.provenance import UPSCALER_RECORD_KEYS, library_versions
from vaecyclegan.training.best_weights import BestWeightsCallback
from vaecyclegan.training.checkpoint import (
    CHECKPOINT_FOLDER,
    CHECKPOINT_STAGES,
    STAGE_CHECKPOINTS,
    checkpoint_path,
)
from vaecyclegan.training.distribution import (
    is_chief,
    make_strategy,
    on_jax,
    resolve_precision,
    set_precision,
    strategy_label,
    worker_scratch,
)
from vaecyclegan.training.presets import PRESETS, lr_decay_start
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.translation.stage import train_translation
from vaecyclegan.upscaler.evaluation import (
    evaluate_upscaler,
    evaluate_upscaler_on_pairs,
    format_sr_table,
)
from vaecyclegan.upscaler.paired_dataset import load_sr_pairs
from vaecyclegan.upscaler.stage import train_upscaler
from vaecyclegan.workflows.output_staging import check_writable
from vaecyclegan.workflows.resume_checks import check_resume, check_resumed_folders
from vaecyclegan.workflows.run_folder import (
    LOSS_LOGS,
    run_folder,
    set_aside_earlier_run,
    write_options,
    write_run_file,
)
from vaecyclegan.workflows.settings import PRESET_FIELDS
from vaecyclegan.workflows.training_data import (
    load_training_domains,
    make_upscaler_dataset,
    resolve_data_option,
    upscaler_test_images,
)

logger = logging.getLogger(__name__)
STAGE_NETWORKS = {"translate": TRANSLATION_NETWORKS, "sr": ("rrdbnet",),
                  "all": tuple(WEIGHT_FILES)}


@dataclasses.dataclass
class _Run:
    """What the parts of one run share once it has started."""

    settings: object  # TrainSettings, with this process's folders
    preset: object
    logdir: str
    data_dir: str
    folders: object
    config: ModelConfig
    stages: StageSettings
    networks: dict = None
    slices: tuple = None  # (mri, ct) training slices of the translation stage
    make_sr_dataset: object = None  # seed_offset -> the upscaler's batches
    sr_held_out: list = None  # real upscaler pairs held out for scoring
    best: object = None  # the translation stage's BestWeightsCallback
    test_pairs: int = 0  # test pairs the evaluations score
    # config.json's `training` as a run of one stage found it, beside the
    # other stage's networks that it keeps: the translators' record for
    # `--stage sr`, the upscaler's for `--stage translate`.
    kept_record: dict = None
    # When this process started the run (a resumed run: this segment).
    started: str = None
    # Each stage's steps it was resumed at, where it was ({} otherwise).
    resumed_at: dict = dataclasses.field(default_factory=dict)


def resolve_preset(settings):
    """The preset `settings.preset` names, with the settings' overrides."""
    preset = copy.deepcopy(PRESETS[settings.preset])
    if settings.sr_scale is not None:
        preset.rrdbnet.scale = settings.sr_scale
    for key in PRESET_FIELDS:
        if getattr(settings, key) is not None:
            setattr(preset, key, getattr(settings, key))
    if settings.levels_without_skip is not None:
        preset.generator.levels_without_skip = settings.levels_without_skip
    return preset


def run_training(settings):
    """Runs one training run; returns the closing evaluation's summaries
    (`{direction: summary}`, None without test pairs).

    The global Keras dtype policy is set for the run and restored after it.

    Args:
        settings: a `TrainSettings`.

    Raises:
        InputError: bad data or options (one line for the command line).
        TrainingStopped: a signal or a non-finite loss ended training.
    """
    settings.validate()
    previous_policy = keras.mixed_precision.global_policy()
    scratch = []
    try:
        run = _start(settings, scratch)
        _train_stages(run)
        return _finish(run)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)


def _start(settings, scratch):
    """Strategy, precision, data and networks of a new run; the run folder
    is created only once the data has been read, so that bad data leaves
    nothing behind."""
    # The strategy first: a multi-worker one must configure TensorFlow's
    # collectives before anything else runs.
    started = datetime.datetime.now().isoformat(timespec="seconds")
    _check_backend(settings)
    strategy = make_strategy(settings.strategy)
    chief = is_chief(strategy)
    if not chief:
        # Only the chief's files land in the run, weights and data folders.
        settings = dataclasses.replace(
            settings, logdir=worker_scratch(settings.logdir or "runs"),
            weights_dir=worker_scratch(settings.weights_dir),
            data_root=worker_scratch(settings.data_root))
        scratch += [settings.logdir, settings.weights_dir, settings.data_root]
    policy = set_precision(resolve_precision(settings.precision))
    keras.utils.set_random_seed(settings.seed)
    logger.info(f"Strategy {strategy_label(strategy)} ({strategy.num_replicas_in_sync} "
                f"replica(s){'' if chief else ', non-chief worker: writes to scratch folders'}), "
                f"precision {policy}")
    preset = resolve_preset(settings)
    _check_batches_split(strategy, preset, settings)
    _check_batch_fits_in_memory(preset, settings)
    # The run's outputs come minutes to hours later: refuse folders that
    # could not take them before any work.
    logdir = run_folder(settings.logdir)
    for folder in (settings.weights_dir, logdir, settings.data_root,
                   os.path.join(logdir, CHECKPOINT_FOLDER)):
        check_writable(folder)
    checkpointed = _checkpointed(logdir, settings)
    if settings.stage != "translate" and preset.sr_gan_steps > 0:
        # Read when the adversarial stage starts, after the others.
        from vaecyclegan.upscaler.vgg_perceptual_loss import check_vgg19_weights

        check_vgg19_weights(settings.vgg_weights)
    stages = StageSettings(
        strategy, policy, chief, settings.resume,
        preset.checkpoint_every,
        settings.lr_decay_start, settings.log_every, settings.seed)
    # The config first: the phantom is rendered through its CT window (with
    # --stage sr, the translators'), and a refused one renders nothing.
    config = _model_config(settings, preset)
    if checkpointed and settings.resume is not False:
        # Before the data: a refused resume renders or downloads nothing.
        check_resume(logdir, settings, preset, config, _kept_config(settings))
    run = _Run(settings, preset, logdir, *_dataset(settings, preset, config.intensity),
               config, stages, started=started)
    if _kept_config(settings):
        run.kept_record = dict(ModelConfig.load(settings.weights_dir).training)
    _check_outputs_apart_from_data(settings.weights_dir, logdir, run.folders)
    if checkpointed and settings.resume is not False:
        check_resumed_folders(logdir, run.data_dir, run.folders, settings)
    _read_training_data(run)
    if checkpointed and settings.resume is not False:
        # Once the checkpoint has loaded: one this run cannot take (another
        # architecture, --lambda-nce on or off) is refused, and the record of
        # the run it belongs to must stay as it is.
        run.stages.on_started = lambda: _write_record(run)
    else:
        if checkpointed and chief:
            # --no-resume where a checkpoint of these stages is: started
            # afresh beside it, the next run would resume the old one.
            set_aside_earlier_run(logdir)
        _write_record(run)
    with strategy.scope():
        run.networks = {name: build_network(run.config, name)
                        for name in STAGE_NETWORKS[settings.stage]}
    _log_parameter_counts(run.networks)
    run.config.training = _training_record(run)
    return run


def _checkpointed(logdir, settings):
    """Whether the run folder holds a checkpoint of the stages this run
    trains; a folder in a checkpoint's way, or --resume without one, is
    refused."""
    for stage in CHECKPOINT_STAGES:
        if os.path.isdir(checkpoint_path(logdir, stage)):
            raise InputError(checkpoint_path(logdir, stage), "a folder is in the way of the "
                             "checkpoint; move it or use another --logdir")
    # Only the checkpoints of the stages this run trains count: another
    # stage's (a --stage sr run's, say) is not this run's to resume.
    stages_run = STAGE_CHECKPOINTS[settings.stage]
    if settings.resume and not os.path.isfile(checkpoint_path(logdir, stages_run[0])):
        # Found here, not when the first stage starts: by then the run's
        # options.json and run.json were written into the folder. A stage
        # that was started wrote its checkpoint at its end, so a run past
        # its first stage has the first one's too.
        raise InputError(checkpoint_path(logdir, stages_run[0]),
                         "no checkpoint to resume from in this run folder")
    return any(os.path.isfile(checkpoint_path(logdir, stage)) for stage in stages_run)


def _write_record(run):
    """The run folder's `options.json` and `run.json`."""
    write_options(run.logdir, run.settings)
    write_run_file(run.logdir, run.data_dir, run.folders, run.settings)


def _check_outputs_apart_from_data(weights_dir, logdir, folders):
    """Weights or a run folder in a data folder, or below one, would be read
    back: training reads subfolders, and the report's pictures would be
    test images ("4 of 6 inputs have no reference")."""
    for option, folder in (("--weights-dir", weights_dir), ("--logdir", logdir)):
        data = folders.holding(folder)
        if data:
            where = "is" if os.path.realpath(folder) == data else "is inside"
            raise InputError(folder, f"{option} {where} the data folder {data}; choose "
                             "another")


def _dataset(settings, preset, intensity):
    """The dataset folder and its `DatasetFolders` (the phantom rendered
    through `intensity`'s CT window)."""
    data_dir = resolve_data_option(settings, preset, intensity)
    folders = resolve_dataset(data_dir, settings.ct_dir, settings.mri_dir)
    if data_dir is None:
        title = "Dataset: the --ct-dir and --mri-dir folders"
    else:
        mapping = ("A = CT, B = MRI" if not (settings.ct_dir or settings.mri_dir)
                   else "with --ct-dir/--mri-dir")
        title = f"Dataset {data_dir} ({mapping})"
    logger.info(f"{title}:\n{folders.describe()}")
    return data_dir, folders


def _read_training_data(run):
    """Reads what the stages train on: both domains' slices for
    translation, the upscaler's images or real pairs."""
    settings, preset, config = run.settings, run.preset, run.config
    if settings.stage != "sr":
        loaded = load_training_domains(run.folders, config.intensity, preset.image_size,
                                       preset.crop_factor)
        run.slices, config.pixel_scale = loaded
        mri, ct = run.slices
        if preset.crop_factor is not None and max(mri.shape[1], ct.shape[1]) <= preset.image_size:
            # The factor shrank every slice to the training side or below:
            # whole slices are what trains, and config.json must say so.
            logger.warning(f"--crop-factor {preset.crop_factor:g} shrinks the slices to "
                           f"{preset.image_size}px or less: training on whole slices resized "
                           f"to {preset.image_size}px (as without --crop-factor)")
            run.preset = preset = dataclasses.replace(preset, crop_factor=None)
        crops = f", {preset.image_size}px crops" if mri.shape[1] > preset.image_size else ""
        logger.info(f"Training slices: {len(mri)} MRI, {len(ct)} CT at {mri.shape[1]}px{crops}; "
                    f"an epoch (the larger domain) is "
                    f"{_steps_per_epoch(max(len(mri), len(ct)), preset.batch_size)}; "
                    f"inference applies "
                    f"{_describe_scale(config.pixel_scale)}")
        # The evaluations read them minutes or hours later.
        run.test_pairs = check_test_pairs(run.folders)
    if settings.stage == "translate":
        return
    sr_train_pairs = None
    if settings.sr_pairs:
        sr_train_pairs, run.sr_held_out = load_sr_pairs(settings.sr_pairs, config.rrdbnet.scale,
                                                        preset.sr_patch)
        logger.info(f"Upscaler pairs {settings.sr_pairs}: {len(sr_train_pairs)} for training, "
                    f"{len(run.sr_held_out)} held out")
    run.make_sr_dataset = make_upscaler_dataset(
        preset, run.folders, config.intensity, config.rrdbnet.scale, config.channels,
        settings.seed, settings.sr_degradations, sr_train_pairs,
        None if run.slices is None else (run.slices, config.pixel_scale))


def _describe_scale(scale):
    text = f"{scale.resize_factor:.3g} input pixels a network pixel"
    if scale.mm_per_pixel:
        text += f" ({scale.mm_per_pixel:.3g} mm a network pixel where the file gives a spacing)"
    return text


def _intensity(settings):
    """The run's `IntensityConfig`: the default one, with `--ct-window`."""
    window = settings.ct_window_hu()
    return IntensityConfig() if window is None else IntensityConfig(ct_window_hu=window)


def _kept_config(settings):
    """The `config.json` of the networks a one-stage run keeps beside the
    ones it trains, or None: the translators for `--stage sr`; the upscaler,
    where its weights are there, for `--stage translate` (it learnt the
    images' own detail, not the translators' output, and `infer.py` returns
    translations through it)."""
    path = os.path.join(settings.weights_dir, "config.json")
    if not os.path.isfile(path):
        return None
    if settings.stage == "translate":
        upscaler = os.path.join(settings.weights_dir, WEIGHT_FILES["rrdbnet"])
        return path if os.path.isfile(upscaler) else None
    return path if settings.stage == "sr" else None


def _model_config(settings, preset):
    """The run's `ModelConfig`: the preset's architecture, or, for one
    stage beside the other's networks, the existing `config.json` with
    this stage's networks from the preset."""
    if not _kept_config(settings):
        return _preset_config(settings, preset)
    if settings.stage == "translate":
        config = _preset_config(settings, preset)
        kept = _kept_upscaler_config(settings.weights_dir)
        _check_upscaler_kept_as_trained(settings, kept, config)
        config.rrdbnet = kept.rrdbnet
        return config
    config = ModelConfig.load(settings.weights_dir)
    window = settings.ct_window_hu()
    kept = tuple(config.intensity.ct_window_hu)
    if window is not None and tuple(window) != kept:
        # The upscaler's data is read through the translators' window, which
        # infer.py applies to them both: another one would be recorded, not used.
        raise InputError(_kept_config(settings), f"the translators here read CT through "
                         f"{kept[0]:g}..{kept[1]:g} HU, and --stage sr trains the upscaler "
                         "on the data as they read it: leave --ct-window out, or train both "
                         "stages (--stage all)")
    config.rrdbnet = preset.rrdbnet
    return config


def _preset_config(settings, preset):
    """The `ModelConfig` of the preset's architecture, with the run's seed
    and CT window."""
    return ModelConfig(
        image_size=preset.image_size,
        generator=dataclasses.replace(preset.generator, seed=settings.seed),
        discriminator=preset.discriminator, rrdbnet=preset.rrdbnet,
        intensity=_intensity(settings))


def _check_upscaler_kept_as_trained(settings, kept, config):
    """Refuses a `--stage translate` run whose options would not be those
    of the upscaler it keeps: an `--sr-scale` that would be recorded, not
    used, or another CT window than the one its CT was read through."""
    path = _kept_config(settings)
    if settings.sr_scale is not None and settings.sr_scale != kept.rrdbnet.scale:
        raise InputError(path, f"the upscaler here is x{kept.rrdbnet.scale}, and --stage "
                         f"translate keeps it: leave --sr-scale {settings.sr_scale} out, or "
                         "train both stages (--stage all)")
    window, kept_window = (tuple(c.intensity.ct_window_hu) for c in (config, kept))
    if window != kept_window:
        raise InputError(path, f"the upscaler here learnt CT through {kept_window[0]:g}.."
                         f"{kept_window[1]:g} HU, --ct-window asks {window[0]:g}..{window[1]:g}; "
                         "--stage translate keeps the upscaler: give its window, or train "
                         "both stages (--stage all)")


def _kept_upscaler_config(weights_dir):
    """The `config.json` of the upscaler a `--stage translate` run keeps,
    once its weights have loaded: weights it could not load would stop
    `infer.py` after the run, not before."""
    try:
        config = ModelConfig.load(weights_dir)
        load_network(weights_dir, "rrdbnet", config)
    except InputError as error:
        raise InputError(error.path, f"{error.problem}; --stage translate keeps the upscaler "
                         "of its weights folder: train it again (--stage all or sr) or remove "
                         f"{WEIGHT_FILES['rrdbnet']}") from None
    return config


def _log_parameter_counts(networks):
    lines = ["---------- Networks initialized -------------"]
    lines += [f"[Network {name}] Total number of parameters : {model.count_params() / 1e6:.3f} M"
              for name, model in networks.items()]
    lines.append("-----------------------------------------------")
    logger.info("\n".join(lines))


def _check_backend(settings):
    """Training runs on TensorFlow, JAX and PyTorch; off TensorFlow the
    upscaler's stage needs TensorFlow importable for its tf.data batches,
    and TensorFlow is kept off the GPUs."""
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise InputError("KERAS_BACKEND", f"training runs on the tensorflow, jax and torch "
                         f"backends, not {backend}")
    if backend == "tensorflow":
        return
    # Off TensorFlow, TensorFlow only feeds batches (tf.data, on the CPU).
    # Left alone it would reserve nearly all of a GPU's memory at its first
    # operation, beside JAX's or PyTorch's own: hidden from the GPUs before
    # it starts, and where it has started already, growing on demand.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    if settings.stage == "translate":
        return
    try:  # imported, not only found: a package that fails to import counts as absent
        import tensorflow
    except ImportError:
        raise InputError("--stage", f"{settings.stage} trains the upscaler, whose batches come "
                         f"from tf.data: TensorFlow cannot be imported; on {backend} without "
                         "it use --stage translate") from None
    try:
        tensorflow.config.set_visible_devices([], "GPU")
    except RuntimeError:  # its devices are set up already: growth applies
        logger.debug("TensorFlow had started before training: it keeps its view of the GPUs")


# Bytes a translation batch's images alone hold per pixel: MRI and CT, each
# with its augmented view, 3 float32 channels. The networks' activations
# come on top, so this refuses only what cannot fit at all.
BATCH_IMAGE_BYTES_PER_PIXEL = 2 * 2 * 3 * 4


def _check_batch_fits_in_memory(preset, settings):
    """--batch-size 1000000 ended in a TensorFlow traceback (a tensor over
    2 GB) after the data was read; refused here, before any work."""
    if settings.stage == "sr":
        return
    from vaecyclegan.io.memory_budget import check_fits_in_memory

    check_fits_in_memory("--batch-size", preset.batch_size * preset.image_size ** 2,
                         f"a batch of {preset.batch_size} slices of {preset.image_size}x"
                         f"{preset.image_size} and their augmented views",
                         bytes_per_pixel=BATCH_IMAGE_BYTES_PER_PIXEL)


def _check_batches_split(strategy, preset, settings):
    """On JAX over several devices every step's batch splits evenly over
    them (TensorFlow's strategies split an uneven one themselves): refused
    here, before the run folder, not at a stage's first step, which for the
    upscaler comes after the whole translation stage."""
    devices = strategy.num_replicas_in_sync
    if not on_jax() or devices == 1:
        return
    fewer = "use fewer devices (CUDA_VISIBLE_DEVICES) or --strategy default"
    batches = []
    if settings.stage != "sr":
        batches.append(("--batch-size", 2 * preset.batch_size,
                        "the translation step's (twice --batch-size, the augmented views "
                        "added)", f"give a --batch-size they divide, or {fewer}"))
    if settings.stage != "translate":
        batches.append(("--strategy", preset.sr_batch_size,
                        f"the upscaler step's (the {settings.preset} preset's sr_batch_size)",
                        fewer))
    for option, images, what, remedy in batches:
        if images % devices:
            raise InputError(option, f"{what} {images} images do not split over {devices} "
                             f"devices: {remedy}")


def _steps_per_epoch(images, batch_size):
    """`N step(s)` a pass over `images` takes: the dataset repeats before it
    batches, so a last partial batch is filled from the next pass (and a
    domain smaller than a batch fills one step)."""
    steps = max(1, math.ceil(images / batch_size))
    return f"{steps} step{'s' if steps > 1 else ''}"


def _provenance(run):
    settings, preset = run.settings, run.preset
    return {
        "dataset": run.data_dir,
        "ct_dir": settings.ct_dir,
        "mri_dir": settings.mri_dir,
        "preset": settings.preset,
        "steps": preset.steps,
        "sr_steps": preset.sr_steps,
        "sr_degradations": ["bicubic", *settings.sr_degradations],
        "sr_pairs": settings.sr_pairs,
        "sr_gan_steps": preset.sr_gan_steps,
        "batch_size": preset.batch_size,
        "lr": preset.lr,
        "lr_decay_start": lr_decay_start(preset.steps, settings.lr_decay_start),
        "precision": keras.mixed_precision.global_policy().name,
        "weight_decay": preset.weight_decay,
        "crop_factor": preset.crop_factor,
        "lambda_identity": preset.lambda_identity,
        "lambda_structure": preset.lambda_structure,
        "lambda_nce": preset.lambda_nce,
        "augmentation": preset.augmentation,
        "seed": settings.seed,
        "started": run.started,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


# The provenance of the run that trained the upscaler, where another run
# trained the translators.
UPSCALER_RUN_KEYS = ("preset", "dataset", "ct_dir", "mri_dir", "precision", "seed", "started",
                     "finished", "versions")


def _training_record(run):
    """config.json's `training`: this run's provenance. A run of the
    upscaler alone (`--stage sr`) beside trained translators keeps their
    record, with its own upscaler keys and, under `upscaler_run`, its own
    preset, data, precision, seed, time and versions; a run of the
    translators alone beside a trained upscaler (`--stage translate`) keeps
    the upscaler's keys and run the other way round."""
    record = _provenance(run)
    if run.resumed_at:
        record["resumed_at"] = dict(run.resumed_at)
    if run.kept_record is None and run.settings.stage == "translate":
        # No upscaler was trained: its keys would describe none.
        return {key: value for key, value in record.items() if key not in UPSCALER_RECORD_KEYS}
    if run.kept_record is None:
        return record
    if run.settings.stage == "translate":
        kept = run.kept_record
        upscaler_run = kept.get("upscaler_run") or {
            key: kept.get(key) for key in UPSCALER_RUN_KEYS}
        # The kept upscaler's keys as it has them (a converted one has no
        # sr_* keys, but its rrdbnet_source), none of this run's preset.
        own = {key: value for key, value in record.items() if key not in UPSCALER_RECORD_KEYS}
        return {**own, **{key: kept[key] for key in (*UPSCALER_RECORD_KEYS, "rrdbnet_source")
                          if key in kept}, "upscaler_run": upscaler_run}
    # A converted upscaler's source no longer describes the one trained now.
    kept = {key: value for key, value in run.kept_record.items() if key != "rrdbnet_source"}
    upscaler_run = {key: record[key] for key in (*UPSCALER_RUN_KEYS, "resumed_at")
                    if key in record}
    return {**kept, **{key: record[key] for key in UPSCALER_RECORD_KEYS},
            "upscaler_run": upscaler_run}


def _train_stages(run):
    """Trains the networks of `settings.stage` and writes their weights."""
    started = time.perf_counter()
    if "g_target" in run.networks:
        run.best = _train_translators(run)
    if "rrdbnet" in run.networks:
        _train_upscaler(run)
    run.config.training.update(_training_record(run))
    written = save_networks(run.networks, run.config, run.settings.weights_dir)
    logger.info("Wrote " + ", ".join(written))
    logger.info(f"Training took {time.perf_counter() - started:.0f} s")


def _train_translators(run):
    """The translation stage; returns its best-weights callback (or None)."""
    settings, preset, networks = run.settings, run.preset, run.networks
    eval_every = preset.eval_every
    make_best = None
    # Without pairs every periodic evaluation would only say it skipped.
    if eval_every > 0 and run.test_pairs:
        def make_best(resumed):
            return BestWeightsCallback(
                lambda: {e.direction: e.summary for e in evaluate_generators(
                    networks, run.folders, run.config, baselines=False)},
                networks, run.config, eval_every, settings.best_metric,
                os.path.join(settings.weights_dir, "best"),
                os.path.join(run.logdir, "checkpoint_evals.csv"), resumed)
    mri, ct = run.slices
    progress, best = train_translation(networks, preset, mri, ct, run.logdir, settings.seed,
                                       run.stages, make_best)
    _note_resumes(run, "translation", progress)
    logger.info(f"Translation: {progress.summary()}")
    return best


def _train_upscaler(run):
    stages = run.stages.later_stage() if "g_target" in run.networks else run.stages
    progress, gan_progress = train_upscaler(run.networks["rrdbnet"], run.preset,
                                            run.make_sr_dataset, run.logdir, stages,
                                            run.settings.vgg_weights)
    logger.info(f"Upscaler, L1: {progress.summary('loss')}")
    _note_resumes(run, "upscaler", progress)
    if gan_progress is not None:
        _note_resumes(run, "upscaler_gan", gan_progress)
        logger.info(f"Upscaler, adversarial: {gan_progress.summary('pixel')}")


def _note_resumes(run, stage, progress):
    if getattr(progress, "resumed_at", None):
        run.resumed_at[stage] = progress.resumed_at


def _finish(run):
    """The closing evaluation: the upscaler against its baselines, then
    both translation directions on the test pairs with the HTML report."""
    if "rrdbnet" in run.networks:
        _score_upscaler(run)
    if run.best is not None and run.best.best is not None:
        logger.info(f"Best {run.best.metric} {run.best.best:.4f} at step "
                    f"{run.best.best_step}: {run.best.best_dir}")
    if "g_target" not in run.networks:
        return None
    # With the folder's RRDB-Net, kept by a translation-only run: scored
    # as `infer.py` translates.
    evaluations = evaluate_weights(run.settings.weights_dir, run.folders, run.config)
    if not evaluations:
        return None
    # The page says which weights it scored: the final ones, not weights/best
    # (chosen on these very test pairs, so its score is optimistic).
    scored = "Scored: the final weights."
    if run.best is not None and run.best.best is not None:
        scored += (f" The best {run.best.metric} during training, {run.best.best:.4f} at step "
                   f"{run.best.best_step}, is kept in {run.best.best_dir}; it was chosen on "
                   "these test pairs, so its score is optimistic.")
    written = write_report(
        run.logdir, evaluations,
        f"vaecyclegan run {os.path.basename(os.path.normpath(run.logdir))}",
        loss_csvs=[(label, os.path.join(run.logdir, name)) for label, name in LOSS_LOGS],
        note=scored)
    summaries = {e.direction: e.summary for e in evaluations}
    logger.info(f"\nTest pairs ({written['metrics']}):\n{format_table(summaries)}")
    logger.info(f"Report: {written['html']}")
    return summaries


def _score_upscaler(run):
    """Scores the upscaler on held-out real pairs and on the test images,
    whichever the run has, each beside bicubic and nearest upsampling."""
    rrdbnet, config = run.networks["rrdbnet"], run.config
    scale, channels = config.rrdbnet.scale, config.channels
    if run.sr_held_out:
        _write_upscaler_scores(run.logdir, "sr_pairs_metrics.json", "the held-out real pairs",
                               evaluate_upscaler_on_pairs(rrdbnet, scale, channels,
                                                          run.sr_held_out))
    test_images = upscaler_test_images(run.folders)
    if test_images:
        _write_upscaler_scores(run.logdir, "sr_metrics.json", "the test images",
                               evaluate_upscaler(rrdbnet, scale, channels, test_images))


def _write_upscaler_scores(logdir, file_name, heading, summary):
    path = os.path.join(logdir, file_name)
    write_metrics_json(path, summary)
    logger.info(f"\nUpscaler on {heading} ({path}):\n{format_sr_table(summary)}")
