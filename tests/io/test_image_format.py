"""Image files: read whole or refused, upright as viewers show them, any
file name, and bit depths and channels as they always were."""

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from vaecyclegan.errors import InputError
from vaecyclegan.io.image_format import list_images, read_grey, write_png

# Not valid UTF-8 (Latin-1 "é"): Python holds the name with a surrogate escape.
UNDECODABLE = b"caf\xe9.png"


def _scene(height=40, width=56):
    """A smooth grey image with no symmetry: any turn or mirror shows."""
    y, x = np.mgrid[:height, :width]
    return (20 + 3 * x + y * (x % 7) // 3 + 60 * (y < height // 4)).clip(0, 255).astype(np.uint8)


def _encode(pixels, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _with_orientation(upright, orientation, fmt):
    """The file a camera would write: pixels stored turned so that a viewer,
    applying the EXIF Orientation tag, shows `upright`."""
    stored = {
        1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :], 5: lambda a: a.T, 6: lambda a: np.rot90(a, 1),
        7: lambda a: np.rot90(a, -1)[::-1, :], 8: lambda a: np.rot90(a, -1),
    }[orientation](upright)
    exif = Image.Exif()
    exif[0x0112] = orientation
    if fmt == "TIFF":
        return _encode(np.ascontiguousarray(stored), fmt, tiffinfo={0x0112: orientation})
    options = {"quality": 95} if fmt == "JPEG" else {}
    return _encode(np.ascontiguousarray(stored), fmt, exif=exif.tobytes(), **options)


# -- file names ---------------------------------------------------------------------------

def test_an_image_whose_name_is_not_utf8_reads_and_writes(tmp_path):
    # cv2.imread was handed this str and died with a segmentation fault.
    path = os.fsdecode(os.path.join(os.fsencode(tmp_path), UNDECODABLE))
    pixels = _scene()
    with open(path, "wb") as f:
        f.write(_encode(pixels, "PNG"))
    np.testing.assert_array_equal(read_grey(path), pixels)
    out = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"out", UNDECODABLE))
    write_png(out, pixels.astype(np.uint16) * 257)
    assert os.listdir(os.fsencode(tmp_path / "out")) == [UNDECODABLE]
    np.testing.assert_array_equal(read_grey(out), pixels.astype(np.uint16) * 257)
    assert read_grey(os.fsencode(out)).dtype == np.uint16  # bytes paths too


def test_a_listing_keeps_undecodable_names_and_leaves_pipes_out(tmp_path):
    root = os.fsencode(tmp_path)
    for name in (UNDECODABLE, b"b.png"):
        with open(os.path.join(root, name), "wb") as f:
            f.write(_encode(_scene(), "PNG"))
    os.mkfifo(tmp_path / "pipe.png")
    os.mkdir(tmp_path / "folder.png")
    paths = list_images(str(tmp_path))
    assert [os.fsencode(os.path.basename(p)) for p in paths] == [b"b.png", UNDECODABLE]
    assert all(read_grey(p).shape == (40, 56) for p in paths)


@pytest.mark.parametrize("name", ["pipe.png", "pipe.jpg"])
def test_a_named_pipe_is_not_a_regular_file_and_is_never_opened(tmp_path, name):
    os.mkfifo(tmp_path / name)  # opening it for reading would block
    with pytest.raises(InputError, match="not a regular file but a named pipe"):
        read_grey(str(tmp_path / name))


def test_an_error_names_an_undecodable_file_in_printable_form(tmp_path):
    path = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9\nx.png"))
    with open(path, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(InputError) as caught:
        read_grey(path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}/caf\\xe9\\nx.png: not a readable image"), message
    message.encode("utf-8")  # printable on any UTF-8 stream, one line
    assert "\n" not in message


# -- truncated and corrupt files ----------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP"])
@pytest.mark.parametrize("kept", [0.6, 0.95])
def test_a_truncated_image_is_refused_not_filled_in(tmp_path, fmt, kept):
    # libjpeg only warned "Premature end of JPEG file" and the rest came grey.
    data = _encode(_scene(96, 128), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[:int(len(data) * kept)])
    with pytest.raises(InputError, match="truncated, the file ends before all its pixels"):
        read_grey(str(path))


def test_a_png_without_its_end_chunk_is_truncated(tmp_path):
    data = _encode(_scene(), "PNG")
    assert data.endswith(b"IEND\xaeB`\x82")
    (tmp_path / "a.png").write_bytes(data[:-6])
    with pytest.raises(InputError, match="truncated"):
        read_grey(str(tmp_path / "a.png"))


def test_a_corrupt_image_leaves_nothing_on_stderr(tmp_path, capfd):
    # libjpeg, libpng and libtiff print their own lines straight to stderr.
    rng = np.random.default_rng(4)
    for fmt in ("JPEG", "PNG", "TIFF"):
        data = bytearray(_encode(_scene(64, 64), fmt, **(
            {"compression": "tiff_lzw"} if fmt == "TIFF" else {})))
        for trial in range(12):
            broken = bytearray(data)
            for index in rng.integers(len(data) // 3, len(data), 6):
                broken[index] ^= 0x5A
            path = tmp_path / f"{trial}.{fmt.lower()}"
            path.write_bytes(bytes(broken))
            try:
                read_grey(str(path))
            except InputError:
                pass
        (tmp_path / f"cut.{fmt.lower()}").write_bytes(bytes(data[:len(data) * 2 // 3]))
        with pytest.raises(InputError):
            read_grey(str(tmp_path / f"cut.{fmt.lower()}"))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_mutated_images_are_read_or_refused_with_input_error_only(tmp_path):
    rng = np.random.default_rng(0)
    originals = {ext: cv2.imencode(ext, _scene(48, 40))[1].tobytes()
                 for ext in (".png", ".jpg", ".tif", ".bmp")}
    for trial in range(60):
        for ext, data in originals.items():
            broken = bytearray(data)
            if trial % 3 == 0:
                broken = broken[:int(rng.integers(1, len(broken)))]
            else:
                for index in rng.integers(0, min(len(broken), 200 if trial % 3 == 1 else
                                                 len(broken)), 4):
                    broken[index] = int(rng.integers(0, 256))
            path = tmp_path / f"m{ext}"
            path.write_bytes(bytes(broken))
            try:
                pixels = read_grey(str(path))
            except InputError as error:
                assert "\n" not in str(error)
            else:
                assert pixels.dtype in (np.uint8, np.uint16) and min(pixels.shape) >= 8


# -- orientation --------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [6, 3, 8, 1])
def test_a_jpeg_with_an_exif_orientation_reads_upright(tmp_path, orientation):
    upright = _scene()
    path = tmp_path / "photo.jpg"
    path.write_bytes(_with_orientation(upright, orientation, "JPEG"))
    with Image.open(path) as image:
        assert image.getexif()[0x0112] == orientation
        shown = np.asarray(ImageOps.exif_transpose(image))
    pixels = read_grey(str(path))
    assert pixels.shape == upright.shape == shown.shape
    assert np.abs(pixels.astype(int) - upright).max() <= 3  # JPEG's loss only
    assert np.abs(pixels.astype(int) - shown).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation):
    upright = _scene()
    path = tmp_path / "a.png"
    path.write_bytes(_with_orientation(upright, orientation, "PNG"))  # lossless, eXIf chunk
    with Image.open(path) as image:
        shown = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(shown, upright)
    np.testing.assert_array_equal(read_grey(str(path)), upright)


@pytest.mark.parametrize("orientation", [6, 3])
def test_a_tiff_orientation_is_applied_once(tmp_path, orientation):
    upright = _scene()
    path = tmp_path / "a.tif"
    path.write_bytes(_with_orientation(upright, orientation, "TIFF"))
    np.testing.assert_array_equal(read_grey(str(path)), upright)


def test_a_colour_jpeg_with_orientation_reads_upright_in_luma(tmp_path):
    upright = _scene()
    colour = np.stack([upright, upright // 2, 255 - upright], axis=-1)
    path = tmp_path / "c.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    path.write_bytes(_encode(np.ascontiguousarray(np.rot90(colour, 1)), "JPEG", quality=95,
                             exif=exif.tobytes()))
    expected = cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(read_grey(str(path)).astype(int) - expected).max() <= 3


# -- bit depths and channels as before ----------------------------------------------------

@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".jpg"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bit_depths_and_channels_read_as_opencv_decodes_them(tmp_path, ext, dtype, channels):
    rng = np.random.default_rng(channels)
    shape = (20, 30) if channels == 1 else (20, 30, channels)
    pixels = rng.integers(0, int(np.iinfo(dtype).max) + 1, shape, dtype=dtype)
    ok, encoded = cv2.imencode(ext, pixels)
    if not ok:
        pytest.skip(f"OpenCV writes no {ext} of this kind")
    (tmp_path / f"a{ext}").write_bytes(encoded.tobytes())
    stored = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    expected = stored if stored.ndim == 2 else cv2.cvtColor(
        stored, cv2.COLOR_BGRA2GRAY if stored.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    grey = read_grey(str(tmp_path / f"a{ext}"))
    assert grey.dtype == stored.dtype and grey.shape == (20, 30)
    np.testing.assert_array_equal(grey, expected)
    if ext in (".png", ".tif"):  # lossless and deep: the depth is kept
        assert grey.dtype == dtype


def test_an_image_of_floats_is_refused(tmp_path):
    ok, encoded = cv2.imencode(".tif", np.zeros((16, 16), np.float32))
    (tmp_path / "f.tif").write_bytes(encoded.tobytes())
    with pytest.raises(InputError, match="unsupported pixel type float32"):
        read_grey(str(tmp_path / "f.tif"))


def test_a_file_where_a_folder_of_images_is_needed_is_named_as_such(tmp_path):
    # It was reported as "folder not found" although the path existed
    # (vaecyclegan-eval --predictions FILE --inputs ...).
    write_png(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="not a folder; a folder of images is needed here"):
        list_images(str(tmp_path / "a.png"))
    with pytest.raises(InputError, match="folder not found"):
        list_images(str(tmp_path / "missing"))


def test_a_multi_page_tiff_is_refused_not_cut_to_its_first_page(tmp_path):
    # OpenCV decoded page 1 of 2; the second was dropped without a word.
    pages = [Image.fromarray(np.full((16, 16), value, np.uint8)) for value in (10, 200)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(InputError, match=r"multi-page TIFF \(2 pages\)"):
        read_grey(str(tmp_path / "stack.tif"))
    # Control: one page reads.
    pages[1].save(tmp_path / "one.tif")
    assert read_grey(str(tmp_path / "one.tif")).max() == 200


def test_a_16_bit_ct_result_holds_hu_plus_1024():
    # Written with another offset (24 HU off), every test had passed: they
    # checked file names and shapes.
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.io.image_format import image_result, image_scan

    intensity = IntensityConfig()  # -1000..2000 HU
    scan = image_scan(np.zeros((4, 5), np.uint16), "ct.png", "ct")
    unit = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
    written = image_result(scan, unit, "ct", intensity)
    hu = (unit + 1) / 2 * 3000 - 1000
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, np.round(hu) + 1024)
    # 16-bit synthetic MRI spans 0..65535, 8-bit results 0..255.
    mri = image_result(image_scan(np.zeros((4, 5), np.uint16), "m.png", "mri"), unit, "mri",
                       intensity)
    np.testing.assert_array_equal(mri, np.round((unit + 1) / 2 * 65535))
    grey = image_result(image_scan(np.zeros((4, 5), np.uint8), "m.png", "ct"), unit, "ct",
                        intensity)
    np.testing.assert_array_equal(grey, np.round((unit + 1) / 2 * 255))
