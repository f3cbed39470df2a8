"""The data of a training run: the dataset `--data` names (the phantom is
rendered, Kaggle downloaded, on first use), both domains' training slices,
and the upscaler's training batches and test images."""

import hashlib
import json
import logging
import os

from vaecyclegan.config import PixelScaleConfig
from vaecyclegan.data.domain_slices import load_domain_slices
from vaecyclegan.data.kaggle import ensure_kaggle_dataset
from vaecyclegan.data.phantom import write_phantom_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_write_text
from vaecyclegan.io.image_format import list_images
from vaecyclegan.upscaler.paired_dataset import make_paired_sr_dataset
from vaecyclegan.workflows.output_staging import write_new_folder

logger = logging.getLogger(__name__)
PHANTOM_MARKER = "phantom.json"


def prepare_phantom(data_root, preset, intensity, seed):
    """Renders the phantom for this preset once; later runs reuse it.

    It goes to `phantom_<size>px_seed<seed>`, or, where that folder holds
    another render (other counts or CT window) or anything else, beside
    it under a name that adds its settings' digest: nothing is rendered
    over or deleted, so a run that read the other render still finds it.
    """
    spec = {"size": preset.image_size, "train": preset.phantom_train,
            "test": preset.phantom_test, "seed": seed,
            "ct_window_hu": list(intensity.ct_window_hu)}
    plain = os.path.join(data_root, f"phantom_{preset.image_size}px_seed{seed}")
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    for folder in (plain, f"{plain}_{digest}"):
        if _holds_phantom(folder, spec):
            return folder
        if not os.path.lexists(folder) or (os.path.isdir(folder) and not os.listdir(folder)):
            logger.info(f"Rendering the head phantom into {folder} ...")
            write_new_folder(folder, lambda staging: write_phantom_dataset(
                staging, intensity, size=preset.image_size, num_train=preset.phantom_train,
                num_test=preset.phantom_test, seed=seed))
            # Last: a render cut short has no marker.
            atomic_write_text(os.path.join(folder, PHANTOM_MARKER), json.dumps(spec) + "\n")
            return folder
    raise InputError(folder, "holds files but not the phantom of these settings; move it, or "
                     "choose another --data-root")


def _holds_phantom(folder, spec):
    """Whether `folder` holds a finished phantom render of `spec`."""
    try:
        with open(os.path.join(folder, PHANTOM_MARKER), encoding="utf-8") as f:
            return json.load(f) == spec
    except (OSError, ValueError):
        return False


def resolve_data_option(settings, preset, intensity):
    """The dataset folder `settings.data` names: the phantom (rendered on
    first use), the Kaggle dataset (downloaded on first use) or a folder;
    None when `ct_dir` and `mri_dir` alone name the data."""
    if settings.data == "phantom":
        if settings.ct_dir and settings.mri_dir:
            return None
        return prepare_phantom(settings.data_root, preset, intensity, settings.seed)
    if settings.data == "kaggle":
        return ensure_kaggle_dataset(settings.data_root)
    return settings.data


def load_training_domains(folders, intensity, image_size, crop_factor=None, common_mm=True,
                          for_upscaler=False):
    """Both domains' training slices, `(mri, ct)`, and the pixel scale they
    were loaded at (a `PixelScaleConfig`), with a summary of what was read.

    Args:
        folders: the `DatasetFolders` (`mri_train`, `ct_train`).
        intensity: the `IntensityConfig` inference will use too.
        image_size: training side in pixels.
        crop_factor: as `load_domain_slices` (None: whole slices resized
            to `image_size`).
        common_mm: where both domains give spacings, resample MRI to the
            mm per pixel CT was loaded at (False: each its own; for images
            at their native detail rather than at one scale).
        for_upscaler: the upscaler's images, at their native detail: said
            under their own heading, and a domain whose slices had to be
            enlarged (cut across thick slices) is warned of.
    """
    # CT first: its mm per pixel becomes MRI's, so that the one scale
    # config.json records (and inference applies to either direction's
    # input) is the scale both translators saw.
    # Links inside one domain's folder may not lead into the other's or a test folder.
    ct = load_domain_slices(folders.ct_train, "ct", intensity, image_size,
                            crop_factor=crop_factor, apart_from=folders.others(folders.ct_train))
    mri = load_domain_slices(folders.mri_train, "mri", intensity, image_size,
                             crop_factor=crop_factor,
                             mm_per_pixel=ct.mm_per_pixel if common_mm else None,
                             apart_from=folders.others(folders.mri_train))
    heading = "The upscaler's training images, at their native detail:\n" if for_upscaler \
        else ""
    logger.info(f"{heading}  CT  ({folders.ct_train}): {ct.describe()}\n"
                f"  MRI ({folders.mri_train}): {mri.describe()}")
    if for_upscaler:
        _warn_if_enlarged(("CT", ct), ("MRI", mri))
    # Spaced inputs are resampled by mm; the factor serves images alone.
    elif not (mri.mm_per_pixel and ct.mm_per_pixel) and abs(
            mri.resize_factor - ct.resize_factor) > 0.1 * max(mri.resize_factor,
                                                              ct.resize_factor):
        logger.warning("the MRI and CT training slices are shrunk by different factors "
                       f"({mri.resize_factor:.3g} and {ct.resize_factor:.3g}); inference "
                       "applies their mean to both")
    scale = PixelScaleConfig(
        resize_factor=round((mri.resize_factor + ct.resize_factor) / 2.0, 6),
        mm_per_pixel=ct.mm_per_pixel or mri.mm_per_pixel)
    return (mri.slices, ct.slices), scale


# The upscaler learns the detail of its training images: slices enlarged
# by more than this (original pixels per loaded pixel below it) are blurred.
LEAST_NATIVE_FACTOR = 0.9


def _warn_if_enlarged(*domains):
    for name, loaded in domains:
        if loaded.resize_factor < LEAST_NATIVE_FACTOR:
            logger.warning(
                "the upscaler's %s training slices were enlarged %.3gx to square pixels (%.3g "
                "original pixels a pixel: slices cut across thick ones): it learns their "
                "blur as detail; give it scans in their acquired plane, or real pairs "
                "(--sr-pairs)", name, 1.0 / loaded.resize_factor, loaded.resize_factor)


def make_upscaler_dataset(preset, folders, intensity, scale, channels, seed, degradations=(),
                          sr_pairs=None, loaded=None):
    """`seed_offset -> dataset` of the upscaler's `(low, high)` batches:
    real pairs, or both domains' training images at their native
    resolution, degraded (the detail the upscaler restores is the detail
    those images have). `loaded`: `load_training_domains`' result for the
    translation stage, if any (used when its slices were neither shrunk
    nor resampled to one mm).
    """
    # tf.data's (TensorFlow), imported here: the translation stage on JAX
    # runs without it.
    from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset

    if sr_pairs is not None:
        return lambda offset: make_paired_sr_dataset(
            sr_pairs, preset.sr_patch, scale, preset.sr_batch_size, channels, seed + offset)
    # The translation stage's slices serve when they are at their native
    # size: neither shrunk, nor enlarged (to `--image-size`, or resampled
    # to one mm), as blurred images would teach the upscaler blur.
    if (loaded is None or abs(loaded[1].resize_factor - 1.0) > 1e-6
            or loaded[1].mm_per_pixel):
        loaded = load_training_domains(folders, intensity, preset.sr_patch, crop_factor=1,
                                       common_mm=False, for_upscaler=True)
    # Each domain at its own native size: CT and MRI sizes often differ.
    images = list(loaded[0])
    return lambda offset: make_sr_dataset(images, preset.sr_patch, scale, preset.sr_batch_size,
                                          channels, seed + offset, degradations)


def upscaler_test_images(folders):
    """The image files of both test folders (the upscaler's test set)."""
    paths = []
    for folder in (folders.ct_test, folders.mri_test):
        try:
            paths += list_images(folder) if folder else []
        except InputError as error:
            logger.info(f"Upscaler evaluation leaves out {error}")
    return paths
