"""A fuzzer for the readers: valid PNG, JPEG, TIFF, DICOM and NIfTI files,
mutated (header fields set to empty, text, NaN, zero, negative or huge;
bytes truncated, flipped or inserted, DICOM also deflated first; data types
changed), must each be read as a valid scan or refused with the project's
one error type, never anything else.

The suite runs a bounded, derandomised budget (`VAECYCLEGAN_FUZZ_EXAMPLES`
examples per format, 200 by default); a long run sets a large budget and
`VAECYCLEGAN_FUZZ_RANDOM=1`, e.g.

    VAECYCLEGAN_FUZZ_EXAMPLES=5000 VAECYCLEGAN_FUZZ_RANDOM=1 \\
        python -m pytest tests/io/test_fuzz_readers.py --hypothesis-show-statistics
"""

import io
import os
import shutil
import struct
import warnings

import cv2
import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.data import get_testdata_file

from vaecyclegan.config import IntensityConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.formats import find_scan_sources, read_scan

EXAMPLES = int(os.environ.get("VAECYCLEGAN_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("VAECYCLEGAN_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# Values a header field is set to: the classes of trouble a file can hold.
BAD_TEXT = ["", " ", "abc", "NaN", "nan", "inf", "-inf", "0", "-1", "1A", "1e308", "-1e308",
            "99999999999999999999", "1\\2", "\x00", "é"]
BAD_NUMBERS = [0, -1, 1, 2, 3, 7, 8, 12, 16, 17, 32, 64, 255, 65535, 2**31 - 1, -2**31]
_INTENSITY = IntensityConfig()


def _image_bytes(kind):
    ramp = (np.add.outer(np.arange(24), np.arange(20)) * 5).astype(np.uint8)
    if kind == "png16":
        ok, data = cv2.imencode(".png", ramp.astype(np.uint16) * 200)
    elif kind == "jpeg":
        ok, data = cv2.imencode(".jpg", ramp)
    elif kind == "tiff":
        ok, data = cv2.imencode(".tiff", np.stack([ramp] * 3, axis=-1))
    else:
        ok, data = cv2.imencode(".png", ramp)
    assert ok
    return data.tobytes()


def _exif_jpeg(orientation):
    image = Image.fromarray((np.add.outer(np.arange(24), np.arange(16)) * 6).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _nifti_bytes(dtype=np.int16, gz=False):
    volume = (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 300).astype(dtype)
    payload = nib.Nifti1Image(volume, np.diag([1.0, 1.0, 2.0, 1.0])).to_bytes()
    if gz:
        import gzip

        payload = gzip.compress(payload)
    return payload


def _mutate_bytes(data, draw):
    """Truncation, flipped bytes or inserted bytes, drawn by hypothesis."""
    data = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "flip_header"]))
    if kind == "truncate":
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:])
    limit = min(len(data), 400) if kind == "flip_header" else len(data)
    for _ in range(draw(st.integers(1, 12))):
        data[draw(st.integers(0, limit - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _check_read(path, domain):
    """The property: a valid scan, or InputError."""
    try:
        sources = find_scan_sources(path)
        scans = [read_scan(source, domain) for source in sources]
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message and "\r" not in message, message
        return None
    for scan in scans:
        assert scan.values.dtype == np.float32 and scan.values.ndim == 3
        assert scan.values.shape[1] >= 8 and scan.values.shape[2] >= 8
        assert np.isfinite(scan.values).all()
        unit = scan.to_unit(_INTENSITY)
        assert np.isfinite(unit).all() and unit.min() >= -1.0 and unit.max() <= 1.0
    return scans


def _write(tmp_path, name, data):
    # One folder, emptied for each example: a long run tries millions.
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["png", "png16", "jpeg", "tiff", "exif"]),
       domain=st.sampled_from(["ct", "mri"]))
def test_mutated_images_read_or_are_refused(fuzz_dir, data, kind, domain):
    original = _exif_jpeg(data.draw(st.integers(0, 9))) if kind == "exif" else _image_bytes(kind)
    extension = {"png": ".png", "png16": ".png", "jpeg": ".jpg", "tiff": ".tiff",
                 "exif": ".jpg"}[kind]
    mutated = _mutate_bytes(original, data.draw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_read(_write(fuzz_dir, "image" + extension, mutated), domain)


def _dicom_with(field, value, base_name, deflated=False):
    dataset = pydicom.dcmread(get_testdata_file(base_name))
    if deflated:  # its data set zlib-compressed: mutations reach zlib
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    keyword, vr = field
    if value is None:
        if keyword in dataset:
            del dataset[keyword]
    else:
        dataset.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, value)
    buffer = io.BytesIO()
    with pydicom.config.disable_value_validation():
        dataset.save_as(buffer, enforce_file_format=deflated)
    return buffer.getvalue()


DICOM_FIELDS = [
    ("RescaleSlope", "DS"), ("RescaleIntercept", "DS"), ("NumberOfFrames", "IS"),
    ("BitsAllocated", "US"), ("BitsStored", "US"), ("HighBit", "US"), ("Rows", "US"),
    ("Columns", "US"), ("SamplesPerPixel", "US"), ("PixelRepresentation", "US"),
    ("PhotometricInterpretation", "CS"), ("Modality", "CS"), ("WindowCenter", "DS"),
    ("ImagePositionPatient", "DS"), ("ImageOrientationPatient", "DS"), ("PixelSpacing", "DS"),
    ("SOPClassUID", "UI"), ("InstanceNumber", "IS"),
]
_NUMERIC_VRS = ("US",)


@FUZZ
@given(data=st.data(), base=st.sampled_from(["CT_small.dcm", "MR_small.dcm"]),
       field=st.sampled_from(DICOM_FIELDS), domain=st.sampled_from(["ct", "mri"]),
       deflated=st.booleans())
def test_dicom_with_a_bad_header_field_reads_or_is_refused(fuzz_dir, data, base, field, domain,
                                                          deflated):
    if field[1] in _NUMERIC_VRS:
        value = data.draw(st.one_of(st.none(), st.sampled_from(BAD_NUMBERS).filter(
            lambda v: 0 <= v <= 65535)))
    else:
        value = data.draw(st.one_of(st.none(), st.sampled_from(BAD_TEXT + [
            "CT", "MR", "SEG", "RTDOSE", "MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR",
            "YBR_FULL", "1.2.840.10008.5.1.4.1.1.66.4"])))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns of the values it is asked to write
            payload = _dicom_with(field, value, base, deflated)
    except Exception:  # noqa: BLE001 - pydicom cannot even write this value
        return
    if data.draw(st.booleans()):
        payload = _mutate_bytes(payload, data.draw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_read(_write(fuzz_dir, "slice.dcm", payload), domain)


# Offsets in a NIfTI-1 header: dim[8] (int16), datatype, bitpix (int16),
# vox_offset, scl_slope, scl_inter (float32).
NIFTI_FIELDS = {"dim": (40, "8h"), "datatype": (70, "h"), "bitpix": (72, "h"),
                "vox_offset": (108, "f"), "scl_slope": (112, "f"), "scl_inter": (116, "f")}
FLOATS = [0.0, -1.0, 1.0, float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 1e-30]
DATATYPES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048,
             2304, 999, -1]


@FUZZ
@given(data=st.data(), field=st.sampled_from(sorted(NIFTI_FIELDS)),
       dtype=st.sampled_from([np.int16, np.uint8, np.float32, np.float64, np.int32]),
       gz=st.booleans(), domain=st.sampled_from(["ct", "mri"]))
def test_nifti_with_a_bad_header_field_reads_or_is_refused(fuzz_dir, data, field, dtype, gz,
                                                          domain):
    payload = bytearray(_nifti_bytes(dtype))
    offset, layout = NIFTI_FIELDS[field]
    if field == "dim":
        dims = data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 8, 16, 7, -1, 32767]),
                                  min_size=8, max_size=8))
        payload[offset:offset + 16] = struct.pack("<8h", *dims)
    elif layout == "h":
        values = DATATYPES if field == "datatype" else BAD_NUMBERS
        value = data.draw(st.sampled_from(values).filter(lambda v: -32768 <= v <= 32767))
        payload[offset:offset + 2] = struct.pack("<h", value)
    else:
        payload[offset:offset + 4] = struct.pack("<f", data.draw(st.sampled_from(FLOATS)))
    payload = bytes(payload)
    if data.draw(st.booleans()):
        payload = _mutate_bytes(payload, data.draw)
    if gz:
        import gzip

        payload = gzip.compress(payload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_read(_write(fuzz_dir, "volume.nii.gz" if gz else "volume.nii", payload), domain)


def test_the_property_holds_for_the_unmutated_files(tmp_path):
    # Control: every seed file reads as a scan, so a mutation that is
    # refused is refused for what the mutation did.
    seeds = {"a.png": _image_bytes("png"), "b.png": _image_bytes("png16"),
             "c.jpg": _image_bytes("jpeg"), "d.tiff": _image_bytes("tiff"),
             "e.jpg": _exif_jpeg(6), "f.nii": _nifti_bytes(), "g.nii.gz": _nifti_bytes(gz=True)}
    for name, payload in seeds.items():
        scans = _check_read(_write(tmp_path, name, payload), "ct")
        assert scans and len(scans) == 1, name
    for base in ("CT_small.dcm", "MR_small.dcm"):
        domain = "ct" if base.startswith("CT") else "mri"
        with open(get_testdata_file(base), "rb") as f:
            assert _check_read(_write(tmp_path, "slice.dcm", f.read()), domain), base
        deflated = _dicom_with(("PatientName", "PN"), "Fuzz^Seed", base, deflated=True)
        assert _check_read(_write(tmp_path, "slice.dcm", deflated), domain), base


def test_the_property_fails_on_a_reader_that_leaks_an_exception(tmp_path, monkeypatch):
    # Control: an exception other than InputError escaping a reader fails it.
    from vaecyclegan.io import formats

    def leaky(source, domain, axis="axial"):
        raise ValueError("leaked")

    monkeypatch.setattr(formats, "read_scan", leaky)
    monkeypatch.setitem(globals(), "read_scan", leaky)
    with pytest.raises(ValueError, match="leaked"):
        _check_read(_write(tmp_path, "a.png", _image_bytes("png")), "ct")
