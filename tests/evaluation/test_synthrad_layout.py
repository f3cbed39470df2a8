"""The SynthRAD folder layout: which folders are patients, and what is not
passed over in silence."""

import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.synthrad_layout import find_patients


def _patient(folder, mask=True):
    folder.mkdir(parents=True)
    for stem in ("ct", "mr") + (("mask",) if mask else ()):
        (folder / f"{stem}.nii.gz").write_bytes(b"x")  # only listed here, never read


def test_patients_are_listed_and_other_folders_named(tmp_path, caplog):
    _patient(tmp_path / "1BA001")
    _patient(tmp_path / "1BA002", mask=False)
    (tmp_path / "1BA003").mkdir()  # emptied, or not yet copied
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with caplog.at_level("INFO"):
        patients = find_patients(str(tmp_path))
    assert [p.name for p in patients] == ["1BA001", "1BA002"]
    assert patients[0].mask.endswith("mask.nii.gz") and patients[1].mask is None
    assert "1 folder(s) of" in caplog.text and "1BA003" in caplog.text
    # Control: nothing to name, nothing said.
    caplog.clear()
    with caplog.at_level("INFO"):
        find_patients(str(tmp_path / "1BA001"))
    assert caplog.text == ""


@pytest.mark.parametrize("stem", ["mask", "ct"])
def test_a_folder_in_place_of_a_patients_file_is_refused(tmp_path, stem):
    # A folder named mask.nii.gz was passed over: the patient was scored
    # inside the body mask instead of its own, without a word.
    _patient(tmp_path / "1BA001", mask=False)
    target = tmp_path / "1BA001" / f"{stem}.nii.gz"
    if target.exists():
        target.unlink()
    target.mkdir()
    with pytest.raises(InputError, match="is a folder, not a file") as raised:
        find_patients(str(tmp_path))
    assert f"{stem}.nii.gz" in str(raised.value)


def test_the_translation_of_a_head_shows_its_progress():
    # Minutes on a CPU, in silence: translate_mr did not ask for progress.
    import numpy as np

    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.synthrad_layout import translate_mr
    from vaecyclegan.io.scan import Scan

    asked = {}

    class Recorder:
        def translate_stacks(self, stacks, batch_size, pixel_mm=None, progress=False):
            asked["progress"] = progress
            return [np.zeros_like(stacks[0])], [None]

    scan = Scan("mr.nii", "nifti", "mri", np.ones((2, 16, 16), np.float32), "signal", "mr")
    translate_mr(scan, Recorder(), IntensityConfig())
    assert asked == {"progress": True}
