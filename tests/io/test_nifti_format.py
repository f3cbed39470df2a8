"""NIfTI volumes: slices in display orientation, affine and header kept."""

import gzip
import os
import struct
import warnings

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes

from tests.harness import LAS_AFFINE
from vaecyclegan.config import IntensityConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.formats import find_scan_sources, read_scan
from vaecyclegan.io.nifti_format import read_nifti, write_nifti

AFFINE = np.array(LAS_AFFINE)


def _ct_volume(path, shape=(40, 48, 6), seed=0):
    rng = np.random.default_rng(seed)
    hu = rng.uniform(-1100, 2400, shape).round().astype(np.int16)
    image = nib.Nifti1Image(hu, AFFINE)
    image.header["descrip"] = b"test CT"
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))
    return hu


def test_a_volume_round_trips_with_its_affine_and_hu_within_one_step(tmp_path):
    intensity = IntensityConfig()
    hu = _ct_volume(tmp_path / "ct.nii.gz")
    scan = read_nifti(str(tmp_path / "ct.nii.gz"), "ct")
    assert scan.units == "hu" and scan.values.shape == (6, 48, 40)
    write_nifti(str(tmp_path / "back.nii.gz"), scan, scan.to_unit(intensity), "ct", intensity,
                "round trip")
    back, original = nib.load(str(tmp_path / "back.nii.gz")), nib.load(str(tmp_path / "ct.nii.gz"))
    # Equal to the float32 affine the file stores, bit for bit.
    np.testing.assert_array_equal(back.affine, original.affine)
    for field in ("srow_x", "srow_y", "srow_z", "qform_code", "sform_code", "pixdim", "dim"):
        np.testing.assert_array_equal(back.header[field], original.header[field])
    assert back.header.get_xyzt_units() == ("mm", "sec")
    assert back.get_data_dtype() == np.int16
    low, high = intensity.ct_window_hu
    error = np.abs(np.asarray(back.dataobj).astype(float) - np.clip(hu, low, high))
    assert error.max() <= 0.5  # rounded to the 1-HU step, not truncated
    with gzip.open(tmp_path / "back.nii.gz") as f:  # really gzip-compressed
        assert len(f.read()) > 0


def test_slices_are_cut_in_radiological_display_orientation(tmp_path):
    volume = np.zeros((40, 48, 10), np.int16)
    # LAS: index 0 of x is the patient's far right, index 0 of y the back.
    volume[0, 0, 2] = 1000
    nib.save(nib.Nifti1Image(volume, AFFINE), str(tmp_path / "v.nii"))
    assert aff2axcodes(AFFINE) == ("L", "A", "S")
    scan = read_nifti(str(tmp_path / "v.nii"), "ct")
    # Axial display: anterior at the top, the patient's right on the left.
    k, row, col = np.unravel_index(np.argmax(scan.values), scan.values.shape)
    assert (k, row, col) == (2, 47, 0)
    coronal = read_nifti(str(tmp_path / "v.nii"), "ct", axis="coronal")
    assert coronal.values.shape == (48, 10, 40)


# -- files that cannot be read as one scalar volume -------------------------------------

def _header_bytes(volume, **fields):
    """A NIfTI file of `volume` with header fields set as given (written as
    they are, past nibabel's own checks)."""
    image = nib.Nifti1Image(volume, AFFINE)
    data = bytearray(image.to_bytes())
    offsets = {"datatype": (70, "<h"), "bitpix": (72, "<h"), "scl_slope": (112, "<f"),
               "scl_inter": (116, "<f")}
    for name, value in fields.items():
        offset, layout = offsets[name]
        struct.pack_into(layout, data, offset, value)
    return bytes(data)


def _refused(path, *fragments):
    with pytest.raises(InputError) as caught:
        read_nifti(str(path), "ct")
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_volume_with_a_zero_dimension_is_refused(tmp_path):
    # It used to give zero slices, and a "zero-size array" crash later on.
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 0), np.int16), AFFINE), str(tmp_path / "z.nii"))
    _refused(tmp_path / "z.nii", "volume is 32x32x0", "zero or negative size")
    nib.save(nib.Nifti1Image(np.zeros((0, 32, 4), np.float32), AFFINE), str(tmp_path / "y.nii.gz"))
    _refused(tmp_path / "y.nii.gz", "volume is 0x32x4")


def test_an_unknown_data_type_code_is_refused_quietly(tmp_path, capfd):
    # nibabel raised HeaderDataError, and logged a line of its own to stderr.
    (tmp_path / "t.nii").write_bytes(_header_bytes(np.ones((16, 16, 3), np.int16),
                                                   datatype=1234))
    _refused(tmp_path / "t.nii", "data type code 1234")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("dtype, label", [
    (np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]), "RGB (code 128)"),
    (np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")]), "RGBA (code 2304)"),
    (np.complex64, "complex64 (code 32)"),
    (np.complex128, "complex128 (code 1792)"),
])
def test_voxels_that_are_not_one_number_are_refused_naming_the_type(tmp_path, dtype, label):
    # RGB24 ended in numpy's DTypePromotionError; complex lost its imaginary part.
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 3), dtype), AFFINE), str(tmp_path / "c.nii"))
    _refused(tmp_path / "c.nii", f"voxels of data type {label}", "one integer or float value")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.float32, np.float64])
def test_every_scalar_data_type_reads(tmp_path, dtype):
    volume = (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 100).astype(dtype)
    nib.save(nib.Nifti1Image(volume, AFFINE, dtype=dtype), str(tmp_path / "v.nii"))
    scan = read_nifti(str(tmp_path / "v.nii"), "ct")
    assert scan.values.dtype == np.float32 and scan.values.max() == 99


def test_scaling_is_applied_and_a_zero_slope_means_none(tmp_path):
    volume = np.full((16, 16, 3), 10, np.int16)
    (tmp_path / "s.nii").write_bytes(_header_bytes(volume, scl_slope=2.0, scl_inter=-5.0))
    assert np.all(read_nifti(str(tmp_path / "s.nii"), "ct").values == 15)
    # NIfTI: slope 0 is "no scaling", whatever the intercept; nibabel writes NaN for it.
    for slope in (0.0, float("nan")):
        (tmp_path / "n.nii").write_bytes(_header_bytes(volume, scl_slope=slope,
                                                       scl_inter=float("inf")))
        assert np.all(read_nifti(str(tmp_path / "n.nii"), "ct").values == 10)


@pytest.mark.parametrize("slope, inter, fragment", [
    (float("inf"), 0.0, "scl_slope is inf"),
    (-float("inf"), 0.0, "scl_slope is -inf"),
    (2.0, float("inf"), "scl_inter is inf"),
    (2.0, float("nan"), "scl_inter is nan"),
])
def test_non_finite_scaling_is_refused(tmp_path, slope, inter, fragment):
    # nibabel took an infinite slope silently for "no scaling".
    (tmp_path / "s.nii").write_bytes(_header_bytes(np.ones((16, 16, 3), np.int16),
                                                   scl_slope=slope, scl_inter=inter))
    _refused(tmp_path / "s.nii", fragment)


def test_scaling_beyond_float32_is_refused_as_non_finite_voxels(tmp_path):
    (tmp_path / "s.nii").write_bytes(_header_bytes(np.full((16, 16, 3), 1000, np.int16),
                                                   scl_slope=1e37, scl_inter=0.0))
    _refused(tmp_path / "s.nii", "NaN or infinite")


def test_truncated_and_corrupt_files_are_refused(tmp_path):
    volume = np.arange(24 * 24 * 4, dtype=np.int16).reshape(24, 24, 4)
    payload = nib.Nifti1Image(volume, AFFINE).to_bytes()
    (tmp_path / "cut.nii").write_bytes(payload[:len(payload) // 2])
    _refused(tmp_path / "cut.nii")
    packed = gzip.compress(payload)
    (tmp_path / "cut.nii.gz").write_bytes(packed[:len(packed) // 2])  # EOFError in gzip
    _refused(tmp_path / "cut.nii.gz")
    (tmp_path / "plain.nii.gz").write_bytes(payload)  # not gzip at all
    _refused(tmp_path / "plain.nii.gz")
    broken = bytearray(packed)
    broken[len(broken) // 2] ^= 0xFF  # zlib.error or, decoded, a CRC error
    (tmp_path / "crc.nii.gz").write_bytes(bytes(broken))
    _refused(tmp_path / "crc.nii.gz")
    # All voxels there, the gzip trailer (CRC and size) cut: nibabel never read it.
    (tmp_path / "trailer.nii.gz").write_bytes(packed[:-4])
    _refused(tmp_path / "trailer.nii.gz", "compressed data")
    (tmp_path / "text.nii").write_bytes(b"patient notes\n" * 40)
    _refused(tmp_path / "text.nii", "not a readable NIfTI file")
    (tmp_path / "empty.nii").write_bytes(b"")
    _refused(tmp_path / "empty.nii", "empty file")


def test_a_named_pipe_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "p.nii.gz")
    _refused(tmp_path / "p.nii.gz", "not a regular file but a named pipe")
    _refused(tmp_path / "absent.nii", "file not found")


def test_a_volume_whose_name_is_not_utf8_reads(tmp_path):
    path = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"t\xe9te.nii.gz"))
    _ct_volume(path, shape=(16, 16, 3))
    assert read_nifti(path, "ct").values.shape == (3, 16, 16)


def test_mutated_headers_are_read_or_refused_with_input_error_only(tmp_path, capfd):
    rng = np.random.default_rng(0)
    payload = nib.Nifti1Image(np.arange(16 * 16 * 4, dtype=np.int16).reshape(16, 16, 4) % 97,
                              AFFINE).to_bytes()
    for trial in range(150):
        broken = bytearray(payload)
        for index in rng.integers(0, 352, 1 + trial % 6):
            broken[index] = int(rng.integers(0, 256))
        name = "m.nii.gz" if trial % 2 else "m.nii"
        data = gzip.compress(bytes(broken)) if trial % 2 else bytes(broken)
        (tmp_path / name).write_bytes(data)
        try:
            scan = read_nifti(str(tmp_path / name), "ct")
        except InputError as error:
            assert "\n" not in str(error)
        else:
            assert np.isfinite(scan.values).all() and scan.values.shape[0] > 0
    assert capfd.readouterr().err == ""


def test_a_cifti_file_is_named_as_such(tmp_path, capfd):
    # nibabel's own test CIFTI-2 matrix: the reader failed inside nibabel
    # ("from_fileobj() got an unexpected keyword argument 'check'").
    from nibabel.testing import data_path

    path = os.path.join(str(data_path), "row_major.dconn.nii")
    with pytest.raises(InputError, match="a CIFTI-2 file .*; only NIfTI-1/-2 image volumes"):
        read_nifti(path, "mri")
    # Control: a NIfTI-2 volume is read (a NIfTI-1 image to nibabel).
    nib.save(nib.Nifti2Image(np.ones((16, 16, 3), np.int16), AFFINE), str(tmp_path / "n2.nii"))
    assert read_nifti(str(tmp_path / "n2.nii"), "mri") is not None
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("shape", [(16, 16, 3, 1), (16, 16, 3, 1, 1)])
def test_size_one_axes_after_the_third_read_as_a_volume_and_are_written_back(tmp_path, shape):
    # One frame with one component (5-D) was refused while one frame (4-D) read.
    intensity = IntensityConfig()
    hu = (np.arange(16 * 16 * 3).reshape(shape) % 1000).astype(np.int16)
    nib.save(nib.Nifti1Image(hu, AFFINE), str(tmp_path / "ct.nii"))
    scan = read_nifti(str(tmp_path / "ct.nii"), "ct")
    assert scan.values.shape == (3, 16, 16)
    write_nifti(str(tmp_path / "back.nii"), scan, scan.to_unit(intensity), "ct", intensity,
                "round trip")
    back = nib.load(str(tmp_path / "back.nii"))
    assert back.shape == shape
    assert np.abs(np.asarray(back.dataobj).astype(float) - hu).max() <= 1.0


def test_a_volume_of_several_frames_is_still_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 3, 1, 2), np.int16), AFFINE),
             str(tmp_path / "ct.nii"))
    with pytest.raises(InputError, match="5-D NIfTI .16x16x3x1x2.: one 3-D volume is needed"):
        read_nifti(str(tmp_path / "ct.nii"), "ct")


def test_written_ct_is_clipped_to_int16_and_the_inputs_display_range_dropped(tmp_path):
    # A window reaching 35,000 HU wrapped round to negative HU; the MRI's
    # cal_max (its display range) came along into the synthetic CT.
    import pydicom
    from pydicom.data import get_testdata_file

    from vaecyclegan.io.dicom_format import read_dicom_series, write_dicom_series

    _ct_volume(tmp_path / "mr.nii.gz")
    image = nib.load(str(tmp_path / "mr.nii.gz"))
    image.header["cal_min"], image.header["cal_max"] = 0.0, 800.0
    nib.save(image, str(tmp_path / "mr.nii.gz"))
    scan = read_nifti(str(tmp_path / "mr.nii.gz"), "mri")
    wide = IntensityConfig(ct_window_hu=(25000.0, 35000.0))
    top = np.ones(scan.values.shape, np.float32)
    write_nifti(str(tmp_path / "sct.nii.gz"), scan, top, "ct", wide, "sct")
    written = nib.load(str(tmp_path / "sct.nii.gz"))
    assert np.asarray(written.dataobj).min() == 32767
    assert written.header["cal_max"] == 0.0 and written.header["cal_min"] == 0.0
    ct = read_dicom_series([get_testdata_file("CT_small.dcm")], "ct", "ct")
    [path] = write_dicom_series(str(tmp_path / "dicom"), ct, np.ones(ct.values.shape, "f4"),
                                "ct", wide, "mri2ct")
    assert pydicom.dcmread(path).pixel_array.min() == 32767


def test_a_result_leaves_the_inputs_extensions_and_slice_timing_behind(tmp_path):
    # An MRI's AFNI attributes, comments and slice timing came along into
    # the synthetic CT (AFNI reads its extension's labels and history).
    _ct_volume(tmp_path / "mr.nii.gz")
    image = nib.load(str(tmp_path / "mr.nii.gz"))
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"MR T1 MPRAGE patient XYZ"))
    image.header["aux_file"], image.header["slice_duration"] = b"lut.txt", 0.1
    image.header.set_dim_info(0, 1, 2)
    nib.save(image, str(tmp_path / "mr.nii.gz"))
    scan = read_nifti(str(tmp_path / "mr.nii.gz"), "mri")
    assert len(scan.source.header.extensions) == 1  # control: read with the input
    write_nifti(str(tmp_path / "sct.nii.gz"), scan, np.zeros(scan.values.shape, np.float32),
                "ct", IntensityConfig(), "sct")
    header = nib.load(str(tmp_path / "sct.nii.gz")).header
    assert len(header.extensions) == 0
    assert header["aux_file"] == b"" and header["slice_duration"] == 0
    assert header.get_dim_info() == (None, None, None)
    assert np.allclose(header.get_best_affine(), AFFINE)  # the geometry is kept


def test_a_zero_slope_beside_an_intercept_is_read_unscaled_and_said(tmp_path, caplog):
    # ITK's readers apply the intercept where NIfTI says none: a CT was
    # read 1024 HU away from what Slicer shows, without a word.
    volume = np.full((16, 16, 3), 10, np.int16)
    for inter, said in ((-1024.0, True), (0.0, False)):
        (tmp_path / "z.nii").write_bytes(_header_bytes(volume, scl_slope=0.0, scl_inter=inter))
        caplog.clear()
        with caplog.at_level("WARNING", logger="vaecyclegan"):
            assert np.all(read_nifti(str(tmp_path / "z.nii"), "ct").values == 10)
        assert ("ITK-based tools" in caplog.text) is said, caplog.text


def test_a_header_declaring_more_voxels_than_the_file_holds_is_named_damaged(tmp_path):
    # 2000x2000x2000 voxels declared in a file of a few kB "needed about
    # 30 GiB of memory", sending the user to look for memory.
    data = bytearray(nib.Nifti1Image(np.ones((16, 16, 3), np.int16), AFFINE).to_bytes())
    struct.pack_into("<3h", data, 42, 2000, 2000, 2000)
    (tmp_path / "big.nii").write_bytes(bytes(data))
    _refused(tmp_path / "big.nii", "header declares 2000x2000x2000 int16 voxels",
             "truncated, or a damaged header")
    # Control: the whole file reads.
    (tmp_path / "whole.nii").write_bytes(_header_bytes(np.ones((16, 16, 3), np.int16)))
    assert read_nifti(str(tmp_path / "whole.nii"), "ct").values.shape == (3, 16, 16)


def test_a_gzipped_header_declaring_more_voxels_than_it_inflates_to_is_named_damaged(
        tmp_path, monkeypatch):
    # The same in a .nii.gz was still "needs about 15 GiB ... more than the
    # memory available": gzip does not say how much it inflates to.
    import gzip

    noise = np.random.default_rng(0).integers(-1000, 1000, (16, 16, 3), dtype=np.int16)
    data = bytearray(nib.Nifti1Image(noise, AFFINE).to_bytes())
    struct.pack_into("<3h", data, 42, 2000, 2000, 2000)
    (tmp_path / "big.nii.gz").write_bytes(gzip.compress(bytes(data)))
    _refused(tmp_path / "big.nii.gz", "header declares 2000x2000x2000 int16 voxels",
             "compressed bytes cannot inflate to more than", "truncated, or a damaged header")
    # Within what deflate could make of the file's bytes, too large for the
    # memory: inflated and counted.
    monkeypatch.setattr("vaecyclegan.io.memory_budget.available_memory_bytes", lambda: 1000)
    struct.pack_into("<3h", data, 42, 16, 16, 30)
    (tmp_path / "more.nii.gz").write_bytes(gzip.compress(bytes(data)))
    _refused(tmp_path / "more.nii.gz", "header declares 16x16x30 int16 voxels",
             "inflates to 1,888 bytes: truncated, or a damaged header")
    (tmp_path / "cut.nii.gz").write_bytes(gzip.compress(bytes(data))[:1000])
    _refused(tmp_path / "cut.nii.gz", "compressed data is corrupt or cut short")
    # Control: a volume that does inflate to its header's size, too large for
    # the memory, is refused for the memory.
    (tmp_path / "whole.nii.gz").write_bytes(gzip.compress(_header_bytes(
        np.ones((16, 16, 3), np.int16))))
    _refused(tmp_path / "whole.nii.gz", "more than the", "memory available")


def test_nan_voxels_of_an_mri_are_background_and_of_a_ct_refused(tmp_path, caplog):
    # Float MRIs of SPM and FSL pipelines hold NaN outside the field of
    # view: refused, they had to be filled by hand first.
    volume = np.full((16, 16, 3), 300.0, np.float32)
    volume[4:12, 4:12] = 900.0
    volume[:2] = np.nan
    nib.save(nib.Nifti1Image(volume, AFFINE), str(tmp_path / "mr.nii"))
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        scan = read_nifti(str(tmp_path / "mr.nii"), "mri")
    assert np.isfinite(scan.values).all() and scan.values.min() == 300.0
    assert "96 NaN or infinite voxel(s)" in caplog.text and "background" in caplog.text
    _refused(tmp_path / "mr.nii", "96 voxel(s) are NaN or infinite")  # as CT: HU throughout
    nib.save(nib.Nifti1Image(np.full((16, 16, 3), np.nan, np.float32), AFFINE),
             str(tmp_path / "void.nii"))
    with pytest.raises(InputError, match="768 voxel"):
        read_nifti(str(tmp_path / "void.nii"), "mri")


def test_a_volume_stored_in_another_plane_is_said_to_be_cut(tmp_path, caplog):
    # DICOM series said so; a sagittal NIfTI cut into axial slices did not.
    sagittal = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
    nib.save(nib.Nifti1Image(np.zeros((20, 24, 10), np.int16), sagittal),
             str(tmp_path / "sag.nii"))
    nib.save(nib.Nifti1Image(np.zeros((20, 24, 10), np.int16), np.eye(4)),
             str(tmp_path / "ax.nii"))
    with caplog.at_level("INFO"):
        scan = read_nifti(str(tmp_path / "sag.nii"), "ct")
        read_nifti(str(tmp_path / "ax.nii"), "ct")
    assert scan.values.shape == (24, 20, 10)
    assert "sag.nii: 10 sagittal slices, cut into 24 axial slices of 10x20" in caplog.text
    assert "ax.nii" not in caplog.text  # control: stored axial, nothing to say


def test_an_affine_near_the_float_limit_is_refused_without_numpys_warnings(tmp_path):
    # NIfTI-2 holds float64 affines: nibabel's orientation code overflowed
    # and numpy's warnings printed lines before the one refusal.
    path = str(tmp_path / "huge.nii")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # nibabel warns of the affine it is asked to save
        nib.save(nib.Nifti2Image(np.zeros((16, 16, 2), np.int16), np.diag([1e300, 1, 1, 1])),
                 path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="huge.nii"):
            [source] = find_scan_sources(path)
            read_scan(source, "ct")
    assert [str(w.message) for w in caught] == []
