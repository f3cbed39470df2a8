"""`infer.py` on DICOM files and series, with the smoke run's weights."""

import os
import shutil

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.harness import dicom_series_folder, infer
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.infer import main as infer_main
from vaecyclegan.config import IntensityConfig
from vaecyclegan.io.dicom_format import GEOMETRY_TAGS


def _geometry(dataset):
    return {tag: dataset.get(tag) for tag in GEOMETRY_TAGS if tag in dataset}


def test_ct2mri_on_ct_small_writes_an_mr_dicom_with_the_input_geometry(trained_smoke, tmp_path):
    source = get_testdata_file("CT_small.dcm")
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--input", source, "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    assert os.listdir(out) == ["CT_small.dcm"]
    written, original = pydicom.dcmread(out / "CT_small.dcm"), pydicom.dcmread(source)
    assert written.Modality == "MR" and written.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert _geometry(written) == _geometry(original) and len(_geometry(written)) >= 5
    for uid in ("SeriesInstanceUID", "SOPInstanceUID"):
        assert written.get(uid) != original.get(uid)
    assert written.StudyInstanceUID == original.StudyInstanceUID
    assert list(written.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "Synthetic MR" in written.SeriesDescription
    assert written.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert written.PatientID == original.PatientID
    pixels = written.pixel_array
    assert pixels.shape == (128, 128) and pixels.min() >= 0 and pixels.max() <= 4095


def test_mri2ct_on_mr_small_writes_ct_in_hu_within_the_window(trained_smoke, tmp_path):
    source = get_testdata_file("MR_small.dcm")
    out = tmp_path / "out"
    assert infer("--direction", "mri2ct", "--input", source, "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    written, original = pydicom.dcmread(out / "MR_small.dcm"), pydicom.dcmread(source)
    assert written.Modality == "CT" and written.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert _geometry(written) == _geometry(original)
    assert written.SeriesInstanceUID != original.SeriesInstanceUID
    assert written.PixelRepresentation == 1 and written.RescaleSlope == 1
    hu = pydicom.pixels.apply_modality_lut(written.pixel_array, written)
    low, high = IntensityConfig().ct_window_hu
    assert hu.dtype.kind in "if" and hu.min() >= low and hu.max() <= high
    assert hu.std() > 0  # a translation, not a constant


def test_a_synthetic_ct_from_brain_window_weights_is_said_to_clip_hu(trained_smoke, tmp_path,
                                                                      capsys):
    # Weights trained in a brain window (-160 to 240 HU) wrote a DICOM sCT
    # whose air and bone were clipped, labelled HU, without a word.
    import json

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    config = json.loads((weights / "config.json").read_text())
    config["intensity"]["ct_window_hu"] = [-160.0, 240.0]
    (weights / "config.json").write_text(json.dumps(config))
    source = get_testdata_file("MR_small.dcm")
    for folder, expected in ((trained_smoke.weights_dir, False), (str(weights), True)):
        assert infer("--direction", "mri2ct", "--input", source, "--output",
                     str(tmp_path / f"out{expected}"), "--weights-dir", folder) == 0
        err = capsys.readouterr().err
        assert ("no ground for a dose calculation" in err) is expected, err
    assert "-160 to 240 HU" in pydicom.dcmread(tmp_path / "outTrue" / "MR_small.dcm") \
        .DerivationDescription


def test_a_translated_series_keeps_each_slice_geometry(trained_smoke, tmp_path):
    folder = dicom_series_folder(tmp_path)
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--input", str(folder), "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    assert sorted(os.listdir(out)) == ["IM0001", "IM0002", "IM0003"]
    written = [pydicom.dcmread(out / name) for name in sorted(os.listdir(out))]
    assert len({d.SeriesInstanceUID for d in written}) == 1
    assert len({d.SOPInstanceUID for d in written}) == 3
    for dataset in written:
        original = pydicom.dcmread(folder / os.path.basename(dataset.filename))
        assert _geometry(dataset) == _geometry(original)


def test_latent_samples_of_a_series_write_heat_maps_per_slice(trained_smoke, tmp_path):
    folder = dicom_series_folder(tmp_path, count=2)
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--input", str(folder), "--output", str(out),
                 "--samples", "3", "--weights-dir", trained_smoke.weights_dir) == 0
    assert sorted(os.listdir(out / "std")) == ["IM0001.png", "IM0002.png", "scale.json"]


@pytest.mark.parametrize("name, fragment", [
    ("rtplan.dcm", "without pixel data"),
    ("MR_small_jpeg_ls_lossless.dcm", ("JPEG-LS Lossless Image Compression, which no installed "
                                       "decoder handles")),
    ("MR_truncated.dcm", "pixel data holds 8,130 bytes where the header's 64x64 pixels of "
                         "16 bits need 8,192: the file is cut short"),
])
def test_dicom_that_cannot_be_translated_is_one_line(trained_smoke, tmp_path, capsys, name,
                                                     fragment):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(get_testdata_file(name), folder / name)
    before = (folder / name).read_bytes()
    code = infer("--direction", "mri2ct", "--input", str(folder), "--output",
                 str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and name in err[0] and fragment in err[0], err
    assert not (tmp_path / "out").exists()
    assert (folder / name).read_bytes() == before


def test_a_ct_file_given_to_mri2ct_is_refused(trained_smoke, tmp_path, capsys):
    code = infer("--direction", "mri2ct", "--input", get_testdata_file("CT_small.dcm"),
                 "--output", str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Modality is CT where MR is expected" in err
    assert not (tmp_path / "out").exists()


def test_dicom_output_into_its_own_folder_is_refused(trained_smoke, tmp_path, capsys):
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "IM0001")
    before = (folder / "IM0001").read_bytes()
    code = run_cli(infer_main, ["--direction", "ct2mri", "--input", str(folder), "--output",
                                str(folder), "--weights-dir", trained_smoke.weights_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "overwrite an input" in err[0]
    assert (folder / "IM0001").read_bytes() == before
    assert pydicom.dcmread(folder / "IM0001").Modality == "CT"


def test_heat_maps_of_files_named_by_their_uid_keep_the_whole_name(trained_smoke, tmp_path):
    # 1.2.840.10008.5.1 and .2 both became std/1.2.840.10008.5.png: the
    # run was refused after translating everything.
    folder = dicom_series_folder(tmp_path, count=2)
    for index, path in enumerate(sorted(folder.iterdir()), start=1):
        path.rename(folder / f"1.2.840.10008.5.{index}")
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--input", str(folder), "--output", str(out),
                 "--samples", "2", "--weights-dir", trained_smoke.weights_dir) == 0
    assert sorted(os.listdir(out / "std")) == ["1.2.840.10008.5.1.png", "1.2.840.10008.5.2.png",
                                               "scale.json"]
