"""A checkpoint of everything a training stage needs to continue.

One `.npz` file per stage in the run folder holds every variable of the
stage's networks (for translation: the four networks, including the latent
samplers' seed states, and the image pools) and of its optimisers (moments,
iteration counts, hence the learning-rate schedule's position, and loss
scales under float16), the step, and the state of the callbacks that must
survive (the best checkpoint's score). It is written atomically: a kill at
any moment leaves the previous checkpoint whole.
"""

import json
import os
import zipfile

import keras
import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path

CHECKPOINT_FOLDER = "checkpoint"
# The stages that checkpoint, in the order a run trains them.
CHECKPOINT_STAGES = ("translation", "upscaler", "upscaler_gan")
# The checkpoints each `--stage` trains, in that order.
STAGE_CHECKPOINTS = {"translate": CHECKPOINT_STAGES[:1], "sr": CHECKPOINT_STAGES[1:],
                     "all": CHECKPOINT_STAGES}
# 2: the JAX translation trainer's discriminators in TensorFlow's order
# (d_source, then d_target); format-1 JAX checkpoints held them the other
# way round, which shapes alone cannot tell.
CHECKPOINT_FORMAT = 2


def checkpoint_path(logdir, stage="translation"):
    """The checkpoint of one stage of the run in `logdir`: `translation`,
    `upscaler` (L1) or `upscaler_gan`."""
    return os.path.join(logdir, CHECKPOINT_FOLDER, f"{stage}.npz")


def save_checkpoint(path, model, step, extra=None):
    """Writes the checkpoint of `model` (a compiled `PrebuiltTrainer`) at `step`."""
    variables = list(model.checkpoint_variables())
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}
    meta = {"format": CHECKPOINT_FORMAT, "step": int(step), "extra": extra or {},
            "variables": [[v.path, list(v.shape)] for v in variables]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def checkpoint_step(path):
    """The step a checkpoint file was written at, or None when it cannot be
    read (restoring it says why)."""
    try:
        with np.load(path) as data:
            return int(json.loads(bytes(data["meta"]).decode("utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def load_checkpoint(path, model):
    """Restores `model` from `path`.

    Returns:
        `(step, extra)`.

    Raises:
        InputError: unreadable, or written for other networks or optimisers.
    """
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            arrays = [data[f"v{i:05d}"] for i in range(len(meta["variables"]))]
    # A truncated file is a BadZipFile, an empty one an EOFError.
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, f"not a readable training checkpoint ({error})") from None
    needed = getattr(model, "oldest_checkpoint_format", 1)
    if meta.get("format", 1) < needed:
        raise InputError(path, f"a checkpoint of format {meta.get('format', 1)}, before "
                         f"{needed}: this trainer would misread it; use another --logdir")
    variables = list(model.checkpoint_variables())
    if len(variables) != len(arrays):
        raise InputError(path, f"holds {len(arrays)} variables, this run has {len(variables)}: "
                         "another architecture, precision or optimiser, or PatchNCE "
                         "(--lambda-nce) on in one and off in the other; use another --logdir")
    for variable, array, (saved_path, _) in zip(variables, arrays, meta["variables"]):
        if tuple(variable.shape) != array.shape:
            raise InputError(path, f"{saved_path} has shape {array.shape}, this run's "
                             f"{variable.path} {tuple(variable.shape)}; use another --logdir")
    for variable, array in zip(variables, arrays):
        variable.assign(array.astype(variable.dtype))
    return meta["step"], meta["extra"]
