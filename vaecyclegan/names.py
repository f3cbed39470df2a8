"""The project's vocabulary, defined once and free of TensorFlow, so that
the command lines can offer it without loading a framework: directions and
their domains, networks and weight files, metrics, precisions, strategies."""

# Translation directions: the generator that makes each, and the domains
# it reads and writes.
DIRECTIONS = {"mri2ct": "g_target", "ct2mri": "g_source"}
DIRECTION_DOMAINS = {"mri2ct": ("mri", "ct"), "ct2mri": ("ct", "mri")}

WEIGHT_FILES = {
    "g_target": "g_target_weights.h5",  # MRI -> CT
    "g_source": "g_source_weights.h5",  # CT -> MRI
    "d_source": "d_source_weights.h5",  # judges MRI
    "d_target": "d_target_weights.h5",  # judges CT
    "rrdbnet": "rrdbnet_weights.h5",
}
TRANSLATION_NETWORKS = ("g_target", "g_source", "d_source", "d_target")

# Paired-image metrics, in report order; lower is better for the second set.
# Directions that make CT add MAE per tissue in HU and bone Dice.
METRIC_KEYS = ("psnr", "ssim", "mae", "bce", "auc", "f1")
REPORTED_METRICS = ("psnr", "ssim", "mae", "mae_hu", "mae_air", "mae_soft", "mae_bone",
                    "bone_dice", "bce", "auc", "f1")
LOWER_IS_BETTER = ("mae", "mae_hu", "mae_air", "mae_soft", "mae_bone", "bce")

PRESET_NAMES = ("smoke", "quick", "paper")
STAGES = ("translate", "sr", "all")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SLICE_AXES = ("axial", "coronal", "sagittal")
# How a translation made at the training pixel scale returns to the input's
# grid: the RRDB-Net where its factor fits, else bicubic ("auto"); always
# bicubic; or no resampling at all (translated at the input's own scale).
RESAMPLING = ("auto", "bicubic", "off")
# The augmented view that doubles each training batch: a left-right flip
# with a small rotation, shift and zoom ("affine"), or the flip alone.
AUGMENTATIONS = ("affine", "flips")
