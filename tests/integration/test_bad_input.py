"""Bad input to infer.py: one line naming the file and the problem, exit 2,
nothing written, the input untouched."""

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.infer import main as infer_main


def _png_bytes(pixels):
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    return encoded.tobytes()


def _png_claiming(width, height):
    """A PNG whose header claims a size far beyond its data."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


BAD_FILES = {
    "zero-byte": (lambda: b"", "empty file (0 bytes)"),
    "truncated": (lambda: _png_bytes(np.random.default_rng(0).integers(
        0, 256, (64, 64), dtype=np.uint8))[:300], "not a readable image"),
    "text": (lambda: b"patient notes, not an image\n", "not a readable image"),
    "one-pixel": (lambda: _png_bytes(np.full((1, 1), 128, np.uint8)),
                  "slice is 1x1, smaller than the 8x8"),
    "huge": (lambda: _png_claiming(200_000, 200_000), "image is 200000x200000"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_image_is_one_line_and_nothing_is_written(trained_smoke, tmp_path, capsys, case):
    make, fragment = BAD_FILES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(_png_bytes(np.full((16, 16), 90, np.uint8)))
    (folder / "bad.png").write_bytes(make())
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(folder), "--output",
                                str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {folder / 'bad.png'}: ") and fragment in err[0], err[0]
    assert not (tmp_path / "out").exists()
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_a_missing_input_folder_is_one_line(trained_smoke, tmp_path, capsys):
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(tmp_path / "absent"),
                                "--output", str(tmp_path / "out"),
                                "--weights-dir", trained_smoke.weights_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {tmp_path / 'absent'}: input not found"]


def test_an_unwritable_output_folder_is_one_line(trained_smoke, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(_png_bytes(np.full((16, 16), 90, np.uint8)))
    if os.geteuid() == 0:
        # Permission bits do not stop root; /sys refuses new entries to anyone.
        output = "/sys/vaecyclegan-test-output"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        output = str(locked / "out")
    code = run_cli(infer_main, ["--direction", "mri2ct", "--input", str(tmp_path / "in"),
                                "--output", output, "--weights-dir", trained_smoke.weights_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and output in err[0] and "not writable" in err[0], err
    assert not os.path.exists(output)
