"""2-D images (PNG, JPEG, TIFF, BMP; 8 or 16 bit): reading them as grey
slices, writing PNGs of the input's bit depth, deviation heat maps, and
`ImageFormat`, the `ScanFormat` of image files.

Reading checks the header first (size against the memory available), then
decodes the whole image: a truncated file is refused, not filled in. The
project opens files itself and hands OpenCV bytes (`cv2.imdecode`,
`cv2.imencode`), never a path, so that any file name works.

Orientation: an image is read as viewers show it. A JPEG (or PNG) whose
EXIF Orientation tag says it was stored turned or mirrored is turned
upright as `PIL.ImageOps.exif_transpose` does (all 8 orientations; a TIFF's
Orientation tag is applied by its decoder), so the networks see the upright
image, and the result is written in that displayed orientation: a result
PNG carries no Orientation tag, so it shows as its input does in a viewer,
while its stored pixels are turned against the input's stored ones.
"""

import contextlib
import os
import sys
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import atomic_path
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, unit_to_values
from vaecyclegan.io.memory_budget import NotEnoughMemory, check_fits_in_memory
from vaecyclegan.io.scan import (
    STD_FOLDER,
    Scan,
    ScanFormat,
    file_path,
    list_folder,
    open_regular_file,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# A slice smaller than this on either side holds no anatomy to translate.
MIN_SIDE = 8
# EXIF tag 274: how the stored pixels are turned from the displayed image.
EXIF_ORIENTATION = 0x0112
# Each EXIF orientation's way from stored to displayed pixels (rows, columns),
# as `PIL.ImageOps.exif_transpose` turns them.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # needs 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed
    8: lambda a: np.rot90(a, 1),  # needs 90 degrees counter-clockwise
}
# Pillow formats whose decoder in OpenCV applies the Orientation tag itself.
_ORIENTED_BY_DECODER = ("TIFF",)
# The IEND chunk (empty, so its CRC is fixed) that closes every PNG.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
NO_MEMORY_TO_DECODE = "not enough memory to decode this image"
# cv2.error.code of a failed allocation (OpenCV's StsNoMem).
CV_NO_MEMORY = -4
UNREADABLE = "not a readable image (corrupt, truncated or not an image)"
TRUNCATED = ("not a readable image: truncated, the file ends before all its pixels "
             "(cut short in a copy?)")


def is_image_file(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


class NoImageFiles(InputError):
    """A folder that holds no image file: a caller that knows why (volumes
    where images were expected) says so by catching this type."""


def list_images(folder):
    """Sorted image files directly inside `folder` (any file name, valid
    UTF-8 or not; hidden files, folders and special files left out).

    Raises:
        InputError: the folder is missing, cannot be listed or holds no image.
    """
    folder = file_path(folder)
    if not os.path.isdir(folder):
        raise InputError(folder, "not a folder; a folder of images is needed here"
                         if os.path.exists(folder) else "folder not found")
    entries = list_folder(folder)
    names = sorted(
        name for name in entries
        if is_image_file(name) and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    )
    if not names:
        raise NoImageFiles(
            folder, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
        )
    return [os.path.join(folder, name) for name in names]


def read_grey(path):
    """Reads an image as one grey channel, keeping its bit depth, upright
    as viewers show it (EXIF orientation applied, see the module's notes).

    Colour images are converted with the usual luma weights; alpha is
    dropped.

    Returns:
        A 2-D `uint8` or `uint16` array.

    Raises:
        InputError: missing, not a regular file, empty, unreadable,
            truncated, too large for the memory available, or not an
            8/16-bit image.
    """
    path = file_path(path)
    with open_regular_file(path) as file, _decoders_quiet():
        orientation, kind = _check_whole_image(path, file)
        file.seek(0)
        try:
            data = file.read()
        except MemoryError:
            raise NotEnoughMemory(path, NO_MEMORY_TO_DECODE) from None
        except OSError as error:
            raise InputError(path, f"cannot be read ({error.strerror or error})") from None
        if kind == "PNG" and data.rfind(_PNG_END) < 0:
            # Pillow stops at the last pixel; a PNG ends with its IEND chunk.
            raise InputError(path, TRUNCATED)
        try:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except MemoryError:
            # The memory left, not the file: training stops rather than skip it.
            raise NotEnoughMemory(path, NO_MEMORY_TO_DECODE) from None
        except cv2.error as error:
            if getattr(error, "code", None) == CV_NO_MEMORY:  # its own allocation failed
                raise NotEnoughMemory(path, NO_MEMORY_TO_DECODE) from None
            pixels = None
        except ValueError:
            pixels = None
        del data
    if pixels is None:
        raise InputError(path, UNREADABLE)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(path, f"unsupported pixel type {pixels.dtype} (8- or 16-bit expected)")
    if pixels.ndim == 3:
        if pixels.shape[2] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
        elif pixels.shape[2] == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        else:
            pixels = pixels[:, :, 0]
    if orientation in _UPRIGHT:
        pixels = np.ascontiguousarray(_UPRIGHT[orientation](pixels))
    check_min_size(path, pixels.shape)
    return pixels


def check_min_size(path, shape):
    """Refuses slices smaller than `MIN_SIDE` on a side."""
    height, width = shape[-2:]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise InputError(path, f"slice is {width}x{height}, smaller than the {MIN_SIDE}x{MIN_SIDE} "
                         "a slice needs")


def _check_whole_image(path, file):
    """Reads the header of the image in `file` (size checked against the
    memory available before any pixel is decoded), then decodes it whole
    with Pillow, so that a truncated file is refused rather than filled in.

    Returns:
        `(orientation, kind)`: the orientation to turn the decoded pixels
        by (`_UPRIGHT`'s keys; 1 or None: as stored) and Pillow's name of
        the format ("PNG", "JPEG", ...).
    """
    with _pillow_strict():
        try:
            image = Image.open(file)
            width, height = image.size
        except Exception:  # any bytes reach the decoder: nothing else may escape
            raise InputError(path, UNREADABLE) from None
        with image:
            check_fits_in_memory(path, width * height, f"image is {width}x{height}")
            try:
                image.load()
                pages = int(getattr(image, "n_frames", 1))
            except MemoryError:
                raise NotEnoughMemory(path, NO_MEMORY_TO_DECODE) from None
            except Exception as error:  # as above
                raise InputError(path, _decode_problem(error)) from None
            if pages > 1:
                # OpenCV decodes the first page only: the others were lost.
                raise InputError(path, f"multi-page {image.format} ({pages} pages): one slice "
                                 "a file is read; save each page as a file, or the stack as "
                                 "a NIfTI volume")
            if image.format in _ORIENTED_BY_DECODER:
                return None, image.format
            try:
                return image.getexif().get(EXIF_ORIENTATION), image.format
            except Exception:  # a broken EXIF block: as stored
                return None, image.format


def _decode_problem(error):
    message = " ".join(str(error).split())
    if "truncated" in message or isinstance(error, EOFError):
        return TRUNCATED
    return f"{UNREADABLE}: {message}" if message else UNREADABLE


@contextlib.contextmanager
def _pillow_strict():
    """Pillow as the reader needs it: no decompression-bomb limit (the
    memory check is the one that applies here), truncated images refused,
    and its warnings (e.g. a corrupt EXIF block) kept off stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = limit
            ImageFile.LOAD_TRUNCATED_IMAGES = truncated


@contextlib.contextmanager
def _decoders_quiet():
    """The image codecs kept off stderr while they decode: a refusal is the
    reader's one line, and a corrupt file makes libpng, libjpeg and libtiff
    print their own (OpenCV's log is silenced; what the C libraries write
    straight to the stderr file descriptor goes to /dev/null meanwhile)."""
    with _quiet_opencv(), _c_stderr_discarded():
        yield


@contextlib.contextmanager
def _quiet_opencv():
    logging = cv2.utils.logging
    previous = logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


@contextlib.contextmanager
def _c_stderr_discarded():
    """File descriptor 2 pointed at /dev/null while C code runs (left as it
    is where it cannot be: no descriptor 2, no /dev/null)."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        os.dup2(null, 2)
    except OSError:
        os.close(saved)
        saved = None
    finally:
        os.close(null)
    if saved is None:
        yield
        return
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_png(path, pixels):
    """Writes a 2-D `uint8` or `uint16` array (or a BGR image) as PNG,
    atomically. The bytes are encoded in memory and written by Python, so
    any file name works."""
    path = file_path(path)
    with _quiet_opencv():
        try:
            ok, encoded = cv2.imencode(".png", pixels)
        except cv2.error:
            ok = False
    if not ok:
        raise InputError(path, "could not write PNG")
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(encoded.tobytes())


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


def read_result_scan(path, domain):
    """Reads a translated image as `image_result` wrote it (`result_scan`)."""
    return result_scan(read_grey(path), path, domain)


def result_scan(pixels, path, domain):
    """A translated image's `Scan` as `image_result` wrote it: as
    `image_scan`, except that 16-bit MRI is grey levels over 0..65535 (a
    synthetic MRI's), not a scan to scale by its percentiles."""
    if pixels.dtype == np.uint16 and domain == "mri":
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        return Scan(path, ImageFormat.name, domain, pixels.astype(np.float32)[None], "grey",
                    name, 65535.0, np.uint16)
    return image_scan(pixels, path, domain)


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
