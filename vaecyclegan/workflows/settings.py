"""Typed settings of the three workflows: what `train.py`, `infer.py` and
`vaecyclegan-eval` do, as dataclasses the command lines build from their
options and that library users and tests build directly.

Field names are the command-line options' (`--weights-dir` is
`weights_dir`), and defaults are theirs: the parsers take their defaults
from here. `validate()` names the first problem, the way the command line
would; the workflows call it before doing anything.
"""

import dataclasses
import math

from vaecyclegan.evaluation.tissue import BONE_THRESHOLD_HU, TISSUE_THRESHOLDS_HU
from vaecyclegan.names import (
    AUGMENTATIONS,
    DIRECTIONS,
    PRECISIONS,
    PRESET_NAMES,
    REPORTED_METRICS,
    RESAMPLING,
    SLICE_AXES,
    STAGES,
    STRATEGIES,
)

SR_DEGRADATIONS = ("blur", "noise")
SR_SCALES = (2, 4)


def window_bounds(level_width):
    """(level, width) in HU as the window's (low, high); None stays None."""
    if level_width is None:
        return None
    level, width = level_width
    return (level - width / 2.0, level + width / 2.0)


# A CT window's ends stay within this many HU and it is at least 1 HU wide:
# the intensity mapping works in float32, where ends near 1e38 overflowed and
# a width of 1e-300 became zero (NaN after training, a traceback).
CT_WINDOW_MAX_HU = 100_000.0
CT_WINDOW_MIN_WIDTH_HU = 1.0


def window_problem(level, width):
    """What is wrong with a CT window of `level` and `width` HU, or None."""
    if not (math.isfinite(level) and math.isfinite(width)):
        return "the level and width must be finite numbers"
    if not width >= CT_WINDOW_MIN_WIDTH_HU:
        return f"the width must be at least {CT_WINDOW_MIN_WIDTH_HU:g} HU"
    if not all(abs(end) <= CT_WINDOW_MAX_HU for end in window_bounds((level, width))):
        return f"the window's ends must lie within -{CT_WINDOW_MAX_HU:g}..{CT_WINDOW_MAX_HU:g} HU"
    return None


def _check_window(level_width):
    if level_width is None:
        return
    _check(len(level_width) == 2, "--ct-window must be LEVEL,WIDTH in HU, e.g. 40,400")
    problem = window_problem(*level_width)
    _check(problem is None, f"--ct-window: {problem}, e.g. 40,400")


def _check(condition, message):
    if not condition:
        raise ValueError(message)


def _choice(value, choices, option):
    _check(value in choices, f"{option} must be one of {', '.join(map(str, choices))}, "
           f"not {value!r}")


# The preset fields a `TrainSettings` field of the same name overrides.
PRESET_FIELDS = ("steps", "sr_steps", "batch_size", "image_size", "lr", "weight_decay",
                 "sr_gan_steps", "crop_factor", "lambda_identity", "lambda_structure",
                 "lambda_nce", "augmentation", "eval_every", "checkpoint_every")


@dataclasses.dataclass
class TrainSettings:
    """Everything one training run needs beyond its preset.

    `None` means "the preset's value" for the preset-backed fields (`steps`,
    `batch_size`, `image_size`, `lr`, `weight_decay`, `checkpoint_every`,
    `sr_steps`, `sr_scale`, `sr_gan_steps`, `eval_every`, `crop_factor`,
    `lambda_identity`, `lambda_structure`, `lambda_nce`, `levels_without_skip`,
    `augmentation`).

    Args:
        data: "phantom", "kaggle", or a dataset folder in the Kaggle layout.
        ct_dir, mri_dir: a domain's training folder instead of the layout's.
        data_root: where the phantom is rendered and Kaggle downloaded.
        preset: "smoke", "quick" or "paper".
        steps, batch_size, image_size, lr, weight_decay: overrides.
        crop_factor: train on `image_size` crops of slices shrunk this many
            times (1: native resolution) instead of whole resized slices.
        lambda_identity, lambda_structure, lambda_nce: loss weights (the
            identity weight relative to the cycle weight; the MIND
            structure loss's; CUT's contrastive patch loss's).
        levels_without_skip: the generators' finest decoder levels that get
            no skip from the encoder (0: the plain U-Net).
        augmentation: the augmented view's geometry, one of
            `names.AUGMENTATIONS`.
        ct_window: (level, width) in HU of the CT the data holds: 8-bit CT
            carries no window, so this says what its grey levels mean (for
            HU metrics and DICOM/NIfTI output); CT in HU is mapped through
            it. None: the default window (-1000..2000 HU).
        lr_decay_start: step the learning rate starts decaying at (None:
            half the steps).
        precision: one of `names.PRECISIONS`.
        strategy: one of `names.STRATEGIES`.
        resume: True (must), False (never), None (when a checkpoint exists).
        checkpoint_every, log_every: steps between checkpoints, and between
            TensorBoard logs and sample grids (0: none).
        stage: "translate", "sr" or "all".
        weights_dir: where the weight files and `config.json` go.
        logdir: the run folder (None: `runs/<date-time>`).
        seed: seeds data, weights and sampling.
        sr_steps, sr_scale, sr_degradations, sr_pairs, sr_gan_steps,
            vgg_weights: the upscaler's stage.
        eval_every, best_metric: periodic evaluation and the metric that
            picks `<weights_dir>/best`.

    Example:
    >>> import os
    >>> from vaecyclegan.workflows.train import run_training
    >>> settings = TrainSettings(preset="smoke", steps=1, stage="translate", logdir="runs/smoke")
    >>> scores = run_training(settings)  # renders the phantom, trains, evaluates
    >>> sorted(scores)
    ['ct2mri', 'mri2ct']
    >>> sorted(os.listdir("weights"))  # doctest: +NORMALIZE_WHITESPACE
    ['config.json', 'd_source_weights.h5', 'd_target_weights.h5', 'g_source_weights.h5',
     'g_target_weights.h5']
    """

    data: str = "phantom"
    ct_dir: str = None
    mri_dir: str = None
    data_root: str = "data"
    preset: str = "quick"
    steps: int = None
    batch_size: int = None
    image_size: int = None
    lr: float = None
    weight_decay: float = None
    crop_factor: float = None
    lambda_identity: float = None
    lambda_structure: float = None
    lambda_nce: float = None
    levels_without_skip: int = None
    augmentation: str = None
    ct_window: tuple = None
    lr_decay_start: int = None
    precision: str = "auto"
    strategy: str = "auto"
    resume: bool = None
    checkpoint_every: int = None
    log_every: int = 100
    stage: str = "all"
    weights_dir: str = "weights"
    logdir: str = None
    seed: int = 0
    sr_steps: int = None
    sr_scale: int = None
    sr_degradations: list = dataclasses.field(default_factory=list)
    sr_pairs: str = None
    sr_gan_steps: int = None
    vgg_weights: str = None
    eval_every: int = None
    best_metric: str = "ssim"

    def preset_values(self, unset_only=True):
        """`{field: value}`: what the preset gives the preset-backed fields
        left `None`, or (`unset_only` False) all of them (the learning
        rate's decay starts at half the steps).

        Example:
        >>> TrainSettings(steps=600).preset_values()["lr_decay_start"]
        300
        """
        from vaecyclegan.training.presets import PRESETS, lr_decay_start

        preset = PRESETS[self.preset]
        values = {key: getattr(preset, key) for key in PRESET_FIELDS}
        values.update(levels_without_skip=preset.generator.levels_without_skip,
                      sr_scale=preset.rrdbnet.scale,
                      lr_decay_start=lr_decay_start(self.steps or preset.steps))
        return {key: value for key, value in values.items()
                if not unset_only or getattr(self, key) is None}

    def validate(self):
        """Raises ValueError naming the first option out of range."""
        _choice(self.preset, PRESET_NAMES, "--preset")
        _choice(self.precision, PRECISIONS, "--precision")
        _choice(self.strategy, STRATEGIES, "--strategy")
        _choice(self.stage, STAGES, "--stage")
        _choice(self.best_metric, REPORTED_METRICS, "--best-metric")
        if self.augmentation is not None:
            _choice(self.augmentation, AUGMENTATIONS, "--augmentation")
        if self.sr_scale is not None:
            _choice(self.sr_scale, SR_SCALES, "--sr-scale")
        for degradation in self.sr_degradations:
            _choice(degradation, SR_DEGRADATIONS, "--sr-degradations")
        # Finite too: --lr inf trained two steps into NaN.
        for name in ("steps", "sr_steps", "batch_size", "image_size", "lr", "crop_factor"):
            value = getattr(self, name)
            _check(value is None or (value > 0 and math.isfinite(value)),
                   f"--{name.replace('_', '-')} must be a positive (finite) number")
        for name in ("weight_decay", "checkpoint_every", "log_every", "lr_decay_start",
                     "sr_gan_steps", "eval_every", "lambda_identity", "lambda_structure",
                     "lambda_nce"):
            value = getattr(self, name)
            _check(value is None or (value >= 0 and math.isfinite(value)),
                   f"--{name.replace('_', '-')} must be 0 or a positive (finite) number")
        _check_window(self.ct_window)
        # They were ignored, and config.json recorded them as applied.
        sr_only = [name for name in ("sr_steps", "sr_gan_steps", "sr_pairs", "vgg_weights")
                   if getattr(self, name) is not None] + (
            ["sr_degradations"] if self.sr_degradations else [])
        # Recorded in config.json as applied, with no upscaler trained.
        _check(self.stage != "translate" or not sr_only,
               f"--{sr_only[0].replace('_', '-') if sr_only else ''} applies to the upscaler's "
               "stage; --stage translate trains the translators alone")
        _check(not (self.sr_pairs and self.sr_degradations),
               "--sr-degradations degrade the training slices; with --sr-pairs the upscaler "
               "trains on the real pairs as they are: give one or the other")
        # Keras' (and NumPy's) seeds are unsigned 32-bit.
        _check(0 <= self.seed < 2**32, "--seed must be between 0 and 4294967295")
        self._check_architecture()
        return self

    def ct_window_hu(self):
        """The CT window as (low, high) HU, or None for the default."""
        return window_bounds(self.ct_window)

    def _check_architecture(self):
        # Checked here, before any folder is made: a U-Net whose side is not
        # a multiple of its stride fails deep inside Keras (Concatenate).
        from vaecyclegan.training.presets import PRESETS

        preset = PRESETS[self.preset]
        size = self.image_size or preset.image_size
        levels = preset.generator.num_downsamples
        value = self.levels_without_skip
        _check(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                 and 0 <= value <= levels),
               f"--levels-without-skip must be 0 to {levels} (the {self.preset} generator's "
               f"levels), not {self.levels_without_skip}")
        stride = preset.generator.stride
        # With --stage sr too: the size renders the phantom there, and
        # config.json records it as the translators', which infer.py refused.
        _check(size % stride == 0,
               f"--image-size {size} is not a multiple of the {self.preset} generator's stride "
               f"{stride} (2 ** {preset.generator.num_downsamples} levels); use "
               f"{max(stride, size // stride * stride)} or {(size // stride + 1) * stride}")


@dataclasses.dataclass
class InferSettings:
    """One `infer.py` run.

    Args:
        direction: "mri2ct", "ct2mri", or "none" (only `upscale`).
        input: an image, DICOM or NIfTI file, or a folder of them.
        output: the output folder (created if missing).
        weights_dir: folder with `config.json` and the weight files.
        batch_size: slices per forward pass.
        translate_tile: slices with a side above this are translated in
            blended tiles of this side (0: never tile).
        axis: the plane NIfTI volumes are cut along.
        samples: latent draws per image (above 1: their mean, and
            per-pixel standard-deviation maps in `<output>/std`).
        reference: a reference image or folder: paired metrics and a report.
        upscale: 2 or 4: upscale with the weights' RRDB-Net (None: no).
        tile, tile_pad: the upscaler's tile side and context pixels.
        resample: how slices reach the pixel scale the weights were
            trained at and come back (`names.RESAMPLING`): "auto" returns
            through the weights' RRDB-Net where its factor fits, else
            bicubic; "bicubic"; "off" translates at the input's own scale.

    Example:
    >>> import os
    >>> import cv2
    >>> import numpy as np
    >>> from vaecyclegan.networks import save_networks
    >>> from vaecyclegan.workflows.infer import run_inference
    >>> written = save_networks({"g_target": g_target}, config, "weights")  # trained weights
    >>> os.makedirs("scans/mri")
    >>> cv2.imwrite("scans/mri/slice.png", np.zeros((40, 48), np.uint8))
    True
    >>> run_inference(InferSettings("mri2ct", "scans/mri", "out/ct"))
    ['out/ct/slice.png']
    """

    direction: str
    input: str
    output: str
    weights_dir: str = "weights"
    batch_size: int = 8
    translate_tile: int = 1024
    axis: str = "axial"
    samples: int = 1
    reference: str = None
    upscale: int = None
    tile: int = 128
    tile_pad: int = 32
    resample: str = "auto"

    def validate(self):
        """Raises ValueError naming the first option out of range."""
        _choice(self.direction, (*DIRECTIONS, "none"), "--direction")
        _choice(self.resample, RESAMPLING, "--resample")
        _choice(self.axis, SLICE_AXES, "--axis")
        if self.upscale is not None:
            _choice(self.upscale, SR_SCALES, "--upscale")
        _check(self.batch_size > 0 and self.samples > 0,
               "--batch-size and --samples must be positive")
        _check(self.direction != "none" or self.upscale, "--direction none needs --upscale")
        _check(self.direction != "none" or self.samples == 1,
               "--samples draws latent samples of a translation; --direction none translates "
               "nothing")
        _check(self.translate_tile == 0 or self.translate_tile >= 32,
               "--translate-tile must be 0 or at least 32")
        _check(self.tile >= 2 and self.tile_pad >= 0,
               "--tile must be at least 2 and --tile-pad at least 0")
        # Ignored without --upscale (a translation's return through the
        # RRDB-Net tiles on its own), and nothing said so.
        _check(self.upscale or (self.tile, self.tile_pad) == (InferSettings.tile,
                                                              InferSettings.tile_pad),
               "--tile and --tile-pad apply to --upscale")
        return self


@dataclasses.dataclass
class EvalSettings:
    """One `vaecyclegan-eval` run: a training run's weights on its test
    pairs (`run`), any tool's predictions against references
    (`predictions`, `references`, optionally `inputs`), or a mri2ct model
    on a SynthRAD folder (`synthrad`).

    Args:
        run: a run folder written by `train.py`.
        samples: with `run`, latent draws per image.
        predictions, references: files or folders of cases paired by name.
            References in HU (16-bit PNG of HU + 1024, DICOM CT, NIfTI) get
            the SynthRAD metrics; 8-bit images need `inputs`.
        inputs: folder of the images the predictions were made from, for
            the 8-bit metrics and their baselines (2-D images only).
        ct_window: with `inputs`, (level, width) in HU of 8-bit CT: what
            its grey levels mean for the per-tissue errors and bone Dice
            (None: the default window, -1000..2000 HU).
        direction: with `predictions`, the direction for the report (HU
            metrics: mri2ct).
        out: the report folder (default with `run`: the run folder).
        synthrad: a SynthRAD folder (one folder per patient with `ct`, `mr`
            and `mask` NIfTI files): translate each `mr` and score it.
        weights_dir, batch_size: with `synthrad`, the weights and the
            slices per forward pass.
        mask: a mask file, or a folder of masks named after the cases
            (nonzero: scored); default: the body mask of each reference.
        mask_dilation_mm: grows the body mask made from the reference.
        body_threshold: HU above which the reference is body.
        spacing: pixel size in mm of 2-D image files: one value, or
            rows and columns (default 1 mm).
        tissue_thresholds: (low, high) HU: air below, bone above.
        bone_threshold: HU above which a voxel is bone (Dice, HD95).
        wepl: True, False, or None (cases of at most 64 x 512 x 512 voxels).
        hu_to_rsp: a scanner's HU -> RSP curve file (default: a typical one).
        beam_angles: WEPL beam angles in degrees (default 0, 45, ..., 315).
        target: a mask (or folder of them) restricting the WEPL statistics.
        dose_ct, dose_sct: dose grids (RTDOSE or NIfTI) computed on the CT
            and the synthetic CT: files (one case) or folders named after
            the cases.
        prescription_gy: the prescription for the dose MAE (default: the
            reference's 98th percentile above 10 %).

    `evaluate(EvalSettings(run="runs/2026-11-26_10-00-00"))` re-evaluates
    a training run; predictions are scored against references thus:

    Example:
    >>> import os
    >>> import nibabel as nib
    >>> import numpy as np
    >>> from vaecyclegan.workflows.evaluate import evaluate
    >>> ct = np.full((32, 32, 4), -1000, np.int16)  # 4 axial slices of air
    >>> ct[8:24, 8:24] = 40  # and a block of soft tissue
    >>> for folder, volume in (("ct", ct), ("sct", ct + 10)):  # references, predictions
    ...     os.makedirs(folder)
    ...     nib.save(nib.Nifti1Image(volume, np.eye(4)), f"{folder}/case1.nii.gz")
    >>> evaluation = evaluate(EvalSettings(predictions="sct", references="ct", out="report"))
    >>> evaluation.summary["synthrad"]["mean"]["mae"]  # HU, in the body mask
    10.0
    """

    run: str = None
    samples: int = 1
    predictions: str = None
    references: str = None
    inputs: str = None
    ct_window: tuple = None
    direction: str = "mri2ct"
    out: str = None
    synthrad: str = None
    weights_dir: str = "weights"
    batch_size: int = 8
    mask: str = None
    mask_dilation_mm: float = 0.0
    body_threshold: float = -500.0
    spacing: list = None
    tissue_thresholds: list = dataclasses.field(
        default_factory=lambda: list(TISSUE_THRESHOLDS_HU))
    bone_threshold: float = BONE_THRESHOLD_HU
    wepl: bool = None
    hu_to_rsp: str = None
    beam_angles: list = None
    target: str = None
    dose_ct: str = None
    dose_sct: str = None
    prescription_gy: float = None

    def validate(self):
        """Raises ValueError naming the first problem with the options."""
        _check_window(self.ct_window)
        folders = bool(self.predictions or self.references or self.inputs)
        _check(sum((bool(self.run), folders, bool(self.synthrad))) == 1,
               "give either --run, or --predictions with --references, or --synthrad")
        if folders:
            _check(bool(self.predictions and self.references),
                   "--predictions needs --references (and --inputs for 8-bit images)")
            _check(bool(self.out), "--predictions needs --out (and, for 8-bit images, "
                   "--inputs)")
            _check(bool(self.inputs) or self.direction == "mri2ct",
                   "--predictions without --inputs scores synthetic CT in HU: "
                   "--direction must be mri2ct")
        _check(not self.synthrad or bool(self.out), "--synthrad needs --out")
        # Each option below does nothing elsewhere; a run given one there
        # would have scored something other than what was asked, silently.
        defaults = EvalSettings()
        _check(self.run or self.samples == defaults.samples, "--samples applies to --run")
        for option in ("weights_dir", "batch_size"):
            _check(self.synthrad or getattr(self, option) == getattr(defaults, option),
                   f"--{option.replace('_', '-')} applies to --synthrad")
        _check(self.inputs or self.ct_window is None,
               "--ct-window applies to 8-bit images scored with --inputs")
        _check(not (self.run or self.synthrad) or self.direction == defaults.direction,
               "--direction applies to --predictions (--run scores both directions, "
               "--synthrad mri2ct)")
        changed = [name for name in ("tissue_thresholds", "bone_threshold", "body_threshold",
                                     "mask_dilation_mm")
                   if _as_floats(getattr(self, name)) != _as_floats(getattr(defaults, name))]
        _check(not (self.run and changed), f"--{changed[0].replace('_', '-') if changed else ''} "
               "applies to --predictions or --synthrad; --run scores with the defaults")
        _check(self.samples > 0, "--samples must be positive")
        _check(self.batch_size > 0, "--batch-size must be positive")
        _choice(self.direction, tuple(DIRECTIONS), "--direction")
        self._check_hu_options()
        return self

    def _check_hu_options(self):
        given = [name for name in ("mask", "hu_to_rsp", "beam_angles", "target", "dose_ct",
                                   "dose_sct", "prescription_gy", "spacing", "wepl")
                 if getattr(self, name) is not None]
        _check(not (self.run and given), f"--{given[0].replace('_', '-') if given else ''} "
               "applies to --predictions or --synthrad, not to --run")
        _check(_finite(self.mask_dilation_mm) and self.mask_dilation_mm >= 0,
               "--mask-dilation-mm must be 0 or a positive distance")
        low, high = (list(self.tissue_thresholds) + [None, None])[:2]
        _check(len(self.tissue_thresholds) == 2 and _finite(low) and _finite(high)
               and low <= high, "--tissue-thresholds must be two HU values, low <= high")
        _check(_finite(self.bone_threshold) and _finite(self.body_threshold),
               "--bone-threshold and --body-threshold must be numbers of HU")
        _check(self.spacing is None or (len(self.spacing) in (1, 2) and all(
            _finite(s) and s > 0 for s in self.spacing)),
            "--spacing must be one or two positive sizes in mm (rows, columns)")
        _check(self.beam_angles is None or (len(self.beam_angles) > 0 and all(
            _finite(a) for a in self.beam_angles)), "--beam-angles must be finite degrees")
        _check((self.dose_ct is None) == (self.dose_sct is None),
               "--dose-ct and --dose-sct go together")
        _check(self.prescription_gy is None or (_finite(self.prescription_gy)
                                                and self.prescription_gy > 0),
               "--prescription-gy must be a positive dose in Gy")
        # It scales the dose grids' comparison; alone it did nothing, silently.
        _check(self.prescription_gy is None or self.dose_ct is not None,
               "--prescription-gy applies to the dose comparison: give --dose-ct and "
               "--dose-sct too")

    @property
    def spacing_2d(self):
        """(rows, columns) mm of 2-D image files, or None (1 mm)."""
        if self.spacing is None:
            return None
        return tuple(float(s) for s in self.spacing) * (2 // len(self.spacing))


def _as_floats(value):
    """A number, or a list of numbers, as floats for comparing (None: None)."""
    try:
        return [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)
    except (TypeError, ValueError):
        return value


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
