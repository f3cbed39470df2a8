"""`stage_and_publish`: every output is published, or none is."""

import os

import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.workflows.output_staging import stage_and_publish


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
