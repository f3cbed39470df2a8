"""Cases in HU (`vaecyclegan.evaluation.cases`): names, pairing, spacing from
NIfTI affines and DICOM geometry, grid checks, masks written beside the
results; and the per-case scoring and its section (`case_scoring`)."""

import math
import os

import nibabel as nib
import numpy as np
import pytest

from tests.harness import LAS_AFFINE, synthetic_head, write_ct_series, write_image
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.case_scoring import (
    HuOptions,
    format_synthrad_table,
    score_case,
    synthrad_section,
)
from vaecyclegan.evaluation.cases import (
    case_name,
    check_same_grid,
    find_cases,
    pair_cases,
    read_hu,
    read_mask,
    write_mask,
)


def _nifti(path, volume_dhw, affine=LAS_AFFINE, dtype=np.int16):
    """Writes a (D, H, W) volume as NIfTI (x, y, z) = (W, H, D) voxel order."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    data = np.asarray(volume_dhw).transpose(2, 1, 0).astype(dtype)
    nib.save(nib.Nifti1Image(data, np.array(affine, dtype=float)), str(path))
    return str(path)


def _series(folder, names, gap=5.0):
    """Copies of pydicom's CT_small, one series, `gap` mm apart in the order of `names`."""
    import copy

    import pydicom
    from pydicom.data import get_testdata_file

    os.makedirs(str(folder), exist_ok=True)
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uid = pydicom.uid.generate_uid()
    for index, name in enumerate(names):
        dataset = copy.deepcopy(base)
        dataset.SeriesInstanceUID = uid
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        x, y, z = (float(v) for v in base.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, z + gap * index]
        dataset.save_as(os.path.join(str(folder), name), enforce_file_format=True)


def test_case_names_drop_double_extensions():
    assert case_name("/a/1BA001.nii.gz") == "1BA001"
    assert case_name("x/ct.nii") == "ct" and case_name("slice.png") == "slice"
    assert case_name("IM0001") == "IM0001" and case_name("folder/") == "folder"


def test_folders_of_files_and_of_series_pair_by_name(tmp_path, caplog):
    volume = np.zeros((3, 16, 16))
    for side in ("p", "r"):
        _nifti(tmp_path / side / "a.nii.gz", volume)
        _nifti(tmp_path / side / "b.nii", volume)
        _series(tmp_path / side / "series1", ["IM1", "IM2"])
    _nifti(tmp_path / "p" / "only_here.nii.gz", volume)
    pairs = pair_cases(str(tmp_path / "p"), str(tmp_path / "r"))
    assert [name for name, _, _ in pairs] == ["a", "b", "series1"]
    assert [p.kind for _, p, _ in pairs] == ["nifti", "nifti", "dicom"]
    assert len(pairs[2][1].paths) == 2
    # A case left out changes the means: it is named.
    assert "1 prediction(s) and 0 reference(s) have no partner: only_here" in caplog.text


def test_single_cases_pair_whatever_their_names(tmp_path):
    write_image(tmp_path / "p" / "x.png", np.zeros((8, 8), np.uint16))
    write_image(tmp_path / "r" / "y.png", np.zeros((8, 8), np.uint16))
    [(name, prediction, reference)] = pair_cases(str(tmp_path / "p"), str(tmp_path / "r"))
    assert name == "y" and prediction.paths[0].endswith("x.png")


def test_no_common_name_is_one_line(tmp_path):
    for side, names in (("p", ("a", "b")), ("r", ("c", "d"))):
        for name in names:
            write_image(tmp_path / side / f"{name}.png", np.zeros((8, 8), np.uint16))
    with pytest.raises(InputError, match="no case name is also in"):
        pair_cases(str(tmp_path / "p"), str(tmp_path / "r"))


def test_nifti_spacing_follows_the_axial_slices(tmp_path):
    # LAS_AFFINE: 0.9 mm in x and y, 2.5 mm slices; the volume is 12 slices of 30 x 20.
    path = _nifti(tmp_path / "v.nii.gz", np.zeros((12, 30, 20)))
    image = read_hu(find_cases(path)["v"], "v", "reference")
    assert image.values.shape == (12, 30, 20)
    assert image.spacing == pytest.approx((2.5, 0.9, 0.9))
    other = np.array(LAS_AFFINE)
    # Voxel axes i, j, k run inferior (1.2 mm), anterior (0.7 mm), right (3 mm).
    other[:3, :3] = [[0, 0, 3.0], [0, 0.7, 0], [-1.2, 0, 0]]
    turned = read_hu(find_cases(_nifti(tmp_path / "t.nii", np.zeros((10, 12, 14)), other))["t"],
                     "t", "reference")
    assert turned.values.shape == (14, 12, 10)
    assert turned.spacing == pytest.approx((1.2, 0.7, 3.0))


def test_a_dicom_series_gets_pixel_spacing_and_slice_distance(tmp_path):
    _series(tmp_path / "s", ["IM3", "IM1", "IM2"], gap=2.5)
    [source] = find_cases(str(tmp_path / "s")).values()
    image = read_hu(source, "s", "reference")
    assert image.values.shape == (3, 128, 128)
    assert image.spacing == pytest.approx((2.5, 0.661468, 0.661468))


def test_one_slice_is_scored_as_an_image_with_its_pixel_spacing():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    image = read_hu(find_cases(path)["CT_small"], "CT_small", "reference")
    assert image.values.shape == (128, 128) and image.spacing == pytest.approx((0.661468,) * 2)


def test_png_spacing_is_1_mm_unless_given(tmp_path):
    write_image(tmp_path / "a.png", np.full((10, 12), 1024, np.uint16))
    source = find_cases(str(tmp_path / "a.png"))["a"]
    assert read_hu(source, "a", "reference").spacing == (1.0, 1.0)
    image = read_hu(source, "a", "reference", spacing_2d=(0.5, 0.7))
    assert image.spacing == (0.5, 0.7) and np.all(image.values == 0.0)


def test_an_8bit_image_carries_no_hu(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(InputError, match="8-bit image, which carries no HU"):
        read_hu(find_cases(str(tmp_path / "a.png"))["a"], "a", "prediction")


def test_grids_must_match(tmp_path):
    volume = np.zeros((4, 16, 16))
    reference = read_hu(find_cases(_nifti(tmp_path / "r.nii", volume))["r"], "r", "reference")
    finer = np.array(LAS_AFFINE)
    finer[2, 2] = 2.0
    for path, message in ((_nifti(tmp_path / "shape.nii", np.zeros((4, 16, 14))), "16x14"),
                          (_nifti(tmp_path / "finer.nii", volume, finer), "2x0.9x0.9 mm")):
        image = read_hu(find_cases(path)[case_name(path)], "x", "prediction")
        with pytest.raises(InputError, match=message):
            check_same_grid(image, reference)
    check_same_grid(reference, reference)


@pytest.mark.parametrize("affine", [
    LAS_AFFINE,
    # Voxel axes swapped and reversed against LAS: another storage order.
    [[0.0, 0.0, -0.9, 10.0], [0.0, 2.0, 0.0, -5.0], [-0.9, 0.0, 0.0, 30.0], [0, 0, 0, 1.0]],
])
def test_masks_are_read_on_the_reference_grid_and_written_back(tmp_path, affine):
    volume = np.zeros((10, 16, 12))  # every cut at least 8 px a side
    reference = read_hu(find_cases(_nifti(tmp_path / "r.nii", volume, affine))["r"], "r",
                        "reference")
    # Asymmetric: a flip or a swap of axes would show.
    inside = np.zeros((10, 16, 12), np.uint8)
    inside[1, 2:5, 3:11] = 1
    inside[2, 9:12, 4:6] = 1
    mask = read_mask(find_cases(_nifti(tmp_path / "m.nii", inside, affine,
                                       dtype=np.uint8))["m"], reference)
    assert mask.dtype == bool and mask.sum() == 30
    name = write_mask(str(tmp_path / "out"), reference, mask)
    assert name == "mask_r.nii.gz"
    written = nib.load(str(tmp_path / "out" / name))
    # Written on the reference file's grid (its voxel order and affine; it
    # was in slice order, another array shape, which fslmaths -mas and
    # numpy users could not lay on the volume): read back as a mask, it is
    # the same array.
    assert np.allclose(written.affine, nib.load(str(tmp_path / "r.nii")).affine)
    assert written.shape == nib.load(str(tmp_path / "r.nii")).shape
    assert np.array_equal(np.asarray(written.dataobj) > 0,
                          np.asarray(nib.load(str(tmp_path / "m.nii")).dataobj) > 0)
    again = read_mask(find_cases(str(tmp_path / "out" / name))["mask_r"], reference)
    assert np.array_equal(again, mask)
    empty = _nifti(tmp_path / "empty.nii", np.zeros((10, 16, 12)), affine, dtype=np.uint8)
    with pytest.raises(InputError, match="has no voxel"):
        read_mask(find_cases(empty)["empty"], reference)


def _world_point(affine, index):
    return (np.asarray(affine, float) @ np.append(np.asarray(index, float), 1.0))[:3]


def test_a_niftis_slices_are_placed_where_its_affine_puts_their_voxels(tmp_path):
    other = np.array(LAS_AFFINE)
    other[:3, :3] = [[0, 0, 3.0], [0, 0.7, 0], [-1.2, 0, 0]]
    volume = np.zeros((10, 12, 14))
    volume[3, 5, 7] = 1.0  # file voxel (x, y, z) = (7, 5, 3)
    image = read_hu(find_cases(_nifti(tmp_path / "t.nii", volume, other))["t"], "t",
                    "reference")
    index = np.argwhere(image.values == 1.0)[0]
    assert np.allclose(_world_point(image.world, index), _world_point(other, (7, 5, 3)))


def test_a_dicom_series_is_placed_by_its_positions_in_ras(tmp_path):
    _series(tmp_path / "s", ["IM3", "IM1", "IM2"], gap=2.5)
    [source] = find_cases(str(tmp_path / "s")).values()
    image = read_hu(source, "s", "reference")
    first = np.array([-158.135803, -179.035797, -75.699997])  # CT_small's position (LPS)
    # Slice 2, row 3, column 4: 2.5 mm along z, 3 rows along y, 4 columns along x.
    lps = first + [4 * 0.661468, 3 * 0.661468, 2 * 2.5]
    assert np.allclose(_world_point(image.world, (2, 3, 4)), lps * [-1, -1, 1])
    # The same voxels as NIfTI at that placement: the same grid; flipped
    # left-right about its first voxel: cut by its header, the same axes
    # from the far corner; turned 2 degrees: refused as well.
    on_grid = image.world[:, [2, 1, 0, 3]]
    same = _nifti(tmp_path / "n" / "same.nii", np.zeros((3, 128, 128)), on_grid)
    check_same_grid(read_hu(find_cases(same)["same"], "same", "prediction"), image)
    flipped = on_grid @ np.diag([-1.0, 1.0, 1.0, 1.0])
    path = _nifti(tmp_path / "n" / "flipped.nii", np.zeros((3, 128, 128)), flipped)
    with pytest.raises(InputError, match="starts 84 mm away from the reference"):
        check_same_grid(read_hu(find_cases(path)["flipped"], "f", "prediction"), image)
    angle = np.radians(2.0)
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    turned = turn @ on_grid
    turned[:3, 3] = on_grid[:3, 3]
    path = _nifti(tmp_path / "n" / "turned.nii", np.zeros((3, 128, 128)), turned)
    with pytest.raises(InputError, match=r"voxel axes \(SPL\) turned 2 degrees against"):
        check_same_grid(read_hu(find_cases(path)["turned"], "t", "prediction"), image)


def test_a_volume_without_qform_or_sform_is_not_scored_against_a_placed_one(tmp_path):
    # The reference's own voxels with both codes 0 scored MAE 25 HU,
    # mirrored by nibabel's guess of the orientation, without a word.
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 1000, (3, 12, 10))
    reference_path = _nifti(tmp_path / "ref" / "c.nii", volume, np.diag([0.9, 0.9, 2.5, 1]))
    image = nib.load(reference_path)
    image.header.set_qform(None, code=0)
    image.header.set_sform(None, code=0)
    unplaced_path = str(tmp_path / "pred" / "c.nii")
    os.makedirs(os.path.dirname(unplaced_path))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), None, image.header), unplaced_path)
    assert nib.load(unplaced_path).header["sform_code"] == 0
    reference = read_hu(find_cases(reference_path)["c"], "c", "reference")
    unplaced = read_hu(find_cases(unplaced_path)["c"], "c", "prediction")
    with pytest.raises(InputError, match="has no position in the patient .* has: their voxels "
                       "cannot be matched in orientation"):
        check_same_grid(unplaced, reference)
    check_same_grid(unplaced, unplaced)  # control: two unplaced ones are read alike


FEET_FIRST = {"orientation": [-1, 0, 0, 0, 1, 0], "pixel_spacing": [0.5, 0.8],
              "positions": [[10.0, 20.0, 30.0 - 2.0 * k] for k in range(3)]}


def test_a_feet_first_series_is_cut_head_up_and_placed_as_its_headers_say(tmp_path):
    # Stored slice 2 (the lowest: 26 mm), row 3, column 4 holds a marker;
    # a column index moves 0.8 mm along -x (LPS), a row index 0.5 mm along +y.
    (tmp_path / "s").mkdir()
    write_ct_series(tmp_path / "s", ["IM3", "IM2", "IM1"], **FEET_FIRST, marker=(2, 3, 4, 30000))
    [source] = find_cases(str(tmp_path / "s")).values()
    image = read_hu(source, "s", "reference")
    assert nib.aff2axcodes(image.world) == ("S", "P", "L")
    assert image.spacing == pytest.approx((2.0, 0.5, 0.8))
    marker = np.argwhere(image.values == image.values.max())[0]
    assert list(marker) == [0, 3, 127 - 4]  # lowest slice first; columns running left
    lps = np.array([10.0 - 4 * 0.8, 20.0 + 3 * 0.5, 26.0])
    assert np.allclose(_world_point(image.world, marker), lps * [-1, -1, 1])


def test_an_origin_0_mask_of_a_reference_cut_from_another_order_is_refused(tmp_path):
    # Masks written before placements were kept are in the stored order: of
    # a feet-first series (cut reversed) one was read reversed, silently.
    from vaecyclegan.evaluation.cases import slice_affine

    (tmp_path / "s").mkdir()
    write_ct_series(tmp_path / "s", ["IM3", "IM2", "IM1"], **FEET_FIRST)
    [source] = find_cases(str(tmp_path / "s")).values()
    reference = read_hu(source, "s", "reference")
    assert reference.turned
    old = str(tmp_path / "old.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(reference.values.shape, np.uint8),
                             slice_affine(reference.spacing)), old)
    with pytest.raises(InputError, match="mm away from the reference"):
        read_mask(find_cases(old)["old"], reference)


def _placed(values, world):
    from vaecyclegan.evaluation.cases import HuImage

    spacing = tuple(np.linalg.norm(np.asarray(world)[:3, :3], axis=0))
    return HuImage("x", "x.nii", np.asarray(values, np.float32), spacing, np.asarray(world))


def test_the_same_voxels_stored_in_another_axis_order_are_put_in_the_references():
    """A MetaImage keeps its stored order; another file of its voxels is
    cut into axial slices: the same grid, in another order."""
    from vaecyclegan.evaluation.cases import in_reference_order

    values = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    world = np.array([[0, 0, -0.8, 10.0], [0, -0.5, 0, -20.0], [-2.0, 0, 0, 30.0], [0, 0, 0, 1]])
    reference = _placed(values, world)
    # Stored with the slice axis last and the rows reversed.
    stored = values[:, ::-1, :].transpose(1, 2, 0)
    index = np.zeros((4, 4))
    index[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, 1, 0]]  # stored index -> reference index
    index[1, 3], index[3, 3] = 3, 1
    other = _placed(stored, world @ index)
    ordered = in_reference_order(other, reference)
    check_same_grid(ordered, reference)
    assert np.array_equal(ordered.values, values)
    assert ordered.spacing == pytest.approx(reference.spacing)
    # Turned by something that is not a swap or reversal: left to the check.
    stretched = _placed(stored, world @ index @ np.diag([1, 1, 1.5, 1]))
    assert in_reference_order(stretched, reference) is stretched


def test_masks_written_for_a_reference_stored_in_another_order_read_back(tmp_path):
    from vaecyclegan.evaluation.cases import slice_affine

    world = np.array([[0, 0, -0.8, 10.0], [0, -0.5, 0, -20.0], [-2.0, 0, 0, 30.0], [0, 0, 0, 1]])
    reference = _placed(np.zeros((3, 16, 12)), world)
    assert nib.aff2axcodes(world) == ("I", "P", "L")  # not the axial cut's order
    mask = np.zeros((3, 16, 12), bool)
    mask[0, 2:9, 1:4] = True
    name = write_mask(str(tmp_path / "out"), reference, mask)
    again = read_mask(find_cases(str(tmp_path / "out" / name))["mask_x"], reference)
    assert np.array_equal(again, mask)
    # A mask placed at the origin, as earlier versions wrote them, is read
    # on shape and spacing.
    old = str(tmp_path / "old" / "old.nii.gz")
    os.makedirs(os.path.dirname(old))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), slice_affine(reference.spacing)), old)
    assert np.array_equal(read_mask(find_cases(old)["old"], reference), mask)


def test_a_nifti_without_sform_or_qform_is_placed_nowhere(tmp_path):
    path = _nifti(tmp_path / "p.nii", np.zeros((4, 16, 16)))
    image = nib.load(path)
    image.header.set_sform(None, code=0)
    image.header.set_qform(None, code=0)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), None, image.header), path)
    assert nib.load(path).header["sform_code"] == 0 == nib.load(path).header["qform_code"]
    assert read_hu(find_cases(path)["p"], "p", "prediction").world is None


def test_a_metaimage_is_placed_where_the_nifti_it_came_from_is(tmp_path):
    # SimpleITK's LPS and (z, y, x) arrays, turned to RAS and slice order.
    sitk = pytest.importorskip("SimpleITK")
    from vaecyclegan.evaluation.synthrad_layout import read_volume

    volume = np.zeros((4, 16, 16))
    volume[1, 2, 3] = 1000.0
    nifti = _nifti(tmp_path / "p" / "ct.nii.gz", volume)
    sitk.WriteImage(sitk.ReadImage(nifti), str(tmp_path / "p" / "ct.mha"))
    points = []
    for name in ("ct.nii.gz", "ct.mha"):
        image = read_volume(str(tmp_path / "p" / name), "ct")[1]
        points.append(_world_point(image.world, np.argwhere(image.values == 1000.0)[0]))
    assert np.allclose(points[0], points[1], atol=1e-4)


def test_a_metaimage_sct_is_clipped_to_int16(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.synthrad_layout import read_volume, write_sct

    nifti = _nifti(tmp_path / "p" / "mr.nii.gz", np.zeros((4, 16, 16)))
    sitk.WriteImage(sitk.ReadImage(nifti), str(tmp_path / "p" / "mr.mha"))
    scan = read_volume(str(tmp_path / "p" / "mr.mha"), "mri")[0]
    path = str(tmp_path / "sct.mha")
    write_sct(scan, np.ones(scan.values.shape, np.float32),
              IntensityConfig(ct_window_hu=(25000.0, 35000.0)), path)
    assert sitk.GetArrayFromImage(sitk.ReadImage(path)).min() == 32767


def test_a_prediction_written_with_another_header_is_not_scored_flipped(tmp_path):
    """An sCT saved with an identity affine where the CT's is LAS: shape and
    spacing match, but cut by its own header it is the CT flipped."""
    volume = np.arange(4 * 16 * 16, dtype=float).reshape(4, 16, 16)
    reference = read_hu(find_cases(_nifti(tmp_path / "r.nii", volume))["r"], "r", "reference")
    identity = np.diag([0.9, 0.9, 2.5, 1.0])
    identity[:3, 3] = np.array(LAS_AFFINE)[:3, 3]
    path = _nifti(tmp_path / "p.nii", volume, identity)
    with pytest.raises(InputError, match="p.nii: starts 13.5 mm away from the reference"):
        check_same_grid(read_hu(find_cases(path)["p"], "p", "prediction"), reference)
    shifted = np.array(LAS_AFFINE)
    shifted[0, 3] += 0.9  # one voxel
    path = _nifti(tmp_path / "s.nii", volume, shifted)
    with pytest.raises(InputError, match="starts 0.9 mm away from the reference"):
        check_same_grid(read_hu(find_cases(path)["s"], "s", "prediction"), reference)
    rounded = np.array(LAS_AFFINE)
    rounded[:3, 3] += 1e-4  # what a header's decimals move
    path = _nifti(tmp_path / "q.nii", volume, rounded)
    check_same_grid(read_hu(find_cases(path)["q"], "q", "prediction"), reference)


def test_an_image_file_mask_of_a_volume_is_refused_in_one_line(tmp_path):
    reference = read_hu(find_cases(_nifti(tmp_path / "r.nii", np.zeros((4, 16, 16))))["r"],
                        "r", "reference")
    write_image(tmp_path / "m.png", np.full((16, 16), 255, np.uint8))
    with pytest.raises(InputError, match="has 16x16 voxels, the reference .* 4x16x16"):
        read_mask(find_cases(str(tmp_path / "m.png"))["m"], reference)


def _head(depth=8, size=48):
    return synthetic_head(depth, size)


def test_a_soft_tissue_offset_shows_in_soft_tissue_only():
    reference = _head()
    prediction = reference + 50.0 * (np.abs(reference) <= 200)
    result = score_case("head", prediction, reference, (2.0, 1.0, 1.0), HuOptions(wepl=False))
    assert result.metrics["mae_soft"] == pytest.approx(50.0)
    assert result.metrics["me_soft"] == pytest.approx(50.0)
    assert result.metrics["mae_bone"] == 0.0 and result.metrics["dice_bone"] == 1.0
    assert math.isnan(result.metrics["mae_air"])  # the body mask holds no air here
    assert "wepl_mean_abs_mm" not in result.metrics
    assert result.figure.reference.shape == (48, 48) and result.figure.slice_index == 3


def test_wepl_is_on_below_the_size_limit_and_sees_the_offset():
    reference = _head()
    prediction = reference + 100.0 * (np.abs(reference) <= 200)
    small = HuOptions(wepl_max_voxels=reference.size, angles=(0.0, 90.0))
    result = score_case("head", prediction, reference, (2.0, 1.0, 1.0), small)
    assert result.metrics["wepl_mean_mm"] > 0.5 and result.figure.wepl is not None
    assert [a["angle_deg"] for a in result.details["wepl"]["per_angle"]] == [0.0, 90.0]
    over = HuOptions(wepl_max_voxels=reference.size - 1)
    assert "wepl_mean_mm" not in score_case("head", prediction, reference, (2.0, 1.0, 1.0),
                                            over).metrics


def test_cases_the_automatic_wepl_limit_left_out_are_named_in_a_warning(caplog):
    # A whole head passed the limit and its report just had no WEPL column.
    reference = _head()
    over = HuOptions(wepl_max_voxels=reference.size - 1)
    results = [score_case(name, reference + 10.0, reference, (2.0, 1.0, 1.0), over)
               for name in ("head1", "head2")]
    with caplog.at_level("WARNING", logger="vaecyclegan"):
        synthrad_section(results, over, "given")
    assert "WEPL left out of 2 case(s) above 18,431 voxels (head1, head2)" in caplog.text
    assert "--wepl" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vaecyclegan"):  # control: asked off, not said
        synthrad_section([score_case("head", reference, reference, (2.0, 1.0, 1.0),
                                     HuOptions(wepl=False))], HuOptions(wepl=False), "given")
    assert "WEPL" not in caplog.text


def test_the_section_averages_finite_values_and_prints():
    reference = _head()
    options = HuOptions(wepl=False)
    results = [score_case("same", reference, reference, (2.0, 1.0, 1.0), options),
               score_case("off", reference + 10.0, reference, (2.0, 1.0, 1.0), options)]
    section = synthrad_section(results, options, "given")
    assert section["n"] == 2 and set(section["cases"]) == {"same", "off"}
    assert section["mean"]["mae"] == pytest.approx(5.0)
    # PSNR of identical images is infinite: the mean is the other case's.
    assert section["mean"]["psnr_2023"] == pytest.approx(section["cases"]["off"]["psnr_2023"])
    assert section["settings"]["mask"] == "given"
    table = format_synthrad_table({"mri2ct": {"synthrad": section}})
    assert "same" in table and "mri2ct mean (n=2)" in table


def test_a_two_dimensional_mask_of_a_placed_two_dimensional_case_is_read_back(tmp_path):
    # A PNG mask has no position; checked as a volume, the 2-D case's own
    # mask_<case>.png was refused as "no position in the patient".
    reference_path = _nifti(tmp_path / "ref" / "c.nii", np.full((1, 20, 16), 40),
                            np.diag([0.9, 0.9, 2.5, 1]))
    reference = read_hu(find_cases(reference_path)["c"], "c", "reference")
    mask = np.zeros((20, 16), np.uint8)
    mask[4:12, 3:9] = 255
    write_image(tmp_path / "mask" / "c.png", mask)
    inside = read_mask(find_cases(str(tmp_path / "mask" / "c.png"))["c"], reference)
    assert inside.sum() == 8 * 6
