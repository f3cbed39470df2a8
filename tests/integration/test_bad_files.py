"""Files of any bytes under any name through `infer.py`: a name that is not
UTF-8 translates; a broken NIfTI, a truncated image or a named pipe ends as
one `error:` line, exit 2, nothing written, the input untouched (some as a
real process, whose stderr holds everything the libraries print)."""

import gzip
import io
import os
import struct
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from tests.harness import LAS_AFFINE, REPO
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.infer import main as infer_main
from vaecyclegan.io.image_format import read_grey

# Not valid UTF-8: a Latin-1 "é" (valid bytes for a Linux file name).
UNDECODABLE = b"caf\xe9.png"


def _infer_process(weights_dir, input_path, output, direction="mri2ct"):
    """`python infer.py ...` in its own process, run from the repository root."""
    return subprocess.run(
        [sys.executable, "infer.py", "--direction", direction, "--input", input_path,
         "--output", output, "--weights-dir", weights_dir],
        cwd=REPO, env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, timeout=300, check=False)


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _scene(height=40, width=48):
    y, x = np.mgrid[:height, :width]
    return (30 + 3 * x + 2 * y).clip(0, 255).astype(np.uint8)


def _jpeg(pixels, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


def _snapshot(folder):
    folder = os.fsencode(folder)
    contents = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            contents[name] = f.read()
    return contents


def test_a_png_whose_name_is_not_utf8_translates(trained_smoke, tmp_path):
    # cv2.imread, handed the surrogate-escaped name, died with SIGSEGV.
    inputs = os.path.join(os.fsencode(tmp_path), b"in")
    os.mkdir(inputs)
    with open(os.path.join(inputs, UNDECODABLE), "wb") as f:
        f.write(_png(_scene()))
    out = tmp_path / "out"
    result = _infer_process(trained_smoke.weights_dir, os.fsdecode(inputs), str(out))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    assert os.listdir(os.fsencode(out)) == [UNDECODABLE]
    written = read_grey(os.fsdecode(os.path.join(os.fsencode(out), UNDECODABLE)))
    assert written.shape == (40, 48) and written.dtype == np.uint8


def test_a_bad_nifti_is_one_line_from_the_process(trained_smoke, tmp_path):
    # nibabel logged "data code 1234 not recognized" and raised HeaderDataError.
    data = bytearray(nib.Nifti1Image(np.ones((16, 16, 3), np.int16), LAS_AFFINE).to_bytes())
    struct.pack_into("<h", data, 70, 1234)
    path = tmp_path / "in" / "head.nii.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(bytes(data)))
    before = path.read_bytes()
    result = _infer_process(trained_smoke.weights_dir, str(path), str(tmp_path / "out"))
    err = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, err
    assert err[0] == (f"error: {path}: its header declares data type code 1234, which is no "
                      "NIfTI data type (corrupt header?)")
    assert not (tmp_path / "out").exists() and path.read_bytes() == before


def test_a_truncated_jpeg_under_an_odd_name_is_one_line_from_the_process(trained_smoke,
                                                                          tmp_path):
    # The cut JPEG was translated with its lower part made up; the name,
    # printed raw, raised UnicodeEncodeError and spread over two lines.
    name = b"cut \xe9\nphoto.jpg"
    inputs = os.path.join(os.fsencode(tmp_path), b"in")
    os.mkdir(inputs)
    data = _jpeg(np.tile(_scene(), (3, 3)))
    with open(os.path.join(inputs, name), "wb") as f:
        f.write(data[:int(len(data) * 0.6)])
    before = _snapshot(os.fsdecode(inputs))
    result = _infer_process(trained_smoke.weights_dir, os.fsdecode(inputs),
                            str(tmp_path / "out"))
    err = result.stderr.decode("utf-8").strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {tmp_path}/in/cut \\xe9\\nphoto.jpg: not a readable "
                             "image: truncated"), err[0]
    assert not (tmp_path / "out").exists() and _snapshot(os.fsdecode(inputs)) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["cut.png", "cut.tif"])
def test_truncated_png_and_tiff_are_one_line(trained_smoke, tmp_path, capfd, name):
    buffer = io.BytesIO()
    Image.fromarray(np.tile(_scene(), (2, 2))).save(buffer, "PNG" if name.endswith("png")
                                                    else "TIFF")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(_png(_scene()))
    (folder / name).write_bytes(buffer.getvalue()[:int(len(buffer.getvalue()) * 0.6)])
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(folder), "--output",
                                str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {folder / name}: not a readable image: truncated, the "
                                 "file ends before all its pixels (cut short in a copy?)"], err
    assert not (tmp_path / "out").exists()


def test_a_rotated_jpeg_comes_out_as_viewers_show_it(trained_smoke, tmp_path):
    # EXIF Orientation 6: stored on its side, shown upright (40 high, 48 wide).
    exif = Image.Exif()
    exif[0x0112] = 6
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(_jpeg(np.ascontiguousarray(np.rot90(_scene(), 1)),
                                             exif=exif.tobytes()))
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(folder), "--output",
                                str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir])
    assert code == 0
    with Image.open(tmp_path / "out" / "photo.png") as result:
        assert result.size == (48, 40) and 0x0112 not in result.getexif()


def test_a_named_pipe_given_as_input_is_one_line(trained_smoke, tmp_path, capfd):
    os.mkfifo(tmp_path / "scan.png")
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(tmp_path / "scan.png"),
                                "--output", str(tmp_path / "out"),
                                "--weights-dir", trained_smoke.weights_dir])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        f"error: {tmp_path / 'scan.png'}: not a regular file but a named pipe (FIFO)"], err
    assert not (tmp_path / "out").exists()
