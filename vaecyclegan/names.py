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
METRIC_KEYS = ("psnr", "ssim", "mae", "bce", "auc", "f1")
REPORTED_METRICS = ("psnr", "ssim", "mae", "mae_hu", "bce", "auc", "f1")
LOWER_IS_BETTER = ("mae", "mae_hu", "bce")

PRESET_NAMES = ("smoke", "quick", "paper")
STAGES = ("translate", "sr", "all")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SLICE_AXES = ("axial", "coronal", "sagittal")
