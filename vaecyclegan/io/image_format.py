"""2-D images (PNG, JPEG, TIFF, BMP; 8 or 16 bit): reading them as grey
slices, writing PNGs of the input's bit depth, deviation heat maps, and
`ImageFormat`, the `ScanFormat` of image files."""

import os
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, unit_to_values
from vaecyclegan.io.memory_budget import check_fits_in_memory
from vaecyclegan.io.scan import STD_FOLDER, Scan, ScanFormat

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# A slice smaller than this on either side holds no anatomy to translate.
MIN_SIDE = 8


def is_image_file(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder):
    """Sorted image files directly inside `folder`.

    Raises:
        InputError: the folder is missing or holds no image.
    """
    if not os.path.isdir(folder):
        raise InputError(folder, "folder not found")
    names = sorted(
        name for name in os.listdir(folder)
        if is_image_file(name) and not name.startswith(".")
    )
    if not names:
        raise InputError(
            folder, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
        )
    return [os.path.join(folder, name) for name in names]


def read_grey(path):
    """Reads an image as one grey channel, keeping its bit depth.

    Colour images are converted with the usual luma weights; alpha is
    dropped.

    Returns:
        A 2-D `uint8` or `uint16` array.

    Raises:
        InputError: unreadable or not an 8/16-bit image.
    """
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise InputError(path, "empty file (0 bytes)")
    width, height = _header_size(path)
    check_fits_in_memory(path, width * height, f"image is {width}x{height}")
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(path, "not a readable image (corrupt, truncated or not an image)")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(path, f"unsupported pixel type {pixels.dtype} (8- or 16-bit expected)")
    if pixels.ndim == 3:
        if pixels.shape[2] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
        elif pixels.shape[2] == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        else:
            pixels = pixels[:, :, 0]
    check_min_size(path, pixels.shape)
    return pixels


def check_min_size(path, shape):
    """Refuses slices smaller than `MIN_SIDE` on a side."""
    height, width = shape[-2:]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise InputError(path, f"slice is {width}x{height}, smaller than the {MIN_SIDE}x{MIN_SIDE} "
                         "a slice needs")


def _header_size(path):
    """(width, height) from the file header alone, without decoding pixels,
    so that a huge image is refused before it is allocated."""
    try:
        with warnings.catch_warnings():
            # Pillow's decompression-bomb guard would stop at its own limit;
            # the memory check that follows is the one that applies here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as image:
                    return image.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputError(path,
                         "not a readable image (corrupt, truncated or not an image)") from None


def write_png(path, pixels):
    """Writes a 2-D `uint8` or `uint16` array as PNG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, pixels):
            raise InputError(path, "could not write PNG")


def read_image_scan(path, domain):
    """Reads a 2-D image file as a one-slice `Scan`.

    8-bit images are taken as already windowed (CT) or scaled (MRI) grey
    levels, as the Kaggle JPEGs and the phantom's PNGs are. 16-bit CT holds
    HU + 1024 (`PNG16_HU_OFFSET`); 16-bit MRI is scaled by its percentiles.
    """
    return image_scan(read_grey(path), path, domain)


def image_scan(pixels, path, domain):
    """A one-slice `Scan` of 8- or 16-bit `pixels` (see `read_image_scan`)."""
    name = os.path.splitext(os.path.basename(path))[0] + ".png"
    values = pixels.astype(np.float32)[None]
    kind = ImageFormat.name
    if pixels.dtype == np.uint8:
        return Scan(path, kind, domain, values, "grey", name, 255.0, np.uint8)
    if domain == "ct":
        return Scan(path, kind, domain, values - PNG16_HU_OFFSET, "hu", name, 255.0, np.uint16)
    return Scan(path, kind, domain, values, "signal", name, 255.0, np.uint16)


def image_result(scan, unit, domain, intensity):
    """The result of translating (or upscaling) an image scan into `domain`:
    a 2-D array of the input's bit depth (16-bit CT as HU + 1024, 16-bit MRI
    over the full 0..65535)."""
    if scan.source == np.uint8:
        return np.round(unit_to_values(unit, "grey", intensity, 255.0)).astype(np.uint8)
    if domain == "ct":
        hu = unit_to_values(unit, "hu", intensity)
        return np.clip(np.round(hu) + PNG16_HU_OFFSET, 0, 65535).astype(np.uint16)
    return np.round(unit_to_values(unit, "grey", intensity, 65535.0)).astype(np.uint16)


def write_std_heat_maps(names, std, scale, target):
    """Writes one PNG heat map per slice of `std` (deviation in [-1, 1]
    units) into `STD_FOLDER`, named after `names` with a .png extension.

    Args:
        names: the output file name of each slice.
        std: (slices, H, W) deviation.
        scale: the deviation (8-bit grey levels) at which the maps saturate.
        target: maps an output file name to the path to write.
    """
    # Imported here: the heat maps' colour map is an evaluation concern,
    # and reading or writing scans should not load matplotlib.
    from vaecyclegan.evaluation.uncertainty import std_heat_map

    for name, plane in zip(names, std):
        heat = cv2.cvtColor(std_heat_map(plane * 127.5, scale), cv2.COLOR_RGB2BGR)
        write_png(target(os.path.join(STD_FOLDER, os.path.splitext(name)[0] + ".png")), heat)


class ImageFormat(ScanFormat):
    """2-D image files: one slice each, results written as PNG of the
    input's bit depth under the input's name with a .png extension."""

    name = "image"
    label = "image"
    planar = True

    def claims(self, path):
        return is_image_file(path)

    def output_names(self, paths):
        return [os.path.splitext(os.path.basename(paths[0]))[0] + ".png"]

    def read(self, source, domain, axis="axial"):
        return read_image_scan(source.paths[0], domain)

    def write(self, scan, unit, domain, intensity, direction, target):
        write_png(target(scan.output_name), image_result(scan, unit[0], domain, intensity))

    def write_std(self, scan, std, scale, domain, intensity, target):
        write_std_heat_maps([scan.output_name], std, scale, target)

    def describe(self, scan):
        return "PNG/JPEG/TIFF " + ("8-bit" if scan.source == np.uint8 else "16-bit")
