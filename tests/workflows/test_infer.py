"""`infer.py` without trained weights; the tests that need them are in
tests/integration/test_infer.py."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.harness import REPO, assert_one_line_error, infer, write_image


def test_missing_weights_are_one_clear_line(tmp_path, capsys):
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8), np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--weights-dir", str(tmp_path / "none"))
    assert_one_line_error(capsys, code, "config.json")
    assert not (tmp_path / "out").exists()


def test_infer_py_runs_as_a_script_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "infer.py"), "--direction", "mri2ct",
         "--input", str(tmp_path / "absent.png"), "--output", str(tmp_path / "out")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"error: {tmp_path / 'absent.png'}: input not found"
    assert not (tmp_path / "out").exists()


def test_two_inputs_with_one_output_name_are_refused(tmp_path):
    from vaecyclegan.errors import InputError
    from vaecyclegan.io.formats import ScanSource
    from vaecyclegan.workflows.output_staging import output_names

    sources = [ScanSource("image", [str(tmp_path / name)], name)
               for name in ("scan.png", "scan.jpg")]
    with pytest.raises(InputError, match="both be written as scan.png"):
        output_names(sources, str(tmp_path / "o"))


def test_an_output_folder_under_a_file_is_refused_before_reading(tmp_path, capsys):
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.infer import main
    from vaecyclegan.io.image_format import write_png

    write_png(str(tmp_path / "in.png"), np.arange(256, dtype=np.uint8).reshape(16, 16))
    (tmp_path / "afile").write_text("a file")
    # No weights folder either: the output check comes first, so the
    # message is about the output.
    code = run_cli(main, ["--direction", "mri2ct", "--input", str(tmp_path / "in.png"),
                          "--output", str(tmp_path / "afile" / "out"),
                          "--weights-dir", str(tmp_path / "none")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'afile' / 'out'}: cannot be created: "
        f"{tmp_path / 'afile'} is a file, not a folder")


def test_the_upscaled_identity_baseline_stays_within_the_files_values():
    # Bicubic overshoot past 0..255 made the baseline something no written
    # image could be (MAE 75.04 against 74.72 clipped).
    import cv2

    from vaecyclegan.io.scan import Scan
    from vaecyclegan.workflows.infer import _resized

    edges = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((4, 4))) * 255.0
    grey = Scan("a.png", "image", "mri", edges[None].astype(np.float32), "grey", "a.png", 255.0,
                np.uint8)
    big = _resized(grey, 4, cv2.INTER_CUBIC).values
    assert big.shape == (1, 64, 64) and big.min() == 0.0 and big.max() == 255.0
    hu = Scan("b.png", "image", "ct", (edges * 256 - 1024)[None].astype(np.float32), "hu",
              "b.png", 255.0, np.uint16)
    big = _resized(hu, 4, cv2.INTER_CUBIC).values
    assert big.min() == -1024.0 and big.max() == 65535 - 1024


class _RepeatingUpscaler:
    """Repeats each pixel x4 (clipped to [0, 1], as the RRDB-Net's output
    is) and keeps what it was given."""

    scale = 4

    def __init__(self):
        self.seen = []

    def upscale(self, image):
        self.seen.append(image)
        return np.kron(np.clip(image, 0.0, 1.0), np.ones((4, 4), np.float32))


@pytest.mark.parametrize("pixels, window, seen_range", [
    # HU + 1024 of a head (-1024..1900 HU): divided by 65535 it reached the
    # upscaler at 0..0.045, nearly black, and came back 10-12 dB below
    # bicubic (measured with the quick preset's upscaler).
    (np.array([[0, 1024], [1064, 2924]], np.uint16), None, (0.0, 1.0)),
    # A synthetic CT: widened to its weights' window (-1000..2000 HU), as
    # its training CT was read.
    (np.array([[24, 1024], [1064, 2924]], np.uint16), (-1000.0, 2000.0),
     (0.0, 2900 / 3000)),
    (np.array([[0, 100], [200, 255]], np.uint8), None, (0.0, 1.0)),
])
def test_16bit_images_reach_the_upscaler_over_their_range_and_come_back_whole(
        pixels, window, seen_range):
    from vaecyclegan.workflows.infer import _upscale_stored

    upscaler = _RepeatingUpscaler()
    upscaled = _upscale_stored(upscaler, pixels, window)
    [seen] = upscaler.seen
    assert (seen.min(), seen.max()) == pytest.approx(seen_range, abs=1e-6)
    assert upscaled.dtype == pixels.dtype
    np.testing.assert_array_equal(upscaled, np.kron(pixels, np.ones((4, 4), pixels.dtype)))


def test_a_spaced_scan_for_weights_that_know_no_millimetre_is_warned_of(caplog):
    # Weights trained on PNGs (a resize factor, no mm) shrank a 0.49 mm
    # 512-px volume by their factor, twice the anatomy the networks learned,
    # and said "translated at the training pixel scale".
    import types

    from vaecyclegan.config import PixelScaleConfig
    from vaecyclegan.translation.translator import Translator
    from vaecyclegan.workflows.infer import _warn_if_spacing_unused

    volume = types.SimpleNamespace(pixel_mm=(0.49, 0.49), output_name="head.nii.gz")
    image = types.SimpleNamespace(pixel_mm=None, output_name="a.png")
    for scale, said in ((PixelScaleConfig(resize_factor=4.0), True),
                        (PixelScaleConfig(resize_factor=4.0, mm_per_pixel=3.9), False),
                        (PixelScaleConfig(resize_factor=1.0), False)):
        translator = Translator(None, 8, 3, pixel_scale=scale)
        caplog.clear()
        with caplog.at_level("WARNING", logger="vaecyclegan"):
            _warn_if_spacing_unused([image, volume], translator)
        assert ("head.nii.gz (0.49 mm pixels) is shrunk by their resize factor 4" in
                caplog.text) is said, caplog.text
        described = translator.describe((512, 512), (0.49, 0.49))
        assert ("the weights know no mm per pixel" in described) is (
            said and scale.resize_factor != 1.0), described
    caplog.clear()
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        _warn_if_spacing_unused([image], Translator(None, 8, 3,
                                                    pixel_scale=PixelScaleConfig(4.0)))
    assert caplog.text == ""  # control: images without spacing are what it knows
