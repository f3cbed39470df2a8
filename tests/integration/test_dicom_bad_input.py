"""`infer.py` on DICOM whose header contradicts itself or the modality's
rules: one line naming the file and the problem, exit 2, nothing written,
the inputs untouched. The reader's own checks are in
tests/io/test_dicom_format.py."""

import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from tests.harness import assert_one_line_error, dicom_series_folder, infer


def _write(path, source, raw=None, **values):
    """A copy of pydicom's `source` at `path` with `values` set and `raw`
    (keyword: bytes) written as the element's bytes, however invalid."""
    dataset = pydicom.dcmread(get_testdata_file(source))
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    for keyword, text in (raw or {}).items():
        text += b" " * (len(text) % 2)
        tag = Tag(keyword)
        dataset[tag] = RawDataElement(tag, dictionary_VR(tag), len(text), text, 0, False, True)
    dataset.save_as(path, enforce_file_format=True)


def _segmentation(path):
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 1
    _write(path, "CT_small.dcm", Modality="SEG", BitsAllocated=1, BitsStored=1, HighBit=0,
           PixelRepresentation=0, SeriesInstanceUID=pydicom.uid.generate_uid(),
           PixelData=np.packbits(mask.ravel(), bitorder="little").tobytes())


CASES = {
    "slope-empty": ("ct2mri", lambda p: _write(p, "CT_small.dcm", raw={"RescaleSlope": b""}),
                    "RescaleSlope is empty: a CT slice needs RescaleSlope and RescaleIntercept"),
    "slope-text": ("ct2mri", lambda p: _write(p, "CT_small.dcm", raw={"RescaleSlope": b"abc"}),
                   "RescaleSlope abc is not a number"),
    "slope-nan": ("ct2mri", lambda p: _write(p, "CT_small.dcm", raw={"RescaleSlope": b"NaN"}),
                  "RescaleSlope is NaN, not a finite number"),
    "frames-1A": ("ct2mri", lambda p: _write(p, "CT_small.dcm", raw={"NumberOfFrames": b"1A"}),
                  "NumberOfFrames 1A is not a whole number"),
    "segmentation": ("mri2ct", _segmentation,
                     "Modality SEG: only CT and MR slices can be translated"),
    "badVR": ("mri2ct", lambda p: shutil.copy(get_testdata_file("badVR.dcm"), p),
              "Modality RTDOSE: only CT and MR slices can be translated"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_dicom_beside_a_good_one_is_one_line_and_nothing_is_written(
        trained_smoke, tmp_path, capsys, case):
    direction, make, fragment = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    good = "CT_small.dcm" if direction == "ct2mri" else "MR_small.dcm"
    shutil.copy(get_testdata_file(good), folder / "good.dcm")
    make(str(folder / "bad.dcm"))
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    code = infer("--direction", direction, "--input", str(folder), "--output",
                 str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, f"{folder / 'bad.dcm'}: ", fragment)
    assert not (tmp_path / "out").exists()
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_one_bad_slice_refuses_its_series(trained_smoke, tmp_path, capsys):
    folder = dicom_series_folder(tmp_path)
    broken = pydicom.dcmread(folder / "IM0002")
    del broken.RescaleIntercept  # once read as 0: HU 1,024 too high
    broken.save_as(folder / "IM0002", enforce_file_format=True)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    code = infer("--direction", "ct2mri", "--input", str(folder), "--output",
                 str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, f"{folder / 'IM0002'}: RescaleIntercept missing: a CT "
                          "slice needs RescaleSlope and RescaleIntercept to give Hounsfield units")
    assert not (tmp_path / "out").exists()
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_a_monochrome1_ct_is_translated(trained_smoke, tmp_path):
    # MONOCHROME1 only says how to display; the HU are the same.
    source = tmp_path / "m1.dcm"
    _write(source, "CT_small.dcm", PhotometricInterpretation="MONOCHROME1")
    assert infer("--direction", "ct2mri", "--input", str(source), "--output",
                 str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir) == 0
    written = pydicom.dcmread(tmp_path / "out" / "m1.dcm")
    assert written.Modality == "MR" and written.PhotometricInterpretation == "MONOCHROME2"
