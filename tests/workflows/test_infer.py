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
