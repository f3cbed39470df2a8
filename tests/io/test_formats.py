"""The format registry: which format claims which file, how a folder becomes
scans, and what each format writes for deviation maps."""

import io
import os
import pathlib
import shutil
import signal

import cv2
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.harness import write_ct_series
from vaecyclegan.config import IntensityConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.dicom_format import DicomFormat
from vaecyclegan.io.formats import (
    FORMATS,
    STD_FOLDER,
    ScanFormat,
    ScanSource,
    find_scan_sources,
    format_for_path,
    format_of,
    is_planar,
    read_scan,
    write_result,
    write_std,
)
from vaecyclegan.io.image_format import ImageFormat, write_png
from vaecyclegan.io.intensity import MR_SIGNAL_MAX
from vaecyclegan.io.nifti_format import NiftiFormat

AFFINE = np.diag([0.9, 0.9, 2.5, 1.0])


def _png(path, dtype=np.uint8):
    pixels = (np.arange(16 * 24).reshape(16, 24) * 37) % (int(np.iinfo(dtype).max) + 1)
    write_png(str(path), pixels.astype(dtype))
    return str(path)


def _nifti(path, shape=(20, 24, 3)):
    volume = np.random.default_rng(0).uniform(-1000, 1500, shape).astype(np.int16)
    nib.save(nib.Nifti1Image(volume, AFFINE), str(path))
    return str(path)


@pytest.fixture
def files(tmp_path):
    """One file of each format, and of each way a format is recognised."""
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "IM0001")  # DICM mark only
    (tmp_path / "notes.txt").write_text("not a scan")
    (tmp_path / "noext").write_bytes(b"\0" * 200)  # no extension, no DICM mark
    return {
        "image": [_png(tmp_path / "a.png"), _png(tmp_path / "b16.tif", np.uint16)],
        "nifti": [_nifti(tmp_path / "v.nii"), _nifti(tmp_path / "v.nii.gz")],
        "dicom": [str(shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")),
                  str(tmp_path / "IM0001")],
        None: [str(tmp_path / "notes.txt"), str(tmp_path / "noext")],
    }


def test_the_registry_holds_one_of_each_format_in_detection_order():
    assert [fmt.name for fmt in FORMATS] == ["nifti", "image", "dicom"]
    assert [type(fmt) for fmt in FORMATS] == [NiftiFormat, ImageFormat, DicomFormat]
    assert all(isinstance(fmt, ScanFormat) for fmt in FORMATS)
    assert [fmt.label for fmt in FORMATS] == ["NIfTI", "image", "DICOM"]


def test_each_format_claims_its_own_files_and_no_other(files):
    for kind, paths in files.items():
        for path in paths:
            claimed_by = [fmt.name for fmt in FORMATS if fmt.claims(str(path))]
            assert claimed_by == ([kind] if kind else []), path
            found = format_for_path(str(path))
            assert (found.name if found else None) == kind, path


def test_format_of_takes_a_name_a_source_or_a_scan_and_refuses_an_unknown_kind(files):
    assert format_of("dicom") is FORMATS[2]
    [source] = find_scan_sources(files["nifti"][0])
    assert format_of(source) is format_of("nifti")
    assert format_of(read_scan(source, "ct")) is format_of("nifti")
    for unknown in ("jpeg2000", "NIfTI", ""):
        with pytest.raises(ValueError, match="unknown scan format"):
            format_of(unknown)
    with pytest.raises(ValueError, match="'mhd'"):
        format_of(ScanSource("mhd", ["x.mhd"], "x.mhd"))


def test_a_mixed_folder_is_one_source_per_file_and_one_perwrite_ct_series(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _png(folder / "b.png")
    _nifti(folder / "a.nii.gz")
    _png(folder / "c.tiff", np.uint16)
    series = write_ct_series(str(folder), ["IM0003", "IM0001", "IM0002"])
    lone = write_ct_series(str(folder), ["z.dcm"])
    (folder / "DICOMDIR").write_bytes(b"\0" * 132)
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "readme.txt").write_text("ignored")
    sources = find_scan_sources(str(folder))
    # Single-file scans in file name order, then DICOM series.
    assert [(s.kind, s.name) for s in sources] == [
        ("nifti", "a.nii.gz"), ("image", "b.png"), ("image", "c.tiff"),
        ("dicom", "mixed (3 DICOM files)"), ("dicom", "z.dcm")]
    assert sorted(sources[3].paths) == sorted(series) and sources[4].paths == lone
    assert [s.output_names() for s in sources] == [
        ["a.nii.gz"], ["b.png"], ["c.png"], [os.path.basename(p) for p in sources[3].paths],
        ["z.dcm"]]
    scan = read_scan(sources[3], "ct")
    assert scan.kind == "dicom" and scan.values.shape == (3, 128, 128)


def test_describe_gives_the_training_summary_labels(files):
    labels = [format_of(s).describe(read_scan(s, "ct"))
              for path in files["image"] + files["dicom"][:1] + files["nifti"][:1]
              for s in find_scan_sources(path)]
    assert labels == ["PNG/JPEG/TIFF 8-bit", "PNG/JPEG/TIFF 16-bit", "DICOM", "NIfTI"]


def test_only_images_are_planar(files):
    for kind, paths in files.items():
        if kind is None:
            continue
        [source] = find_scan_sources(paths[0])
        assert is_planar(source) is (kind == "image")
        assert is_planar(read_scan(source, "ct")) is (kind == "image")
        assert format_of(kind).planar is (kind == "image")


def _target(root):
    def target(name):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path
    return target


def test_write_std_is_a_png_heat_map_for_an_image(files, tmp_path):
    [source] = find_scan_sources(files["image"][1])  # b16.tif
    scan = read_scan(source, "ct")
    std = np.zeros((1, 16, 24), np.float32)
    std[0, :, 12:] = 0.1
    out = tmp_path / "out"
    write_std(scan, std, 5.0, "mri", IntensityConfig(), _target(str(out)))
    assert sorted(os.listdir(out)) == [STD_FOLDER]
    assert os.listdir(out / STD_FOLDER) == ["b16.png"]
    heat = cv2.imread(str(out / STD_FOLDER / "b16.png"), cv2.IMREAD_UNCHANGED)
    assert heat.shape == (16, 24, 3) and heat.dtype == np.uint8
    # Black where the latent agrees, bright where it saturates (0.1 * 127.5 > 5).
    assert heat[:, :12].max() < 10 and heat[:, 12:].min() > 180


def test_write_std_is_a_float32_volume_for_nifti(files, tmp_path):
    intensity = IntensityConfig()
    [source] = find_scan_sources(files["nifti"][1])  # v.nii.gz
    scan = read_scan(source, "ct")
    std = np.full(scan.values.shape, 0.02, np.float32)
    out = tmp_path / "out"
    write_std(scan, std, 5.0, "mri", intensity, _target(str(out)))
    assert os.listdir(out / STD_FOLDER) == ["v.nii.gz"]
    written = nib.load(str(out / STD_FOLDER / "v.nii.gz"))
    assert written.get_data_dtype() == np.float32 and written.shape == (20, 24, 3)
    np.testing.assert_array_equal(written.affine, nib.load(files["nifti"][1]).affine)
    np.testing.assert_allclose(written.get_fdata(), 0.02 * MR_SIGNAL_MAX / 2.0, rtol=1e-6)
    assert b"latent std (MR signal 0..4095)" in written.header["descrip"].tobytes()
    write_std(scan, std, 5.0, "ct", intensity, _target(str(tmp_path / "ct")))
    low, high = intensity.ct_window_hu
    ct = nib.load(str(tmp_path / "ct" / STD_FOLDER / "v.nii.gz")).get_fdata()
    np.testing.assert_allclose(ct, 0.02 * (high - low) / 2.0, rtol=1e-6)


def test_write_std_is_one_png_per_dicom_file(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    write_ct_series(str(folder), ["IM0002", "IM0001"])
    [source] = find_scan_sources(str(folder))
    scan = read_scan(source, "ct")
    out = tmp_path / "out"
    write_std(scan, np.zeros(scan.values.shape, np.float32), 1.0, "mri", IntensityConfig(),
              _target(str(out)))
    assert sorted(os.listdir(out / STD_FOLDER)) == ["IM0001.png", "IM0002.png"]


def test_write_result_goes_back_to_the_input_format(files, tmp_path):
    intensity = IntensityConfig()
    written = {}
    for path in (files["image"][0], files["nifti"][1], files["dicom"][0]):
        [source] = find_scan_sources(path)
        scan = read_scan(source, "ct")
        out = tmp_path / source.kind
        write_result(scan, scan.to_unit(intensity), "mri", intensity, "ct2mri", _target(str(out)))
        written[source.kind] = sorted(os.listdir(out))
        assert written[source.kind] == source.output_names()
    assert written == {"image": ["a.png"], "nifti": ["v.nii.gz"], "dicom": ["ct.dcm"]}
    assert pydicom.dcmread(tmp_path / "dicom" / "ct.dcm").Modality == "MR"


# -- paths of any bytes, and files that are not regular ----------------------------------

def _fsname(folder, name):
    """The str Python holds for the file `name` (bytes) in `folder`."""
    return os.fsdecode(os.path.join(os.fsencode(folder), name))


def test_input_error_shows_any_name_on_one_printable_line():
    path = _fsname("/scans", b"caf\xe9\n\x1b[31mred.png")
    error = InputError(path, "first line\nsecond line\r\u2028third")
    assert error.path == "/scans/caf\\xe9\\n\\x1b[31mred.png"
    assert error.problem == "first line\\nsecond line\\r\\u2028third"
    assert str(error) == f"{error.path}: {error.problem}"
    assert len(f"error: {error}".splitlines()) == 1
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    print(f"error: {error}", file=strict)  # raised UnicodeEncodeError before
    strict.flush()
    # Bytes and path-likes are shown as names, readable names as they are.
    assert InputError(b"/a/\xff.nii", "x").path == "/a/\\xff.nii"
    assert InputError(pathlib.Path("/a/t\u00eate é.png"), "y").path == "/a/t\u00eate é.png"
    assert str(InputError("/a/b.png", "tab\there")) == "/a/b.png: tab\\there"


def test_a_folder_with_undecodable_names_lists_and_reads_them(tmp_path):
    root = os.fsencode(tmp_path)
    ok, encoded = cv2.imencode(".png", np.full((16, 24), 90, np.uint8))
    with open(os.path.join(root, b"caf\xe9.png"), "wb") as f:
        f.write(encoded.tobytes())
    _nifti(_fsname(tmp_path, b"\xfftete.nii.gz"))
    write_ct_series(str(tmp_path), [os.fsdecode(b"IM\xe90001")])
    sources = find_scan_sources(str(tmp_path))
    assert [(s.kind, os.fsencode(s.name)) for s in sources] == [
        ("image", b"caf\xe9.png"), ("nifti", b"\xfftete.nii.gz"), ("dicom", b"IM\xe90001")]
    shapes = [read_scan(source, "ct").values.shape for source in sources]
    assert shapes == [(1, 16, 24), (3, 24, 20), (1, 128, 128)]
    assert [os.fsencode(n) for s in sources for n in s.output_names()] == [
        b"caf\xe9.png", b"\xfftete.nii.gz", b"IM\xe90001"]
    assert find_scan_sources(os.fsencode(tmp_path))[0].paths == sources[0].paths  # bytes path


@pytest.mark.parametrize("name", ["scan.png", "scan.nii.gz", "IM0001", "scan.dcm"])
def test_a_named_pipe_is_not_a_regular_file_and_is_never_opened(tmp_path, name):
    os.mkfifo(tmp_path / name)

    def blocked(signum, frame):
        raise AssertionError("the named pipe was opened")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)  # the DICOM check opened an extensionless pipe and waited
    try:
        with pytest.raises(InputError) as caught:
            [source] = find_scan_sources(str(tmp_path / name))
            read_scan(source, "ct")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert str(caught.value) == f"{tmp_path / name}: not a regular file but a named pipe (FIFO)"


def test_pipes_and_sockets_in_a_folder_are_left_out(tmp_path):
    _png(tmp_path / "a.png")
    os.mkfifo(tmp_path / "b.png")
    os.mkfifo(tmp_path / "IM0001")
    os.mkdir(tmp_path / "c.nii")
    sources = find_scan_sources(str(tmp_path))
    assert [s.name for s in sources] == ["a.png"]


def test_special_files_and_folders_given_as_a_file(tmp_path):
    with pytest.raises(InputError, match="not a regular file but a character device"):
        find_scan_sources("/dev/null")
    with pytest.raises(InputError, match="absent.png: input not found"):
        find_scan_sources(str(tmp_path / "absent.png"))
    with pytest.raises(InputError, match="not a regular file but a folder"):
        read_scan(ScanSource("nifti", [str(tmp_path)], "x"), "ct")


def test_a_folder_the_system_refuses_to_list_is_one_error(tmp_path, monkeypatch):
    # The test below needs permission bits that bind, which root (these
    # tests' user here) ignores: the refusal itself, as the system gives it.
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.png").write_bytes(b"x")
    listdir = os.listdir

    def refuse(path="."):
        if os.path.realpath(path) == str(locked.resolve()):
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refuse)
    with pytest.raises(InputError, match="folder cannot be listed \\(Permission denied\\)"):
        find_scan_sources(str(locked))


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root")
def test_a_folder_that_cannot_be_listed_is_one_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o300)  # enter, but not list
    try:
        with pytest.raises(InputError, match="folder cannot be listed"):
            find_scan_sources(str(locked))
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("spacing, refused", [
    ((1.0, 1.0), False), ((78.0, 78.0), False), ((79.0, 79.0), True), ((1e30, 1.0), True)])
def test_a_pixel_spacing_that_spans_more_than_a_body_is_refused(tmp_path, spacing, refused):
    # 64 pixels of 78 mm span 4,992 mm, of 79 mm 5,056: past MAX_FIELD_MM.
    path = str(tmp_path / "mr.nii")
    nib.save(nib.Nifti1Image(np.ones((64, 64, 2), np.int16), np.diag([*spacing, 1.0, 1.0])),
             path)
    [source] = find_scan_sources(path)
    if not refused:
        assert read_scan(source, "mri").pixel_mm == spacing
        return
    with pytest.raises(InputError, match="more than any body .5,000 mm.; check its pixel spacing"):
        read_scan(source, "mri")


def test_the_spacing_refusal_names_pixels_across_by_down_as_the_slice_size_reads():
    # It read "40x60 slices of 100 x 0.5 mm": the size across by down, the
    # pixels down by across.
    from vaecyclegan.io.scan import Scan

    scan = Scan("a.nii", "nifti", "ct", np.zeros((1, 60, 40), np.float32), "hu", "a",
                spacing=(1.0, 100.0, 0.5))
    assert scan.spacing_refusal().startswith(
        "its 40x60 slices of 0.5 x 100 mm pixels would span 6,000 mm")
