import math
import warnings

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from scipy import ndimage

from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.dose import (
    compare_dose_files,
    compare_doses,
    default_prescription,
    dose_mae,
    gamma_pass_rates,
    grid_mismatch,
    read_dose,
)

# pydicom's shipped RTDOSE: 15 frames of 10 x 10, 10 mm pixels, 5 mm frames.
RTDOSE = get_testdata_file("rtdose.dcm")


def _plateau_dose(shape=(16, 24, 24)):
    """A flat-topped dose (60 Gy) with a smooth fall-off, 2 mm voxels: scaled
    by 3 %, the plateau's inner points fail 2 %/2 mm (gamma 1.5), for every
    evaluated dose within 2 mm of them is 3 % high."""
    box = np.zeros(shape)
    box[2:-2, 2:-2, 2:-2] = 60.0
    dose = ndimage.gaussian_filter(box, 1.0)
    dose[5:-5, 5:-5, 5:-5] = 60.0
    axes = tuple(np.arange(n) * 2.0 for n in shape)
    return dose, axes


def _rtdose(tmp_path, name="dose.dcm", **changes):
    ds = pydicom.dcmread(RTDOSE)
    ds.DoseUnits = "GY"
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = tmp_path / name
    ds.save_as(path)
    return path


def test_gamma_of_a_dose_against_itself_is_100_percent():
    dose, axes = _plateau_dose()
    rates = gamma_pass_rates(dose, dose, axes)
    assert set(rates) == {"2%/2mm", "1%/1mm"}
    for rate in rates.values():
        assert rate["pass_rate_percent"] == 100.0
        # Every point at or above 10 % of the maximum is computed.
        assert rate["n_points"] == int(np.sum(dose >= 6.0))


def test_gamma_of_a_dose_scaled_by_3_percent_fails_at_2_percent_2_mm():
    dose, axes = _plateau_dose()
    rates = gamma_pass_rates(dose * 1.03, dose, axes, criteria=[(2, 2)])
    # Plateau points whose neighbours within a voxel (2 mm and more) are all plateau.
    inner = int(ndimage.binary_erosion(dose == 60.0, np.ones((3, 3, 3))).sum())
    computed = rates["2%/2mm"]["n_points"]
    assert inner > 0
    assert rates["2%/2mm"]["pass_rate_percent"] <= 100.0 * (1 - inner / computed) + 1e-9
    # 1 % scaling passes 2 %/2 mm everywhere (gamma at most 0.5).
    assert gamma_pass_rates(dose * 1.01, dose, axes, criteria=[(2, 2)])[
        "2%/2mm"]["pass_rate_percent"] == 100.0


def test_gamma_random_subset_is_seeded_and_leaves_the_global_state():
    dose, axes = _plateau_dose()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = gamma_pass_rates(dose * 1.025, dose, axes, random_subset=200)
    assert np.array_equal(np.random.get_state()[1], before)
    second = gamma_pass_rates(dose * 1.025, dose, axes, random_subset=200)
    assert first == second
    assert first["2%/2mm"]["n_points"] == 200


def test_gamma_refuses_bad_arrays():
    dose, axes = _plateau_dose()
    with pytest.raises(ValueError, match="different geometry"):
        gamma_pass_rates(dose[:-1], dose, axes)
    with pytest.raises(ValueError, match="positive"):
        gamma_pass_rates(dose * 0, dose * 0, axes)
    with pytest.raises(ValueError, match="increase"):
        gamma_pass_rates(dose, dose, (axes[0][::-1], axes[1], axes[2]))
    with pytest.raises(ValueError, match="finite"):
        gamma_pass_rates(np.where(dose > 50, np.nan, dose), dose, axes)


def test_dose_mae_above_90_percent_of_a_known_pair():
    reference = np.full((4, 10, 10), 1.0)
    reference[1:3, 2:8, 2:8] = 2.0  # the target, 72 voxels
    evaluated = reference.copy()
    evaluated[1:3, 2:8, 2:8] += 0.1  # 0.1 Gy too high in the target
    evaluated[0] += 1.0  # low-dose errors do not count, even above the threshold
    result = dose_mae(evaluated, reference, prescription=2.0)
    assert result["n_voxels"] == 72
    assert result["threshold_gy"] == pytest.approx(1.8)
    assert result["mae_gy"] == pytest.approx(0.1)
    assert result["mae_relative"] == pytest.approx(0.05)
    assert result["prescription_from"] == "given"
    # Half of the target 0.2 Gy too low, half right: mean 0.1 Gy, same answer.
    evaluated = reference.copy()
    evaluated[1, 2:8, 2:8] -= 0.2
    assert dose_mae(evaluated, reference, prescription=2.0)["mae_gy"] == pytest.approx(0.1)
    # A prescription of 1 Gy takes in every voxel (threshold 0.9 Gy).
    assert dose_mae(evaluated, reference, prescription=1.0)["n_voxels"] == reference.size


def test_default_prescription_is_the_98th_percentile_above_10_percent():
    reference = np.zeros((10, 10, 200))
    reference[:, :, :97] = 2.0
    reference[:, :, 97:100] = 2.1  # 3 % of the dosed voxels, 1.5 % of the grid
    assert default_prescription(reference) == pytest.approx(2.1)
    result = dose_mae(reference, reference)
    assert result["prescription_gy"] == pytest.approx(2.1)
    assert result["prescription_from"] == "reference 98th percentile"
    assert result["mae_gy"] == 0.0
    with pytest.raises(ValueError, match="positive"):
        dose_mae(reference, reference, prescription=-1.0)


def test_reads_an_rtdose(tmp_path):
    path = _rtdose(tmp_path)
    dose, (z, y, x) = read_dose(path)
    source = pydicom.dcmread(RTDOSE)
    assert dose.dtype == np.float32 and dose.shape == (15, 10, 10)
    assert np.allclose(dose, source.pixel_array * 1e-6, rtol=1e-6)
    assert z.tolist() == pytest.approx([-761.87 + 5.0 * k for k in range(15)])
    assert y.tolist() == pytest.approx([199.43125 + 10.0 * k for k in range(10)])
    assert x.tolist() == pytest.approx([189.43125 + 10.0 * k for k in range(10)])


def test_rtdose_with_absolute_and_decreasing_frame_offsets(tmp_path):
    offsets = [-761.87 - 5.0 * k for k in range(15)]  # absolute z, decreasing
    path = _rtdose(tmp_path, GridFrameOffsetVector=offsets)
    dose, (z, _, _) = read_dose(path)
    assert z.tolist() == pytest.approx(sorted(offsets))
    source = pydicom.dcmread(RTDOSE).pixel_array * 1e-6
    assert np.allclose(dose, source[::-1], rtol=1e-6)  # flipped to increasing z


@pytest.mark.parametrize("changes, words", [
    ({"DoseGridScaling": None}, "without DoseGridScaling"),
    ({"DoseGridScaling": ""}, "without DoseGridScaling"),
    ({"DoseGridScaling": 0.0}, "DoseGridScaling 0 is not a positive number"),
    ({"DoseUnits": "RELATIVE"}, "dose units RELATIVE"),
    ({"Modality": "CT"}, "not an RT dose"),
    ({"GridFrameOffsetVector": None}, "without GridFrameOffsetVector"),
    ({"GridFrameOffsetVector": [0.0, 5.0]}, "2 values for 15 frames"),
    ({"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}, "axial"),
])
def test_a_bad_rtdose_is_refused_with_one_line(tmp_path, changes, words):
    path = _rtdose(tmp_path, **changes)
    with pytest.raises(InputError) as caught:
        read_dose(path)
    message = str(caught.value)
    assert "\n" not in message and words in message and str(path) in message


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="no such dose file"):
        read_dose(tmp_path / "none.dcm")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(InputError, match="junk.dcm"):
        read_dose(junk)


def test_a_deflated_rtdose_that_does_not_inflate_is_one_line(tmp_path):
    # zlib's error had escaped from pydicom's reading as a traceback.
    dataset = pydicom.dcmread(_rtdose(tmp_path))
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's test file holds an invalid UID
        dataset.save_as(path, enforce_file_format=True)
    dose, _ = read_dose(path)  # control: deflated is read
    assert dose.shape == (15, 10, 10)
    with open(path, "rb") as f:
        pydicom.filereader.read_preamble(f, False)
        pydicom.filereader._read_file_meta_info(f)
        meta = f.tell()
    path.write_bytes(path.read_bytes()[:meta] + b"\xff" * 200)
    with pytest.raises(InputError, match="not a readable DICOM file"):
        read_dose(path)


def _nifti_of_the_rtdose(tmp_path, dose, z, y, x):
    """The RTDOSE's grid as a NIfTI: (x, y, z) array order, RAS affine."""
    affine = np.diag([-10.0, -10.0, 5.0, 1.0])  # LPS -> RAS: x and y negated
    affine[:3, 3] = [-x[0], -y[0], z[0]]
    path = tmp_path / "dose.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.transpose(dose, (2, 1, 0)), affine), path)
    return path


def test_nifti_and_rtdose_of_one_grid_agree(tmp_path):
    rtdose = _rtdose(tmp_path)
    dose, (z, y, x) = read_dose(rtdose)
    nifti = _nifti_of_the_rtdose(tmp_path, dose, z, y, x)
    dose_n, (zn, yn, xn) = read_dose(nifti)
    assert np.array_equal(dose_n, dose)
    assert grid_mismatch((zn, yn, xn), (z, y, x)) == ""
    result = compare_dose_files(nifti, rtdose, prescription=1.0)
    assert result["gamma"]["2%/2mm"]["pass_rate_percent"] == 100.0
    assert result["mae"]["mae_gy"] == 0.0


def test_nifti_4d_and_rotated_are_refused(tmp_path):
    path = tmp_path / "four.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)), path)
    with pytest.raises(InputError, match="3-D"):
        read_dose(path)
    rotation = np.eye(4)
    rotation[:2, :2] = [[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]]
    path = tmp_path / "rotated.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4), np.float32), rotation), path)
    with pytest.raises(InputError, match="rotates"):
        read_dose(path)


def test_grids_of_different_geometry_are_refused(tmp_path):
    reference = _rtdose(tmp_path, name="ct.dcm")
    moved = _rtdose(tmp_path, name="sct.dcm",
                    ImagePositionPatient=[190.43125, 199.43125, -761.87])
    with pytest.raises(InputError) as caught:
        compare_dose_files(moved, reference)
    message = str(caught.value)
    assert "\n" not in message and "sct.dcm" in message and "x axes differ by up to 1 mm" in message
    dose, axes = read_dose(reference)
    with pytest.raises(ValueError, match="different geometry"):
        compare_doses(dose[:, :-1], dose, axes)
