"""`vaecyclegan-data realistic` end to end: options, window, files."""

import os

import numpy as np
import pytest

from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.data import main
from vaecyclegan.io.image_format import read_grey
from vaecyclegan.io.intensity import PNG16_HU_OFFSET


def _images(out):
    return os.path.join(out, "Dataset", "images")


def test_realistic_writes_a_wide_window_dataset(tmp_path, capsys):
    out = str(tmp_path / "wide")
    assert run_cli(main, ["realistic", "--out", out, "--size", "64", "--train", "2", "--test",
                          "1", "--style", "b", "--seed", "3", "--ct-window", "wide"]) == 0
    printed = capsys.readouterr().out
    assert "ct_window: wide" in printed and "-1000..2000 HU" in printed
    assert sorted(os.listdir(_images(out))) == ["testA", "testA_hu", "testB", "trainA", "trainB"]
    assert len(os.listdir(os.path.join(_images(out), "trainB"))) == 2
    name = "realistic_test_00000.png"
    ct8 = read_grey(os.path.join(_images(out), "testA", name)).astype(float)
    hu = read_grey(os.path.join(_images(out), "testA_hu", name)).astype(float) - PNG16_HU_OFFSET
    # Through -1000..2000 HU nothing inside saturates, bone included.
    expected = (np.clip(hu, -1000, 2000) + 1000) / 3000 * 255
    assert np.abs(ct8 - expected).max() <= 1.0
    assert read_grey(os.path.join(_images(out), "testB", name)).shape == (64, 64)


def test_realistic_defaults_to_the_brain_window(tmp_path):
    out = str(tmp_path / "brain")
    assert run_cli(main, ["realistic", "--out", out, "--size", "64", "--train", "1",
                          "--test", "1"]) == 0
    name = "realistic_test_00000.png"
    ct8 = read_grey(os.path.join(_images(out), "testA", name)).astype(float)
    hu = read_grey(os.path.join(_images(out), "testA_hu", name)).astype(float) - PNG16_HU_OFFSET
    expected = (np.clip(hu, -160, 240) + 160) / 400 * 255
    assert np.abs(ct8 - expected).max() <= 1.0


@pytest.mark.parametrize("window", ["40", "40,0", "40,-5", "brain", "nan,400", "0,1e-300",
                                    "1e308,1e308"])
def test_a_bad_window_is_a_usage_error(tmp_path, capsys, window):
    with pytest.raises(SystemExit) as exit_info:
        main(["realistic", "--out", str(tmp_path / "x"), "--ct-window", window])
    assert exit_info.value.code == 2
    assert "--ct-window must be LEVEL,WIDTH" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize("command", ["phantom", "realistic"])
def test_a_dataset_is_rendered_into_a_new_or_empty_folder_only(tmp_path, capsys, command):
    # A file was a NotADirectoryError; an old dataset got new images mixed in.
    (tmp_path / "file").write_text("x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("x")
    # A folder under a file was a NotADirectoryError traceback too.
    for out, problem in (("file", f"cannot be created: {tmp_path / 'file'} is a file, not a "
                                  "folder"),
                         ("file/sub", f"cannot be created: {tmp_path / 'file'} is a file, not "
                                      "a folder"),
                         ("old", "exists and is not empty; name a new folder")):
        code = run_cli(main, [command, "--out", str(tmp_path / out), "--size", "32",
                              "--train", "1", "--test", "1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err == [f"error: {tmp_path / out}: {problem}"]
    assert sorted(os.listdir(tmp_path / "old")) == ["keep.txt"]


@pytest.mark.parametrize("command", ["phantom", "realistic"])
def test_bad_seeds_and_sizes_beyond_memory_end_in_one_line(tmp_path, capsys, command):
    # A negative seed and --size 100000 were tracebacks from NumPy.
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--out", str(tmp_path / "x"), "--seed", "-1"])
    assert exit_info.value.code == 2
    assert "--seed must be 0 or positive" in capsys.readouterr().err
    assert run_cli(main, [command, "--out", str(tmp_path / "x"), "--size", "100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"error: {tmp_path / 'x'}: --size 100000: slices of 100000x100000 (10,000 megapixels): "
        "needs about")
    assert os.listdir(tmp_path) == []


def test_an_interrupted_rendering_leaves_no_half_dataset(tmp_path, capsys, monkeypatch):
    # Ctrl-C halfway left a folder of some images, which a second run then
    # refused as "not empty".
    import vaecyclegan.data.phantom as phantom

    def interrupted(folder, *args, **kwargs):
        os.makedirs(os.path.join(folder, "Dataset"))
        open(os.path.join(folder, "Dataset", "half.png"), "wb").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(phantom, "write_phantom_dataset", interrupted)
    assert run_cli(main, ["phantom", "--out", str(tmp_path / "new" / "set"), "--size", "32",
                          "--train", "1", "--test", "1"]) == 130
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    (tmp_path / "empty").mkdir()
    assert run_cli(main, ["phantom", "--out", str(tmp_path / "empty"), "--size", "32",
                          "--train", "1", "--test", "1"]) == 0
    assert f"into {tmp_path / 'empty' / 'Dataset' / 'images'}" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "empty")) == ["Dataset"]


def test_a_window_of_negative_level_is_given_as_written(tmp_path, capsys):
    # argparse took "-600,1500" for an option: "expected one argument".
    main(["realistic", "--out", str(tmp_path / "x"), "--size", "32", "--train", "1", "--test",
          "1", "--ct-window", "-600,1500"])
    assert "CT window -1350..150 HU" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["phantom", "realistic"])
def test_a_dataset_larger_than_the_free_space_is_refused_before_rendering(
        tmp_path, capsys, monkeypatch, command):
    # --train 100000000 rendered for minutes towards terabytes.
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    free = 32 * 32 * (2 * 10 + 4 * 2)  # exactly what 10 + 10 and 2 test images need
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, free - 1))
    argv = [command, "--out", str(tmp_path / "x"), "--size", "32", "--train", "10", "--test",
            "2"]
    assert run_cli(main, argv) == 2
    assert "need up to 2.87e-05 GB" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, free))
    assert run_cli(main, argv) == 0  # control: it fits
