"""Typed settings of the three workflows: what `train.py`, `infer.py` and
`vaecyclegan-eval` do, as dataclasses the command lines build from their
options and that library users and tests build directly.

Field names are the command-line options' (`--weights-dir` is
`weights_dir`), and defaults are theirs: the parsers take their defaults
from here. `validate()` names the first problem, the way the command line
would; the workflows call it before doing anything.
"""

import dataclasses

from vaecyclegan.names import (
    DIRECTIONS,
    PRECISIONS,
    PRESET_NAMES,
    REPORTED_METRICS,
    SLICE_AXES,
    STAGES,
    STRATEGIES,
)

SR_DEGRADATIONS = ("blur", "noise")
SR_SCALES = (2, 4)


def _check(condition, message):
    if not condition:
        raise ValueError(message)


def _choice(value, choices, option):
    _check(value in choices, f"{option} must be one of {', '.join(map(str, choices))}, "
           f"not {value!r}")


@dataclasses.dataclass
class TrainSettings:
    """Everything one training run needs beyond its preset.

    `None` means "the preset's value" for the preset-backed fields (`steps`,
    `batch_size`, `image_size`, `lr`, `weight_decay`, `checkpoint_every`,
    `sr_steps`, `sr_scale`, `sr_gan_steps`, `eval_every`).

    Args:
        data: "phantom", "kaggle", or a dataset folder in the Kaggle layout.
        ct_dir, mri_dir: a domain's training folder instead of the layout's.
        data_root: where the phantom is rendered and Kaggle downloaded.
        preset: "smoke", "quick" or "paper".
        steps, batch_size, image_size, lr, weight_decay: overrides.
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
    >>> settings = TrainSettings(preset="smoke", logdir="runs/smoke")
    >>> run_training(settings)  # vaecyclegan.workflows.train
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

    def validate(self):
        """Raises ValueError naming the first option out of range."""
        _choice(self.preset, PRESET_NAMES, "--preset")
        _choice(self.precision, PRECISIONS, "--precision")
        _choice(self.strategy, STRATEGIES, "--strategy")
        _choice(self.stage, STAGES, "--stage")
        _choice(self.best_metric, REPORTED_METRICS, "--best-metric")
        if self.sr_scale is not None:
            _choice(self.sr_scale, SR_SCALES, "--sr-scale")
        for degradation in self.sr_degradations:
            _choice(degradation, SR_DEGRADATIONS, "--sr-degradations")
        for name in ("steps", "sr_steps", "batch_size", "image_size", "lr"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"--{name.replace('_', '-')} must be positive")
        for name in ("weight_decay", "checkpoint_every", "log_every", "lr_decay_start",
                     "sr_gan_steps", "eval_every"):
            value = getattr(self, name)
            _check(value is None or value >= 0,
                   f"--{name.replace('_', '-')} must be 0 or positive")
        self._check_architecture()
        return self

    def _check_architecture(self):
        # Checked here, before any folder is made: a U-Net whose side is not
        # a multiple of its stride fails deep inside Keras (Concatenate).
        from vaecyclegan.training.presets import PRESETS

        preset = PRESETS[self.preset]
        size = self.image_size or preset.image_size
        stride = preset.generator.stride
        _check(self.stage == "sr" or size % stride == 0,
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

    Example:
    >>> run_inference(InferSettings("mri2ct", "scans/mri", "out/ct"))
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

    def validate(self):
        """Raises ValueError naming the first option out of range."""
        _choice(self.direction, (*DIRECTIONS, "none"), "--direction")
        _choice(self.axis, SLICE_AXES, "--axis")
        if self.upscale is not None:
            _choice(self.upscale, SR_SCALES, "--upscale")
        _check(self.batch_size > 0 and self.samples > 0,
               "--batch-size and --samples must be positive")
        _check(self.direction != "none" or self.upscale, "--direction none needs --upscale")
        _check(self.translate_tile == 0 or self.translate_tile >= 32,
               "--translate-tile must be 0 or at least 32")
        _check(self.tile >= 2 and self.tile_pad >= 0,
               "--tile must be at least 2 and --tile-pad at least 0")
        return self


@dataclasses.dataclass
class EvalSettings:
    """One `vaecyclegan-eval` run: a training run's weights on its test
    pairs (`run`), or any tool's predictions against references
    (`predictions`, `references`, `inputs`).

    Args:
        run: a run folder written by `train.py`.
        samples: with `run`, latent draws per image.
        predictions, references, inputs: folders paired by file name.
        direction: with `predictions`, the direction for the report.
        out: the report folder (default with `run`: the run folder).

    Example:
    >>> evaluate(EvalSettings(run="runs/2026-11-26_10-00-00"))
    """

    run: str = None
    samples: int = 1
    predictions: str = None
    references: str = None
    inputs: str = None
    direction: str = "mri2ct"
    out: str = None

    def validate(self):
        """Raises ValueError naming the first problem with the options."""
        folders = [self.predictions, self.references, self.inputs]
        _check(bool(self.run) != any(folders),
               "give either --run, or --predictions, --references and --inputs")
        _check(bool(self.run) or all(folders),
               "--predictions needs --references and --inputs (for the baselines)")
        _check(bool(self.run) or bool(self.out), "--predictions needs --out")
        _check(self.samples > 0, "--samples must be positive")
        _choice(self.direction, tuple(DIRECTIONS), "--direction")
        return self
