"""Reading DICOM, on the real files pydicom ships (and copies of them with
their headers broken); translating it is in tests/integration/test_dicom.py
and tests/integration/test_dicom_bad_input.py."""


import contextlib
import os
import pathlib
import random
import signal
import struct
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from tests.harness import dicom_series_folder
from vaecyclegan.config import IntensityConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.dicom_format import (
    MODALITY,
    group_series,
    is_dicom_file,
    read_dicom_series,
    read_header,
    write_dicom_series,
)
from vaecyclegan.io.formats import find_scan_sources


def test_ct_small_reads_in_hounsfield_units():
    path = get_testdata_file("CT_small.dcm")
    scan = read_dicom_series([path], "ct", "CT_small.dcm")
    stored = pydicom.dcmread(path).pixel_array
    assert scan.units == "hu" and scan.values.shape == (1, 128, 128)
    # RescaleIntercept -1024, slope 1.
    np.testing.assert_array_equal(scan.values[0], stored.astype(np.float32) - 1024)


def test_files_named_by_their_uid_are_dicom_by_their_mark(tmp_path):
    # A PACS export's "1.2.840.10008.99": its "extension" .99 made it "not a
    # supported file".
    folder = tmp_path / "export"
    folder.mkdir()
    data = pathlib.Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (folder / "1.2.840.10008.99").write_bytes(data)
    (folder / "notes.1234").write_bytes(b"x" * 200)  # control: no DICM mark
    assert is_dicom_file(str(folder / "1.2.840.10008.99"))
    assert not is_dicom_file(str(folder / "notes.1234"))
    [source] = find_scan_sources(str(folder / "1.2.840.10008.99"))
    assert source.kind == "dicom"
    assert read_dicom_series(source.paths, "ct", source.name).values.shape == (1, 128, 128)


def test_a_series_folder_is_one_scan_sorted_by_position(tmp_path):
    folder = dicom_series_folder(tmp_path)
    assert all(is_dicom_file(str(p)) for p in folder.iterdir())  # no extension: DICM mark
    [source] = find_scan_sources(str(folder))
    scan = read_dicom_series(source.paths, "ct", source.name)
    assert scan.values.shape == (3, 128, 128)
    marks = scan.values[:, 0, 0] + 1024
    np.testing.assert_array_equal(marks, [0, 100, 200])
    assert scan.source.file_names == ["IM0003", "IM0002", "IM0001"]


# --- Bad DICOM: every file that cannot be translated is one InputError. ---
#
# The bad files are pydicom's CT_small and MR_small with tags set. Values
# pydicom would refuse to set are written as raw elements (their bytes as
# they would sit in the file), so that the file holds exactly the bad text.

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")
RESCALE_REQUIRED = "a CT slice needs RescaleSlope and RescaleIntercept to give Hounsfield units"


def _raw(keyword, text):
    """A raw element holding `text` (bytes) under `keyword`'s VR."""
    value = text + b" " * (len(text) % 2)
    tag = Tag(keyword)
    return RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)


def _bad_dicom(tmp_path, source=CT_SMALL, name="bad.dcm", delete=(), raw=None, **values):
    """A copy of `source` with `values` set, `raw` (keyword: bytes) set as
    raw element bytes and `delete` removed; returns its path."""
    dataset = pydicom.dcmread(source)
    for keyword in delete:
        delattr(dataset, keyword)
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    for keyword, text in (raw or {}).items():
        dataset[Tag(keyword)] = _raw(keyword, text)
    path = tmp_path / name
    dataset.save_as(path, enforce_file_format=True)
    return str(path)


def _refused(path, domain, *fragments):
    """Reading `path` raises one InputError line that names the file and
    holds each fragment, and leaves the file as it was."""
    before = pathlib.Path(path).read_bytes()
    with pytest.raises(InputError) as caught:
        read_dicom_series([path], domain, os.path.basename(path))
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert pathlib.Path(path).read_bytes() == before
    return message


@pytest.mark.parametrize("changes, message", [
    # The rescale: once run outside the reader's checks (TypeError, numpy's
    # _UFuncNoLoopError), or silently wrong (NaN: an all-zero MR; slope 0;
    # no intercept: HU 1,024 too high).
    ({"raw": {"RescaleSlope": b""}}, f"RescaleSlope is empty: {RESCALE_REQUIRED}"),
    ({"raw": {"RescaleSlope": b"abc"}}, f"RescaleSlope abc is not a number: {RESCALE_REQUIRED}"),
    ({"raw": {"RescaleSlope": b"NaN"}}, "RescaleSlope is NaN, not a finite number"),
    ({"raw": {"RescaleIntercept": b"-inf"}}, "RescaleIntercept is -inf, not a finite number"),
    ({"raw": {"RescaleSlope": b"0"}}, "RescaleSlope is 0: every pixel would get the same value"),
    ({"raw": {"RescaleSlope": b"1\\2"}}, "RescaleSlope holds 2 values ('1\\\\2'), not one"),
    ({"raw": {"RescaleSlope": b"1e300"}},
     "rescaled values overflow (RescaleSlope 1e300, RescaleIntercept -1024)"),
    ({"delete": ["RescaleIntercept"]}, f"RescaleIntercept missing: {RESCALE_REQUIRED} "
                                       "(the CT Image IOD requires both)"),
    ({"delete": ["RescaleSlope"]}, f"RescaleSlope missing: {RESCALE_REQUIRED}"),
    # NumberOfFrames: badVR.dcm's "1A" once raised ValueError from int().
    ({"raw": {"NumberOfFrames": b"1A"}}, "NumberOfFrames 1A is not a whole number"),
    ({"raw": {"NumberOfFrames": b"0"}}, "NumberOfFrames is 0: a slice needs at least one frame"),
    ({"raw": {"NumberOfFrames": b"3"}}, "multi-frame DICOM is not supported"),
    # Modalities other than CT and MR.
    ({"Modality": "SEG"}, "Modality SEG: only CT and MR slices can be translated"),
    ({"Modality": "PT"}, "Modality PT: only CT and MR slices can be translated"),
    ({"Modality": "OT"}, "Modality OT: only CT and MR slices can be translated"),
    ({"delete": ["Modality"], "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},
     "no Modality (SOP class 1.2.840.10008.5.1.4.1.1.7): only CT and MR slices"),
    # Pixel description.
    ({"SamplesPerPixel": 3}, "colour DICOM (MONOCHROME2): CT and MR slices are monochrome"),
    ({"PhotometricInterpretation": "PALETTE COLOR"},
     "PhotometricInterpretation 'PALETTE COLOR': CT and MR slices are monochrome (MONOCHROME1 "
     "or MONOCHROME2)"),
    ({"delete": ["PhotometricInterpretation"]}, "PhotometricInterpretation missing"),
    ({"BitsAllocated": 12}, "BitsAllocated is 12: only 8, 16 or 32 bits per pixel are read"),
    ({"BitsStored": 0}, "BitsStored is 0, outside 1..16 (BitsAllocated)"),
    ({"BitsStored": 20}, "BitsStored is 20, outside 1..16 (BitsAllocated)"),
    ({"BitsStored": 1}, "1-bit pixel data is a mask (a segmentation), not a CT or MR image"),
    ({"PixelRepresentation": 2}, "PixelRepresentation is 2: 0 (unsigned) or 1 (signed)"),
    ({"delete": ["BitsAllocated"]}, "BitsAllocated missing"),
    ({"Rows": 0}, "Rows 0, Columns 128: a slice needs at least one row and one column"),
    ({"raw": {"Rows": b"\x80\x00\x80\x00"}}, "Rows holds 2 values ('128\\\\128'), not one"),
    # Geometry the reader sorts by and the writer copies.
    ({"raw": {"ImagePositionPatient": b"1\\2"}},
     "ImagePositionPatient '1\\\\2' is not 3 finite numbers"),
    ({"raw": {"ImageOrientationPatient": b"1\\0\\0\\0\\1\\x"}},
     "ImageOrientationPatient '1\\\\0\\\\0\\\\0\\\\1\\\\x' is not 6 finite numbers"),
    ({"raw": {"SliceThickness": b"abc"}}, "SliceThickness abc cannot be copied into the result"),
])
def test_a_ct_slice_the_header_contradicts_is_refused_in_one_line(tmp_path, changes, message):
    path = _bad_dicom(tmp_path, **changes)
    _refused(path, "ct", message)


def test_a_ct_slice_with_a_bad_rescale_is_refused_in_either_direction(tmp_path):
    # The modality check comes first for the other direction; the rescale
    # is checked whatever the direction asks once the modality fits.
    path = _bad_dicom(tmp_path, raw={"RescaleSlope": b"abc"})
    _refused(path, "mri", "Modality is CT where MR is expected")


def test_pydicoms_bad_vr_file_is_one_input_error():
    # badVR.dcm: an RT dose with NumberOfFrames "1A"; refused for what it is.
    path = get_testdata_file("badVR.dcm")
    _refused(path, "mri", "Modality RTDOSE: only CT and MR slices can be translated")
    _refused(path, "ct", "Modality RTDOSE")


def _packed_mask(rows, columns):
    mask = np.zeros((rows, columns), np.uint8)
    mask[32:96, 32:96] = 1
    return np.packbits(mask.ravel(), bitorder="little").tobytes()


@pytest.mark.parametrize("domain", ["ct", "mri"])
def test_a_one_bit_segmentation_is_not_translated_as_an_image(tmp_path, domain):
    seg = dict(BitsAllocated=1, BitsStored=1, HighBit=0, PixelRepresentation=0,
               PixelData=_packed_mask(128, 128), delete=["RescaleSlope", "RescaleIntercept"])
    _refused(_bad_dicom(tmp_path, name="seg.dcm", Modality="SEG", **seg), domain,
             "Modality SEG: only CT and MR slices can be translated")
    modality = {"ct": "CT", "mri": "MR"}[domain]
    _refused(_bad_dicom(tmp_path, name="mask.dcm", Modality=modality, **seg), domain,
             "1-bit pixel data is a mask (a segmentation), not a CT or MR image")


def test_mr_rescale_is_checked_when_present_and_applied(tmp_path):
    stored = pydicom.dcmread(MR_SMALL).pixel_array.astype(np.float32)
    _refused(_bad_dicom(tmp_path, MR_SMALL, raw={"RescaleSlope": b"abc"}), "mri",
             "RescaleSlope abc is not a number")
    _refused(_bad_dicom(tmp_path, MR_SMALL, raw={"RescaleSlope": b"0", "RescaleIntercept": b"0"}),
             "mri", "RescaleSlope is 0")
    _refused(_bad_dicom(tmp_path, MR_SMALL, raw={"RescaleSlope": b"1", "RescaleIntercept": b"nan"}),
             "mri", "RescaleIntercept is nan, not a finite number")
    _refused(_bad_dicom(tmp_path, MR_SMALL, raw={"RescaleSlope": b""}), "mri",
             "RescaleSlope is empty")
    path = _bad_dicom(tmp_path, MR_SMALL, name="scaled.dcm",
                      raw={"RescaleSlope": b"2", "RescaleIntercept": b"10"})
    scan = read_dicom_series([path], "mri", "scaled.dcm")
    assert scan.units == "signal"
    np.testing.assert_array_equal(scan.values[0], stored * 2 + 10)
    # Only a slope: applied, with intercept 0 (pydicom would skip both).
    path = _bad_dicom(tmp_path, MR_SMALL, name="slope.dcm", raw={"RescaleSlope": b"3"})
    np.testing.assert_array_equal(read_dicom_series([path], "mri", "s").values[0], stored * 3)
    # None: the stored values.
    np.testing.assert_array_equal(read_dicom_series([MR_SMALL], "mri", "m").values[0], stored)


def test_monochrome1_ct_is_read_in_hounsfield_units_as_monochrome2(tmp_path):
    # MONOCHROME1 only says how to display: CT values stay HU.
    path = _bad_dicom(tmp_path, PhotometricInterpretation="MONOCHROME1")
    expected = read_dicom_series([CT_SMALL], "ct", "CT_small.dcm").values
    np.testing.assert_array_equal(read_dicom_series([path], "ct", "m1").values, expected)


def test_monochrome1_mr_is_flipped_to_look_as_a_viewer_shows_it(tmp_path):
    # MR values are grey levels: flipped over their range (MR_small: signed
    # 16 bits stored, -32768..32767), the bright structures stay bright.
    path = _bad_dicom(tmp_path, MR_SMALL, PhotometricInterpretation="MONOCHROME1")
    stored = pydicom.dcmread(MR_SMALL).pixel_array.astype(np.float32)
    values = read_dicom_series([path], "mri", "m1").values[0]
    np.testing.assert_array_equal(values, (-32768 + 32767) - stored)
    unsigned = _bad_dicom(tmp_path, MR_SMALL, name="u.dcm", PhotometricInterpretation="MONOCHROME1",
                          PixelRepresentation=0, BitsStored=12, HighBit=11)
    pixels = pydicom.dcmread(unsigned).pixel_array.astype(np.float32)
    np.testing.assert_array_equal(read_dicom_series([unsigned], "mri", "u").values[0],
                                  4095 - pixels)


def test_missing_modality_falls_back_on_the_sop_class(tmp_path):
    path = _bad_dicom(tmp_path, delete=["Modality"])
    assert read_dicom_series([path], "ct", "no modality").units == "hu"
    _refused(path, "mri", "Modality is CT where MR is expected")


def test_pydicom_warnings_turned_errors_still_give_the_one_line(tmp_path):
    # "1A" makes pydicom warn (invalid IS); under -W error that warning
    # would be raised from inside pydicom.
    path = _bad_dicom(tmp_path, raw={"NumberOfFrames": b"1A"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _refused(path, "ct", "NumberOfFrames 1A is not a whole number")
        scan = read_dicom_series([CT_SMALL], "ct", "CT_small.dcm")
    assert scan.values.shape == (1, 128, 128)


@contextlib.contextmanager
def _deadline(seconds):
    """Fails the test instead of hanging past `seconds`."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_is_dicom_file_and_group_series_survive_anything(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "text.dcm").write_text("not DICOM\n")
    (tmp_path / "noise").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "short").write_bytes(b"DICM")
    os.mkfifo(tmp_path / "pipe")  # opening it would block: never opened
    paths = [str(tmp_path / name) for name in
             ("folder", "empty.dcm", "text.dcm", "noise", "short", "pipe", "missing")]
    with _deadline(10):  # a reader that opened the pipe would wait forever
        for path in paths + [str(tmp_path / "nul\0byte"), ""]:
            assert is_dicom_file(path) in (True, False)
        groups = group_series(paths)
        for path in paths:
            with pytest.raises(InputError) as caught:
                read_dicom_series([path], "ct", "x")
            assert "\n" not in str(caught.value)
    assert groups == [[path] for path in paths]
    assert is_dicom_file(str(tmp_path / "text.dcm")) and not is_dicom_file(str(tmp_path / "pipe"))


def _mutations(seed, count):
    """`count` copies of CT_small and MR_small with values, value lengths,
    VRs or bytes of their header elements broken, deterministically."""
    rng = random.Random(seed)
    sources = []
    for source in (CT_SMALL, MR_SMALL):
        dataset = pydicom.dcmread(source)
        tells = [getattr(dataset.get_item(tag), "value_tell", None) for tag in dataset.keys()]
        sources.append((pathlib.Path(source).read_bytes(), [tell for tell in tells if tell]))
    values = [b"", b" ", b"abc", b"NaN", b"inf", b"0", b"1\\2", b"\x00\x00", b"\xff\xff",
              b"\xff\xff\xff\xff", b"1e999", b"\\", b"MONOCHROME1", b"SEG ", b"RGB ",
              b"\x01\x00", b"\x20\x00", b"\x0c\x00", b"\x01\x80"]
    for _ in range(count):
        data, tells = rng.choice(sources)
        data = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            tell, kind = rng.choice(tells), rng.random()
            if kind < 0.4:
                value = rng.choice(values)
                data[tell:tell + len(value)] = value
            elif kind < 0.6:  # the 2-byte length of an explicit-VR element
                data[tell - 2:tell] = bytes(rng.randrange(256) for _ in range(2))
            elif kind < 0.8:
                data[tell + rng.randrange(4)] = rng.randrange(256)
            else:
                data[tell - 4:tell - 2] = rng.choice([b"UN", b"SQ", b"OB", b"US", b"DS", b"XX"])
        if rng.random() < 0.1:
            data = data[:rng.randrange(len(data))]
        yield bytes(data)


def test_broken_headers_end_as_one_input_error_or_a_clean_read(tmp_path):
    read = refused = 0
    for index, data in enumerate(_mutations(seed=7, count=300)):
        path = tmp_path / f"m{index:03d}.dcm"
        path.write_bytes(data)
        assert is_dicom_file(str(path))
        assert group_series([str(path)]) == [[str(path)]]
        domain = "ct" if index % 2 else "mri"
        try:
            scan = read_dicom_series([str(path)], domain, path.name)
        except InputError as error:
            assert "\n" not in str(error) and str(error).startswith(f"{path}: ")
            refused += 1
        else:
            assert np.isfinite(scan.values).all()
            out = tmp_path / f"out{index:03d}"
            out.mkdir()
            other = "mri" if domain == "ct" else "ct"
            write_dicom_series(str(out), scan, np.zeros(scan.values.shape, np.float32), other,
                               IntensityConfig(), "test")
            assert pydicom.dcmread(out / path.name).Modality == MODALITY[other]
            read += 1
        assert path.read_bytes() == data
    assert read > 20 and refused > 100, (read, refused)


def test_a_file_that_is_not_dicom_is_named_as_such(tmp_path):
    # Read by force, a PNG named .dcm was "DICOM without pixel data".
    from tests.harness import write_image

    write_image(tmp_path / "slice.png", np.full((8, 8), 7, np.uint8))
    os.rename(tmp_path / "slice.png", tmp_path / "slice.dcm")
    (tmp_path / "noise.dcm").write_bytes(bytes(range(7, 250)) * 3)
    for name, reason in (("slice.dcm", "it is a PNG file; name it for its format"),
                         ("noise.dcm", "no DICM preamble and no DICOM header element")):
        with pytest.raises(InputError, match=f"not a DICOM file \\({reason}\\)"):
            read_dicom_series([str(tmp_path / name)], "ct", name)
    # Control: DICOM without the preamble and file meta still reads.
    raw = get_testdata_file("ExplVR_LitEndNoMeta.dcm")
    assert read_header(raw).preamble is None and "Modality" in read_header(raw)


def test_a_sagittal_series_is_cut_into_axial_slices_and_written_back_as_stored(tmp_path):
    # Stacked as acquired, a sagittal 3-D T1 series trained and translated
    # as sagittal slices beside axial CT; DICOM ignored --axis.
    from nibabel.orientations import aff2axcodes

    from tests.harness import write_ct_series

    folder = tmp_path / "sagittal"
    folder.mkdir()
    # A row runs along +y (posterior, 0.7 mm a column), a column along -z
    # (inferior, 1 mm a row); 12 slices 1.5 mm apart along +x (patient's
    # left), files named against position order.
    positions = [[-8.0 + 1.5 * k, -60.0, 60.0] for k in range(12)]
    names = [f"IM{12 - k:02d}" for k in range(12)]
    write_ct_series(folder, names, orientation=[0, 1, 0, 0, 0, -1], pixel_spacing=[1.0, 0.7],
                    positions=positions, marker=(5, 20, 30, 30000))
    scan = read_dicom_series([str(p) for p in folder.iterdir()], "ct", "s")
    assert scan.values.shape == (128, 128, 12)  # (superior, posterior, left)
    assert aff2axcodes(scan.world) == ("S", "P", "L")
    assert scan.spacing == pytest.approx((1.0, 0.7, 1.5))
    marker = np.argwhere(scan.values == scan.values.max())[0]
    # Row 20 is 20 rows below the top (127 - 20 going up), column 30 is 30
    # columns posterior, the slice at position 5 the sixth from the right.
    assert list(marker) == [127 - 20, 30, 5]
    lps = np.array([-8.0 + 1.5 * 5, -60.0 + 30 * 0.7, 60.0 - 20 * 1.0])
    assert np.allclose(scan.world @ [*marker, 1.0], [*(lps * [-1, -1, 1]), 1.0])
    sagittal = read_dicom_series([str(p) for p in folder.iterdir()], "ct", "s", axis="sagittal")
    assert sagittal.values.shape == (12, 128, 128)  # (left, inferior, posterior)
    assert aff2axcodes(sagittal.world) == ("L", "I", "P")
    out = tmp_path / "out"
    out.mkdir()
    intensity = IntensityConfig()
    write_dicom_series(str(out), scan, scan.to_unit(intensity), "ct", intensity, "ct2mri")
    for name, position in zip(names, positions):
        written = pydicom.dcmread(out / name)
        assert [float(v) for v in written.ImagePositionPatient] == position
        source = pydicom.dcmread(folder / name)
        expected = np.clip(source.pixel_array.astype(float) - 1024, *intensity.ct_window_hu)
        assert np.abs(written.pixel_array.astype(float) - expected).max() <= 1.0


def test_a_few_slices_of_another_plane_are_kept_as_stored_and_said_so(tmp_path, caplog):
    # Cut along the axial plane, 5 sagittal slices gave 5x128 slivers,
    # refused as "smaller than 8x8".
    from tests.harness import write_ct_series

    folder = tmp_path / "sagittal"
    folder.mkdir()
    write_ct_series(folder, [f"IM{k}" for k in range(5)], orientation=[0, 1, 0, 0, 0, -1],
                    positions=[[1.5 * k, -60.0, 60.0] for k in range(5)])
    with caplog.at_level("INFO", logger="vaecyclegan"):
        scan = read_dicom_series([str(p) for p in folder.iterdir()], "ct", "s")
    assert scan.values.shape == (5, 128, 128) and scan.source.to_stored is None
    assert "its 5 sagittal slices are translated as stored" in caplog.text


def _written_slice(tmp_path, name, domain, changes=None, unit=None, window=(-160.0, 240.0)):
    """pydicom's `name` (changed by `changes`) translated to `domain` as
    `unit` (zeros by default) and read back."""
    source = pydicom.dcmread(get_testdata_file(name))
    (changes or (lambda dataset: None))(source)
    folder = tmp_path / f"in_{domain}"
    folder.mkdir()
    source.save_as(folder / "IM1")
    scan = read_dicom_series([str(folder / "IM1")], "mri" if domain == "ct" else "ct", "s")
    out = tmp_path / f"out_{domain}"
    out.mkdir()
    intensity = IntensityConfig(ct_window_hu=window)
    if unit is None:
        unit = np.zeros(scan.values.shape, np.float32)
    else:
        unit = np.broadcast_to(np.asarray(unit, np.float32), scan.values.shape)
    write_dicom_series(str(out), scan, unit, domain, intensity, "test")
    return source, pydicom.dcmread(out / "IM1")


def test_written_values_are_rounded_and_ct_clipped_to_int16(tmp_path):
    # Truncation (10.6 HU written 10) and int16 wrap-round both passed.
    from vaecyclegan.io.intensity import MR_SIGNAL_MAX

    hu = 10.6
    unit = (hu + 160.0) / 400.0 * 2.0 - 1.0
    _, ct = _written_slice(tmp_path, "MR_small.dcm", "ct", unit=unit)
    assert np.unique(ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
                     ).tolist() == [11.0]
    (tmp_path / "wide").mkdir()
    _, wide = _written_slice(tmp_path / "wide", "MR_small.dcm", "ct", unit=1.0,
                             window=(0.0, 60000.0))
    assert np.unique(wide.pixel_array).tolist() == [32767]  # not wrapped to negative
    signal = 0.6 + 100
    _, mr = _written_slice(tmp_path, "CT_small.dcm", "mri",
                           unit=signal / MR_SIGNAL_MAX * 2.0 - 1.0)
    assert np.unique(mr.pixel_array).tolist() == [101]


def test_a_synthetic_series_stays_in_its_study_with_the_elements_its_modules_require(
        tmp_path):
    # A new StudyInstanceUID beside the input's accession number and study
    # ID put the sCT into a study of its own that an archive sees clash;
    # the MR output lacked ScanningSequence/SequenceVariant (type 1) and the
    # CT output KVP (type 2).
    source, ct = _written_slice(tmp_path, "MR_small.dcm", "ct")
    assert ct.StudyInstanceUID == source.StudyInstanceUID
    assert ct.SeriesInstanceUID != source.SeriesInstanceUID
    assert "KVP" in ct and ct.KVP in (None, "") and "AcquisitionNumber" in ct
    assert "-160 to 240 HU" in ct.DerivationDescription
    source, mr = _written_slice(tmp_path, "CT_small.dcm", "mri")
    assert mr.StudyInstanceUID == source.StudyInstanceUID
    assert (mr.ScanningSequence, mr.SequenceVariant) == ("RM", "NONE")
    for keyword in ("ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
                    "EchoTrainLength", "ReferringPhysicianName"):
        assert keyword in mr, keyword
    assert "HU" not in mr.DerivationDescription
    assert mr.FrameOfReferenceUID == source.FrameOfReferenceUID  # placed: kept


def test_an_input_without_plane_geometry_gives_secondary_capture_placed_nowhere(tmp_path):
    # Written as CT Image Storage without position, orientation or spacing
    # (which it requires) but with the input's frame of reference.
    def unplaced(dataset):
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            delattr(dataset, keyword)
        del dataset.StudyInstanceUID

    source, ct = _written_slice(tmp_path, "MR_small.dcm", "ct", unplaced)
    assert ct.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ct.Modality == "CT"
    # Present but empty places nothing either.
    def emptied(dataset):
        dataset.ImagePositionPatient = None
        dataset.ImageOrientationPatient = ["", "", "", "", "", ""]  # "\\\\\\\\\\" as stored

    (tmp_path / "empty").mkdir()
    _, empty = _written_slice(tmp_path / "empty", "MR_small.dcm", "ct", emptied)
    assert empty.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and "FrameOfReferenceUID" not in empty

    def blank_values(dataset):  # "\\" read: two empty values, present and placing nothing
        dataset.PixelSpacing = ["", ""]

    (tmp_path / "blank").mkdir()
    _, blank = _written_slice(tmp_path / "blank", "MR_small.dcm", "ct", blank_values)
    assert blank.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ct.file_meta.MediaStorageSOPClassUID == ct.SOPClassUID
    assert "FrameOfReferenceUID" not in ct and "SliceLocation" not in ct
    assert ct.StudyInstanceUID  # a new study where the input has none
    assert ct.PatientID == source.PatientID


def test_a_result_on_another_grid_than_the_series_is_not_written(tmp_path):
    scan = read_dicom_series([get_testdata_file("CT_small.dcm")], "ct", "s")
    with pytest.raises(ValueError, match="shape"):
        write_dicom_series(str(tmp_path), scan, np.zeros((1, 32, 32), np.float32), "mri",
                           IntensityConfig(), "test")
    assert os.listdir(tmp_path) == []


def test_a_series_of_several_planes_is_said_to_be_taken_as_stored(tmp_path, caplog):
    # A three-plane localizer (one series) trained as a mix of planes, and
    # was translated without a word.
    from tests.harness import write_ct_series

    axial, coronal = [1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1]
    folder = tmp_path / "localizer"
    folder.mkdir()
    names = ["IM1", "IM2", "IM3"]
    paths = write_ct_series(folder, names, positions=[[0, 0, 0], [0, 0, 5], [0, 40, 0]])
    for path, orientation in zip(paths, (axial, axial, coronal)):
        dataset = pydicom.dcmread(path)
        dataset.ImageOrientationPatient = orientation
        dataset.save_as(path)
    with caplog.at_level("INFO", logger="vaecyclegan"):
        scan = read_dicom_series([str(p) for p in paths], "ct", "localizer")
    assert scan.values.shape == (3, 128, 128) and scan.world is None
    assert "localizer: its 3 slices lie in 2 orientations" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="vaecyclegan"):
        read_dicom_series([str(p) for p in paths[:2]], "ct", "axial")
    assert "orientations" not in caplog.text  # control: one plane


@pytest.mark.parametrize("uid", [["1.2.3", "1.2.4"], "abc", "1.2." + "3" * 70])
def test_an_invalid_study_uid_gives_a_new_study(tmp_path, uid):
    # Copied, ["1.2.3", "1.2.4"] was written as the text of a Python list.
    def invalid(dataset):
        dataset.StudyInstanceUID = uid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the invalid value it is given
        _, ct = _written_slice(tmp_path, "MR_small.dcm", "ct", invalid)
    assert pydicom.uid.UID(ct.StudyInstanceUID).is_valid and ct.StudyInstanceUID != str(uid)


def _deflated_ct_small(tmp_path, body=None):
    """CT_small saved deflated; with `body`, its file meta followed by
    `body` in place of the compressed data set."""
    dataset = pydicom.dcmread(CT_SMALL)
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    dataset.save_as(path, enforce_file_format=True)
    if body is not None:
        with open(path, "rb") as f:
            pydicom.filereader.read_preamble(f, False)
            pydicom.filereader._read_file_meta_info(f)
            meta = f.tell()
        path.write_bytes(path.read_bytes()[:meta] + body)
    return str(path)


def test_a_deflated_dicom_whose_data_set_does_not_inflate_is_one_input_error(tmp_path):
    # zlib's error had escaped as a traceback, alone and in a folder.
    assert read_dicom_series([_deflated_ct_small(tmp_path)], "ct", "ok").values.shape == (
        1, 128, 128)  # control: deflated is read
    path = _deflated_ct_small(tmp_path, body=b"\xff" * 200)
    _refused(path, "ct", "not a readable DICOM file", "decompressing")
    assert group_series([path]) == [[path]]
    with pytest.raises(InputError, match="decompressing"):
        [source] = find_scan_sources(str(tmp_path))
        read_dicom_series(source.paths, "ct", "folder")


@pytest.mark.parametrize("spacing, positions", [
    ([1e300, 1e300], [[0, 0, 0], [0, 0, 1]]),
    ([0.5, 0.5], [[0, 0, 0], [1e16, 0, 0.01]]),
])
def test_a_series_whose_geometry_names_no_axis_reads_as_stored(tmp_path, spacing, positions):
    # Finite but degenerate: cutting it along an axis had raised nibabel's
    # "Unable to find out axis" (and numpy's overflow warning).
    from tests.harness import write_ct_series

    paths = write_ct_series(tmp_path, ["IM1", "IM2"], pixel_spacing=spacing,
                            positions=positions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan = read_dicom_series(paths, "ct", "series")
    assert scan.values.shape == (2, 128, 128) and scan.world is None


@pytest.mark.parametrize("size", [65535, 200])
def test_pixel_data_shorter_than_the_header_says_is_a_cut_file_not_a_memory_problem(
        tmp_path, size):
    # Rows and Columns of 65535 over CT_small's 32 KB read "needs about
    # 192 GiB ... more than the memory available": the wrong way to look.
    path = _bad_dicom(tmp_path, Rows=size, Columns=size)
    _refused(path, "ct", "pixel data holds 32,768 bytes",
             f"{size}x{size} pixels of 16 bits need {size * size * 2:,}", "cut short")


def _deflated_bomb(tmp_path, name, before=b"", after=b""):
    """CT_small deflated with 64 MB of zeros after its pixel data (a
    private OB element, (7FE1,1010)): under 1 MB on disk. `before` goes
    between the file meta and the deflated stream, `after` after it."""
    import struct
    import zlib

    with open(_deflated_ct_small(tmp_path), "rb") as f:
        pydicom.filereader.read_preamble(f, False)
        pydicom.filereader._read_file_meta_info(f)
        data_set = zlib.decompress(f.read(), -zlib.MAX_WBITS)
    padding = struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, 64 << 20) + bytes(64 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path = _deflated_ct_small(tmp_path, body=before + deflater.compress(data_set + padding)
                              + deflater.flush() + after)
    os.replace(path, tmp_path / name)
    assert os.path.getsize(tmp_path / name) < (1 << 20) + len(before) + len(after)
    return str(tmp_path / name)


@pytest.mark.parametrize("before, after", [
    (b"", b""),
    # A command set element (group 0000) ahead of the stream, which pydicom
    # reads before it inflates: the count had started there, failed, and let
    # the file through.
    (struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", 0), b""),
    (b"", bytes(3 << 20)),  # bytes after the stream, which pydicom ignores
])
def test_a_deflated_dicom_that_inflates_past_the_memory_is_refused_before_inflating(
        tmp_path, monkeypatch, before, after):
    # pydicom inflates a deflated data set whole before reading it: 64 MB
    # of zeros behind CT_small's data set, deflated to 64 kB, took 64 MB
    # here, and a bomb of tens of gigabytes all the memory there was.
    import zlib

    path = _deflated_bomb(tmp_path, "bomb.dcm", before, after)
    monkeypatch.setattr("vaecyclegan.io.dicom_format.available_memory_bytes", lambda: 32 << 20)
    inflated, decompress = [], zlib.decompress
    monkeypatch.setattr(zlib, "decompress", lambda *a: inflated.append(a) or decompress(*a))
    _refused(path, "ct", "inflates to more than 0.00391 GiB, an eighth of the 0.0312 GiB",
             "decompression bomb")
    assert not inflated  # refused before pydicom inflated it
    monkeypatch.setattr("vaecyclegan.io.dicom_format.available_memory_bytes", lambda: 1 << 30)
    assert read_dicom_series([path], "ct", "ok").values.shape == (1, 128, 128)  # control
    assert inflated  # pydicom inflated it, once it fitted


def test_a_deflated_bomb_among_training_slices_is_skipped_not_blamed_on_memory(
        tmp_path, monkeypatch, caplog):
    # Refused as a shortfall of memory, it stopped training ("train on
    # fewer scans") once a slice was held, as if the slices held were the
    # cause; it is a file to skip.
    from vaecyclegan.data.domain_slices import load_domain_slices

    folder = tmp_path / "ct"
    folder.mkdir()
    pydicom.dcmread(CT_SMALL).save_as(folder / "a.dcm")
    _deflated_bomb(folder, "b.dcm")
    monkeypatch.setattr("vaecyclegan.io.dicom_format.available_memory_bytes", lambda: 32 << 20)
    with caplog.at_level("WARNING"):
        loaded = load_domain_slices(str(folder), "ct", IntensityConfig(), 32)
    assert len(loaded.slices) == 1 and "b.dcm" in caplog.text


