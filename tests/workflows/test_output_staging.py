"""`stage_and_publish`: every output is published, or none is."""

import os
import shutil

import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.workflows.output_staging import stage_and_publish, write_new_folder


def _writer(relative, text="result"):
    def write(target):
        with open(target(relative), "w", encoding="utf-8") as f:
            f.write(text)
    return write


def _files(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def test_every_output_is_moved_into_place(tmp_path):
    out = tmp_path / "a" / "out"
    stage_and_publish(str(out), [_writer("x.png"), _writer(os.path.join("std", "x.png"))])
    assert _files(out) == ["std/x.png", "x.png"]
    assert sorted(os.listdir(out)) == ["std", "x.png"]  # no staging folder left


def test_a_destination_folder_on_another_file_system_gets_a_copy(tmp_path, monkeypatch):
    # A mount point inside the output folder (its std/ on another disk):
    # the rename failed with EXDEV and the command stopped half published.
    import errno

    out = tmp_path / "out"
    (out / "std").mkdir(parents=True)
    (out / "std" / "x.png").write_text("older")
    replace = os.replace

    def across_mounts(source, destination):
        if os.path.basename(os.path.dirname(str(destination))) == "std" and ".vaecyclegan-" \
                in str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return replace(source, destination)

    monkeypatch.setattr(os, "replace", across_mounts)
    stage_and_publish(str(out), [_writer("x.png"), _writer(os.path.join("std", "x.png"))])
    assert _files(out) == ["std/x.png", "x.png"]
    assert (out / "std" / "x.png").read_text() == "result"
    assert sorted(os.listdir(out)) == ["std", "x.png"]  # no staging folder left


@pytest.mark.parametrize("writers, message", [
    # An input's result under a report file's name: the result was lost.
    ([_writer("grid_mri2ct.png"), _writer("grid_mri2ct.png", "report")],
     "two outputs would be written under this name"),
    # A DICOM file named like the deviation maps' folder: a traceback.
    ([_writer("std"), _writer(os.path.join("std", "std.png"))],
     "both as a file and as the folder of std/std.png"),
    ([_writer(os.path.join("std", "std.png")), _writer("std")],
     "both as a file and as a folder of other outputs"),
])
def test_clashing_outputs_are_refused_and_nothing_is_written(tmp_path, writers, message):
    out = tmp_path / "new" / "out"
    with pytest.raises(InputError, match=message):
        stage_and_publish(str(out), writers)
    assert not (tmp_path / "new").exists()


def test_a_folder_in_the_way_is_refused_before_anything_moves(tmp_path):
    # Was an IsADirectoryError after the first results had been published.
    (tmp_path / "b.png").mkdir()
    with pytest.raises(InputError, match="a folder is in the way"):
        stage_and_publish(str(tmp_path), [_writer("a.png"), _writer("b.png"), _writer("c.png")])
    assert _files(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["b.png"]


def test_a_file_in_the_way_of_an_output_folder_is_refused(tmp_path):
    (tmp_path / "std").write_text("keep")
    with pytest.raises(InputError, match="a file is in the way"):
        stage_and_publish(str(tmp_path), [_writer("a.png"), _writer(os.path.join("std", "a.png"))])
    assert _files(tmp_path) == ["std"] and (tmp_path / "std").read_text() == "keep"


def test_a_protected_path_is_never_replaced(tmp_path):
    # A --reference folder given as --output had its references replaced.
    (tmp_path / "a.png").write_text("reference")
    with pytest.raises(InputError, match="would overwrite an input or a reference"):
        stage_and_publish(str(tmp_path), [_writer("a.png")], protected=[str(tmp_path / "a.png")])
    assert (tmp_path / "a.png").read_text() == "reference" and _files(tmp_path) == ["a.png"]


def test_a_destination_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    # Was an OSError traceback after the results had been moved. Tests may
    # run as root, whom permissions do not stop: the check is what is tested.
    (tmp_path / "std").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and
                        os.path.basename(path) != "std")
    with pytest.raises(InputError, match="output folder is not writable"):
        stage_and_publish(str(tmp_path), [_writer("a.png"), _writer(os.path.join("std", "a.png"))])
    assert _files(tmp_path) == []


def _dataset(folder):
    os.makedirs(os.path.join(folder, "Dataset", "images"))
    with open(os.path.join(folder, "Dataset", "images", "a.png"), "wb") as f:
        f.write(b"png")
    return os.path.join(folder, "Dataset", "images")


@pytest.mark.parametrize("kind", ["new", "empty", "link", "cwd"])
def test_a_new_folder_is_filled_whatever_names_it(tmp_path, monkeypatch, kind):
    # Renamed from beside it, an empty folder given as a link or as "."
    # was an OSError traceback, and the folder came out mode 0700.
    (tmp_path / "empty").mkdir()
    folder = {"new": tmp_path / "a" / "new", "empty": tmp_path / "empty",
              "link": tmp_path / "link", "cwd": "."}[kind]
    if kind == "link":
        os.symlink(tmp_path / "empty", folder)
    if kind == "cwd":
        monkeypatch.chdir(tmp_path / "empty")
    images = write_new_folder(str(folder), _dataset)
    assert images == os.path.join(str(folder), "Dataset", "images")
    with open(os.path.join(images, "a.png"), "rb") as f:
        assert f.read() == b"png"
    assert os.listdir(folder) == ["Dataset"]
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(os.path.join(str(folder), "Dataset")).st_mode & 0o777 == 0o777 & ~mask


def test_a_failed_or_interrupted_fill_leaves_nothing_it_made(tmp_path):
    def half(folder):
        _dataset(folder)
        raise KeyboardInterrupt

    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "a" / "b", tmp_path / "empty"):
        with pytest.raises(KeyboardInterrupt):
            write_new_folder(str(folder), half)
    assert sorted(os.listdir(tmp_path)) == ["empty"] and os.listdir(tmp_path / "empty") == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="exists and is not empty"):
        write_new_folder(str(tmp_path / "full"), _dataset)


def test_a_staging_folder_left_by_a_killed_run_is_swept(tmp_path, caplog, monkeypatch):
    # kill -9 while writing left .vaecyclegan-xxxx/ with a partial DICOM
    # series in the output folder for good (a recursive import reads it),
    # and made vaecyclegan-data's folder "not empty" for ever.
    import subprocess
    import sys

    from vaecyclegan.workflows import output_staging
    from vaecyclegan.workflows.output_staging import (
        LOCKED,
        NO_LOCKS,
        _lock,
        _release,
        _staging_prefix,
        _writable_folder,
    )

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    prefix = _staging_prefix()
    host = prefix.split("-")[1]
    out = tmp_path / "out"
    stale = out / f".vaecyclegan-{host}-{dead_pid}-abc"
    live = out / f"{prefix}def"  # this process: running
    other_host = out / f".vaecyclegan-elsewhere-{dead_pid}-ghi"
    # Named by a PID that is gone here but locked: a live run of a container
    # of this host name (PIDs of its own).
    contained = out / f".vaecyclegan-{host}-{dead_pid}-mno"
    # Digits of another script are no process ID: kept.
    arabic = out / f".vaecyclegan-{host}-\u0663\u0663-pqr"
    for folder in (stale, live, other_host, contained, arabic):
        folder.mkdir(parents=True)
        (folder / "IM0001").write_text("partial")
    held, state = _lock(str(contained))
    if state != LOCKED:
        pytest.skip("this file system has no locks")
    try:
        with caplog.at_level("INFO", logger="vaecyclegan"):
            stage_and_publish(str(out), [_writer("x.png")])
    finally:
        os.close(held)
    assert not stale.exists() and "stopped before it finished" in caplog.text
    assert live.exists() and other_host.exists() and contained.exists() and arabic.exists()
    # This process's own staging folders are locked while they exist.
    staging = _writable_folder(str(tmp_path / "own"))
    assert staging in output_staging._HELD and _lock(staging)[0] is None
    shutil.rmtree(staging)
    _release(staging)
    # Where the file system has no locks, the process ID alone decides.
    again = out / f".vaecyclegan-{host}-{dead_pid}-stu"
    again.mkdir()
    monkeypatch.setattr(output_staging, "_lock", lambda path: (None, NO_LOCKS))
    stage_and_publish(str(out), [_writer("y.png")])
    assert not again.exists()
    # A new folder for vaecyclegan-data: the leftovers of a killed fill are
    # not what makes it "not empty".
    data = tmp_path / "data"
    (data / f".vaecyclegan-{host}-{dead_pid}-jkl").mkdir(parents=True)
    write_new_folder(str(data), lambda staging: _writer("a.txt")(
        lambda name: os.path.join(staging, name)))
    assert os.listdir(data) == ["a.txt"]
