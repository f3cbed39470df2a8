"""Reading and writing 2-D images (PNG, JPEG, TIFF; 8 or 16 bit)."""

import os

import cv2
import numpy as np

from vaecyclegan.atomic_write import atomic_path
from vaecyclegan.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


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
    return pixels


def write_png(path, pixels):
    """Writes a 2-D `uint8` or `uint16` array as PNG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, pixels):
            raise InputError(path, "could not write PNG")
