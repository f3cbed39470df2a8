"""`vaecyclegan-eval --predictions/--references` on cases in HU: volumes,
DICOM series and slices, 16-bit PNGs; the 8-bit mode with `--inputs` as it
was; WEPL and dose options; each bad input one line and exit 2. No trained
model is needed here (`tests/integration/test_synthrad.py` has those)."""

import csv
import json
import math
import os
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path
from pydicom.data import get_testdata_file

from tests.harness import assert_one_line_error, synthetic_head, write_image
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.evaluate import main
from vaecyclegan.evaluation.body_mask import body_mask

AFFINE = np.array([[-0.8, 0, 0, 40.0], [0, 0.8, 0, -30.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])
CT_SMALL = get_testdata_file("CT_small.dcm")
ANATOMICAL = os.path.join(str(data_path), "anatomical.nii")


def _eval(*args):
    return run_cli(main, [str(a) for a in args])


def _no_constant(name):
    raise AssertionError(f"metrics.json holds {name}, which is not JSON")


def _metrics(out, direction="mri2ct"):
    with open(os.path.join(str(out), "metrics.json"), encoding="utf-8") as f:
        return json.load(f, parse_constant=_no_constant)[direction]


def _nifti(path, volume_dhw, affine=AFFINE, dtype=np.int16):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(volume_dhw).transpose(2, 1, 0).astype(dtype), affine),
             str(path))
    return str(path)


def _head(depth=8, size=40):
    return synthetic_head(depth, size, (0.42, 0.36), 0.7)


def _offset_cases(tmp_path):
    """case1: +50 HU in soft tissue; case2: identical. Returns the reference."""
    reference = _head()
    soft = (reference >= -200) & (reference <= 200)
    for name, prediction in (("case1", reference + 50.0 * soft), ("case2", reference)):
        _nifti(tmp_path / "ref" / f"{name}.nii.gz", reference)
        _nifti(tmp_path / "pred" / f"{name}.nii.gz", prediction)
    return reference


def test_a_soft_tissue_offset_gives_the_expected_numbers_per_tissue(tmp_path):
    reference = _offset_cases(tmp_path)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", out, "--no-wepl") == 0
    metrics = _metrics(out)
    assert metrics["n"] == 2 and "model" not in metrics  # no baseline without inputs
    section = metrics["synthrad"]
    case1, case2 = section["cases"]["case1"], section["cases"]["case2"]
    mask = body_mask(reference, (2.0, 0.8, 0.8))
    soft = mask & (reference <= 200)
    assert case1["mae_soft"] == pytest.approx(50.0) and case1["me_soft"] == pytest.approx(50.0)
    assert case1["mae_bone"] == 0.0 and case1["me_bone"] == 0.0 and case1["mae_air"] is None
    assert case1["mae"] == pytest.approx(50.0 * soft.sum() / mask.sum())
    assert case1["dice_bone"] == 1.0 and case1["hd95_bone_mm"] == 0.0
    assert case1["spacing_mm"] == pytest.approx([2.0, 0.8, 0.8])
    assert case2["mae"] == 0.0 and case2["psnr_2023"] is None  # identical: inf -> null
    assert section["mean"]["mae_soft"] == pytest.approx(25.0)
    assert section["mean"]["psnr_2023"] == pytest.approx(case1["psnr_2023"])
    assert section["settings"]["wepl"] == "off"
    # The signed error per tissue is on the page, not only in metrics.json
    # (a bone drawn too dark in every case shows there, not in the MAE).
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "ME per tissue, HU" in page and "50.0" in page
    # Written on the reference file's grid: its voxel order and affine.
    written = nib.load(str(out / "mask_case1.nii.gz"))
    assert np.array_equal(np.asarray(written.dataobj) > 0, mask.transpose(2, 1, 0))
    assert np.allclose(written.affine, AFFINE)
    with open(out / "metrics_per_case.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["case1", "case2"]
    assert float(rows[0]["me_soft"]) == pytest.approx(50.0)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "SynthRAD 2023" in page and "SynthRAD 2025" in page and "synthrad_mri2ct.png" in page
    assert not (out / "metrics_per_image.csv").exists()


def test_each_case_of_a_folder_is_said_as_it_is_scored(tmp_path, caplog):
    # A folder of heads is scored for minutes: it said nothing until its table.
    _offset_cases(tmp_path)
    with caplog.at_level("INFO", logger="vaecyclegan"):
        assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                     "--out", tmp_path / "out", "--no-wepl") == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("case ")]
    assert [line.split(",")[0] for line in lines] == ["case 1/2: case1", "case 2/2: case2"]
    assert lines[0].endswith("voxels, 2 x 0.8 x 0.8 mm"), lines[0]


def test_wepl_with_a_custom_curve_angles_and_a_target(tmp_path):
    _offset_cases(tmp_path)
    curve = tmp_path / "curve.csv"
    curve.write_text("hu,rsp\n-1000,0.001\n0,1.0\n3000,2.5\n")
    target = np.zeros((8, 40, 40), np.uint8)
    target[:, 15:25, 15:25] = 1
    _nifti(tmp_path / "target.nii.gz", target, dtype=np.uint8)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred" / "case1.nii.gz",
                 "--references", tmp_path / "ref" / "case1.nii.gz", "--out", out, "--wepl",
                 "--hu-to-rsp", curve, "--beam-angles", "0", "90",
                 "--target", tmp_path / "target.nii.gz") == 0
    section = _metrics(out)["synthrad"]
    wepl = section["cases"]["case1"]["wepl"]
    assert [a["angle_deg"] for a in wepl["per_angle"]] == [0.0, 90.0] and wepl["curve"] == "custom"
    # +50 HU over the soft tissue (RSP +0.025 with this curve): the sCT stops earlier.
    assert section["cases"]["case1"]["wepl_mean_mm"] > 0
    # The target's voxels, both angles, less those under 10 mm of water deep.
    assert 0 < wepl["pooled"]["n"] <= 2 * 100 * 8 and wepl["floor_mm"] == 10.0
    assert section["settings"]["wepl"]["hu_to_rsp"] == str(curve)


def test_ct_small_against_itself(tmp_path):
    out = tmp_path / "out"
    assert _eval("--predictions", CT_SMALL, "--references", CT_SMALL, "--out", out) == 0
    case = _metrics(out)["synthrad"]["cases"]["CT_small"]
    assert case["mae"] == 0.0 and case["me"] == 0.0 and case["dice_bone"] == 1.0
    assert case["hd95_bone_mm"] == 0.0 and case["ssim_2023"] == pytest.approx(1.0)
    assert case["shape"] == [128, 128] and case["spacing_mm"] == pytest.approx([0.661468] * 2)
    assert case["spacing_from"] == "the file"
    assert case["wepl_mean_abs_mm"] == 0.0  # a 2-D case: WEPL in its plane
    assert (out / "mask_CT_small.png").is_file()


def test_a_dicom_series_and_nibabels_volume_against_themselves(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    base = pydicom.dcmread(CT_SMALL)
    for index in range(3):
        dataset = pydicom.dcmread(CT_SMALL)
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        x, y, z = (float(v) for v in base.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, z + 3.0 * index]
        dataset.save_as(series / f"IM{index}", enforce_file_format=True)
    for path, shape, spacing in ((series, [3, 128, 128], [3.0, 0.661468, 0.661468]),
                                 (ANATOMICAL, [25, 41, 33], [2.0, 2.0, 2.0])):
        out = tmp_path / f"out_{os.path.basename(str(path))}"
        assert _eval("--predictions", path, "--references", path, "--out", out,
                     "--no-wepl") == 0
        [case] = _metrics(out)["synthrad"]["cases"].values()
        assert case["mae"] == 0.0 and case["dice_bone"] == 1.0
        assert case["shape"] == shape and case["spacing_mm"] == pytest.approx(spacing)


def test_16bit_pngs_without_inputs_and_a_pixel_spacing(tmp_path):
    reference = np.clip(_head(1, 40)[0] + 1024, 0, None).astype(np.uint16)
    write_image(tmp_path / "ref" / "a.png", reference)
    write_image(tmp_path / "pred" / "a.png", reference + 10)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", out, "--spacing", "0.2") == 0
    case = _metrics(out)["synthrad"]["cases"]["a"]
    assert case["mae"] == pytest.approx(10.0) and case["spacing_mm"] == [0.2, 0.2]
    assert case["spacing_from"] == "--spacing"
    assert (out / "mask_a.png").is_file()
    # 8 mm across: no voxel is 10 mm of water deep, so WEPL's statistics are
    # undefined, and written as null (the file is strict JSON).
    assert case["wepl"]["pooled"]["n"] == 0 and case["wepl_mean_abs_mm"] is None
    assert case["wepl"]["per_angle"][0]["mean_abs_mm"] is None


def test_a_2d_case_records_that_its_1mm_pixels_were_assumed(tmp_path):
    # Its spacing_mm read [1.0, 1.0] whether a user gave it or not: the mm,
    # HD95 and WEPL of a 2-D case scale with a pixel size no PNG holds.
    reference = np.clip(_head(1, 40)[0] + 1024, 0, None).astype(np.uint16)
    write_image(tmp_path / "ref" / "a.png", reference)
    write_image(tmp_path / "pred" / "a.png", reference + 10)
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out", "--no-wepl") == 0
    case = _metrics(tmp_path / "out")["synthrad"]["cases"]["a"]
    assert case["spacing_mm"] == [1.0, 1.0]
    assert case["spacing_from"] == "assumed: 1 mm, the file holds no pixel spacing"


def test_8bit_images_with_inputs_score_as_before(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("pred", "ref", "in"):
        write_image(tmp_path / folder / "a.png", rng.integers(0, 256, (24, 24), dtype=np.uint8))
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", out) == 0
    # "tissue": how the per-tissue MAE and bone Dice of CT were scored.
    assert set(_metrics(out)) == {"n", "model", "identity", "histogram_matching", "std",
                                  "tissue"}
    assert (out / "metrics_per_image.csv").is_file() and not (out / "metrics_per_case.csv").exists()


def test_8bit_images_without_a_partner_are_named(tmp_path, capsys):
    # A reference without its prediction was left out of the means unsaid.
    rng = np.random.default_rng(0)
    for folder, names in (("pred", ("a", "b", "extra")), ("ref", ("a", "b", "c")),
                          ("in", ("a", "b", "c", "extra"))):
        for name in names:
            write_image(tmp_path / folder / f"{name}.png",
                        rng.integers(0, 256, (24, 24), dtype=np.uint8))
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", tmp_path / "out") == 0
    assert ("Scoring 2 image(s) found in both folders; 1 prediction(s) and 1 reference(s) have "
            "no partner: extra.png, c.png") in capsys.readouterr().out
    assert _metrics(tmp_path / "out")["n"] == 2


def test_a_brain_window_names_what_8bit_grey_levels_mean(tmp_path):
    # A skull at 255 in a 40/400 window; the prediction draws it at 200 (80 HU there).
    reference = np.full((24, 24), 100, np.uint8)
    reference[:, :4] = 255
    prediction = reference.copy()
    prediction[:, :4] = 200
    for folder, pixels in (("pred", prediction), ("ref", reference), ("in", reference)):
        write_image(tmp_path / folder / "a.png", pixels)
    common = ("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
              "--inputs", tmp_path / "in")
    assert _eval(*common, "--out", tmp_path / "brain", "--ct-window", "40,400") == 0
    brain = _metrics(tmp_path / "brain")
    assert brain["tissue"]["window_hu"] == [-160.0, 240.0]
    # 55 grey levels of a 400 HU window: 86.3 HU; the skull is no longer bone.
    assert brain["model"]["mae_bone"] == pytest.approx(55 / 255 * 400, abs=0.01)
    assert brain["model"]["bone_dice"] == 0.0
    # Control: the default window reads the same grey levels as a 3000 HU range.
    assert _eval(*common, "--out", tmp_path / "wide") == 0
    assert _metrics(tmp_path / "wide")["model"]["mae_bone"] == pytest.approx(55 / 255 * 3000,
                                                                             abs=0.1)


def test_16bit_pngs_with_inputs_get_both(tmp_path):
    reference = np.clip(_head(1, 40)[0] + 1024, 0, None).astype(np.uint16)
    write_image(tmp_path / "ref" / "a.png", reference)
    write_image(tmp_path / "pred" / "a.png", reference + 20)
    write_image(tmp_path / "in" / "a.png", reference)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", out, "--no-wepl") == 0
    metrics = _metrics(out)
    assert {"model", "identity", "histogram_matching", "synthrad"} <= set(metrics)
    assert metrics["synthrad"]["cases"]["a"]["mae"] == pytest.approx(20.0)
    # The 8-bit table's tissue errors read the 16-bit files as HU + 1024.
    assert metrics["model"]["mae_soft"] == pytest.approx(20.0, abs=1e-3)


def _dose_grid(path, dose):
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(dose.transpose(2, 1, 0).astype(np.float32), affine), str(path))
    return str(path)


def test_dose_grids_give_gamma_and_the_dose_mae(tmp_path):
    _offset_cases(tmp_path)
    _, y, x = np.mgrid[:12, :20, :20]
    dose = 60.0 * np.exp(-((y - 10) ** 2 + (x - 10) ** 2) / 40.0) * np.ones((12, 1, 1))
    ct_dose = _dose_grid(tmp_path / "ct_dose.nii.gz", dose)
    sct_dose = _dose_grid(tmp_path / "sct_dose.nii.gz", dose * 1.005)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred" / "case1.nii.gz",
                 "--references", tmp_path / "ref" / "case1.nii.gz", "--out", out,
                 "--no-wepl", "--dose-ct", ct_dose, "--dose-sct", sct_dose,
                 "--prescription-gy", "60") == 0
    case = _metrics(out)["synthrad"]["cases"]["case1"]
    assert case["gamma_pass_2pct_2mm"] == 100.0 and case["gamma_pass_1pct_1mm"] == 100.0
    high = dose[dose >= 0.9 * 60.0]
    assert case["dose_mae_relative"] == pytest.approx(np.mean(0.005 * high) / 60.0, rel=1e-3)
    assert case["dose"]["mae"]["prescription_gy"] == 60.0


def _bad_cases(tmp_path):
    """Each bad input: (arguments, fragments of the one error line)."""
    _offset_cases(tmp_path)
    pred, ref = tmp_path / "pred" / "case1.nii.gz", tmp_path / "ref" / "case1.nii.gz"
    _nifti(tmp_path / "small_mask.nii.gz", np.ones((8, 40, 30)), dtype=np.uint8)
    _nifti(tmp_path / "empty_mask.nii.gz", np.zeros((8, 40, 40)), dtype=np.uint8)
    _nifti(tmp_path / "air.nii.gz", np.full((8, 40, 40), -1000.0))
    finer = AFFINE.copy()
    finer[2, 2] = 1.0
    _nifti(tmp_path / "finer" / "case1.nii.gz", _head(), finer)
    rtdose = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    del rtdose.DoseGridScaling
    rtdose.save_as(tmp_path / "unscaled.dcm")
    write_image(tmp_path / "grey" / "case1.png", np.zeros((40, 40), np.uint8))
    (tmp_path / "curve.csv").write_text("0,1\n-10,2\n")
    common = ["--predictions", pred, "--references", ref]
    return {
        "mask of another shape": (common + ["--mask", tmp_path / "small_mask.nii.gz"],
                                  ["small_mask.nii.gz", "40x30"]),
        "mask with no voxel": (common + ["--mask", tmp_path / "empty_mask.nii.gz"],
                               ["empty_mask.nii.gz", "has no voxel"]),
        "another spacing": (["--predictions", tmp_path / "finer", "--references",
                             tmp_path / "ref"], ["finer", "1x0.8x0.8 mm", "2x0.8x0.8 mm"]),
        "another shape": (["--predictions", ANATOMICAL, "--references", ref],
                          ["anatomical.nii", "25x41x33", "8x40x40"]),
        "dose without scaling": (common + ["--dose-ct", tmp_path / "unscaled.dcm", "--dose-sct",
                                           tmp_path / "unscaled.dcm"],
                                 ["unscaled.dcm", "DoseGridScaling"]),
        "empty body": (["--predictions", tmp_path / "air.nii.gz", "--references",
                        tmp_path / "air.nii.gz"], ["air.nii.gz", "body mask is empty"]),
        "8-bit prediction": (["--predictions", tmp_path / "grey", "--references",
                              tmp_path / "grey"], ["case1.png", "carries no HU"]),
        "bad curve": (common + ["--hu-to-rsp", tmp_path / "curve.csv"],
                      ["curve.csv", "HU must rise"]),
        "inputs with volumes": (["--predictions", tmp_path / "pred", "--references",
                                 tmp_path / "ref", "--inputs", tmp_path / "ref"],
                                # It did not say that --inputs scores 2-D images.
                                ["pred", "no image files", "leave --inputs out"]),
        "target outside the body": (common + ["--wepl", "--target",
                                              tmp_path / "empty_mask.nii.gz"],
                                    ["empty_mask.nii.gz", "has no voxel"]),
    }


BAD = ["mask of another shape", "mask with no voxel", "another spacing", "another shape",
       "dose without scaling", "empty body", "8-bit prediction", "bad curve",
       "inputs with volumes", "target outside the body"]


@pytest.mark.parametrize("problem", BAD)
def test_each_bad_input_is_one_line_and_exit_2(tmp_path, capsys, problem):
    args, fragments = _bad_cases(tmp_path)[problem]
    capsys.readouterr()
    code = _eval(*args, "--out", tmp_path / "out")
    assert_one_line_error(capsys, code, *fragments)


def test_synthrad_folders_missing_a_file_or_needing_simpleitk(tmp_path, capsys):
    patient = tmp_path / "sr" / "1BA001"
    _nifti(patient / "ct.nii.gz", _head())
    code = _eval("--synthrad", tmp_path / "sr", "--out", tmp_path / "out")
    assert_one_line_error(capsys, code, "1BA001", "without mr.nii.gz")
    shutil.copy(patient / "ct.nii.gz", patient / "mr.mha")
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        code = _eval("--synthrad", tmp_path / "sr", "--out", tmp_path / "out")
        assert_one_line_error(capsys, code, "mr.mha", "pip install SimpleITK")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, words", [
    (["--predictions", "p", "--references", "r"], "--out"),
    (["--predictions", "p", "--references", "r", "--out", "o", "--direction", "ct2mri"],
     "--direction must be mri2ct"),
    (["--synthrad", "s"], "--synthrad needs --out"),
    (["--run", "r", "--mask", "m"], "--mask applies to --predictions or --synthrad"),
    (["--synthrad", "s", "--out", "o", "--tissue-thresholds", "200", "-200"], "low <= high"),
    (["--synthrad", "s", "--out", "o", "--dose-ct", "d"], "go together"),
    (["--synthrad", "s", "--out", "o", "--spacing", "1", "2", "3"], "--spacing"),
    (["--synthrad", "s", "--out", "o", "--prescription-gy", "60"], "give --dose-ct and"),
    # Options that did nothing there, silently.
    (["--predictions", "p", "--references", "r", "--out", "o", "--samples", "4"],
     "--samples applies to --run"),
    (["--predictions", "p", "--references", "r", "--out", "o", "--weights-dir", "w"],
     "--weights-dir applies to --synthrad"),
    (["--run", "r", "--batch-size", "2"], "--batch-size applies to --synthrad"),
    (["--predictions", "p", "--references", "r", "--out", "o", "--ct-window", "40,400"],
     "--ct-window applies to 8-bit images scored with --inputs"),
    (["--synthrad", "s", "--out", "o", "--ct-window", "40,400"], "--ct-window applies"),
    (["--run", "r", "--direction", "ct2mri"], "--direction applies to --predictions"),
    (["--synthrad", "s", "--out", "o", "--direction", "ct2mri"], "--direction applies"),
    (["--run", "r", "--bone-threshold", "300"], "--bone-threshold applies to --predictions"),
    (["--run", "r", "--tissue-thresholds", "-100", "100"], "--tissue-thresholds applies"),
])
def test_option_problems_are_usage_errors(capsys, argv, words):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2 and words in capsys.readouterr().err


def test_the_mean_ignores_an_infinite_hd95(tmp_path):
    # case1's prediction has no bone: HD95 is infinite, left out of the mean.
    reference = _head()
    _nifti(tmp_path / "ref" / "case1.nii.gz", reference)
    _nifti(tmp_path / "ref" / "case2.nii.gz", reference)
    _nifti(tmp_path / "pred" / "case1.nii.gz", np.minimum(reference, 100.0))
    _nifti(tmp_path / "pred" / "case2.nii.gz", reference)
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out", "--no-wepl") == 0
    section = _metrics(tmp_path / "out")["synthrad"]
    assert section["cases"]["case1"]["hd95_bone_mm"] is None
    assert section["cases"]["case1"]["dice_bone"] == 0.0
    assert section["mean"]["hd95_bone_mm"] == 0.0 and section["mean"]["dice_bone"] == 0.5
    assert not math.isnan(section["mean"]["mae"])


def test_a_file_given_as_the_synthrad_folder_is_named_as_such(tmp_path, capsys):
    # It was "SynthRAD folder not found" although the path existed.
    (tmp_path / "ct.nii.gz").write_bytes(b"x")
    code = run_cli(main, ["--synthrad", str(tmp_path / "ct.nii.gz"), "--out",
                          str(tmp_path / "out")])
    assert_one_line_error(capsys, code, "ct.nii.gz", "is a file, not a SynthRAD folder")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["pred", "pred/report", "ref", "sr", "sr/1BA001"])
def test_a_report_folder_among_the_inputs_is_refused(tmp_path, capsys, inside):
    # The report's figures and masks (and, with --synthrad, the synthetic
    # CTs) were written among the cases the next run would read.
    _offset_cases(tmp_path)
    _nifti(tmp_path / "sr" / "1BA001" / "ct.nii.gz", _head())
    _nifti(tmp_path / "sr" / "1BA001" / "mr.nii.gz", _head())
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    if inside.startswith("sr"):
        args = ["--synthrad", tmp_path / "sr", "--weights-dir", tmp_path / "weights"]
        option = "--synthrad"
    else:
        args = ["--predictions", tmp_path / "pred", "--references", tmp_path / "ref"]
        option = "--predictions" if inside.startswith("pred") else "--references"
    code = _eval(*args, "--out", tmp_path / inside)
    assert_one_line_error(capsys, code, "--out is inside the " + option)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    # Control: beside the inputs, the same cases are scored.
    if not inside.startswith("sr"):
        assert _eval(*args, "--out", tmp_path / "out", "--no-wepl") == 0


def test_an_mr_slice_given_as_a_prediction_is_named_as_such(tmp_path, capsys):
    # It said "this direction translates CT input": the prediction is not
    # translated here, it is scored as a synthetic CT.
    for folder, name in (("pred", "MR_small.dcm"), ("ref", "CT_small.dcm")):
        (tmp_path / folder).mkdir()
        shutil.copy(get_testdata_file(name), tmp_path / folder / "case.dcm")
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out")
    assert_one_line_error(capsys, code, "case.dcm: Modality is MR where CT is expected")
    assert not (tmp_path / "out").exists()


def test_8bit_predictions_with_inputs_are_read_through_the_ct_window(tmp_path):
    # With --inputs and HU references, an 8-bit synthetic CT (what infer.py
    # writes from 8-bit input) was refused as "carries no HU" although
    # --inputs was given, as the message itself advised.
    hu = _head(1, 40)[0]
    write_image(tmp_path / "ref" / "a.png", np.clip(hu + 1024, 0, None).astype(np.uint16))
    low, high = -160.0, 240.0  # --ct-window 40,400
    grey = np.clip(np.round((hu - low) / (high - low) * 255), 0, 255).astype(np.uint8)
    write_image(tmp_path / "pred" / "a.png", grey)
    write_image(tmp_path / "in" / "a.png", grey)
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--ct-window", "40,400", "--out", out,
                 "--no-wepl") == 0
    metrics = _metrics(out)
    case = metrics["synthrad"]["cases"]["a"]
    # Soft tissue (40 HU) comes back within half a grey level (0.8 HU);
    # bone (1000 HU) saturates at the window's top, 240 HU.
    assert case["mae_soft"] < 0.8
    assert case["mae_bone"] == pytest.approx(1000.0 - 240.0, abs=0.5)
    # The 8-bit table reads the 16-bit reference through the same window, as
    # `infer.py --reference` does: the prediction is the reference there,
    # to rounding (the reference was scaled linearly from 0..65535: 5.6 dB).
    assert metrics["model"]["psnr"] > 50 and metrics["model"]["ssim"] > 0.999
    assert metrics["model"]["bone_dice"] == 1.0


AXIAL, CORONAL = [1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1]


def _series(folder, offsets, orientations=None):
    folder.mkdir(parents=True)
    base = pydicom.dcmread(CT_SMALL)
    x, y, z = (float(v) for v in base.ImagePositionPatient)
    for index, offset in enumerate(offsets):
        dataset = pydicom.dcmread(CT_SMALL)
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.ImagePositionPatient = [x, y, z + offset]
        if orientations:
            dataset.ImageOrientationPatient = orientations[index]
        dataset.save_as(folder / f"IM{index}", enforce_file_format=True)


@pytest.mark.parametrize("offsets, words, orientations", [
    ([0, 2, 4, 10, 12], "unevenly spaced (2 to 6 mm apart; a slice missing?)", None),
    ([0, 3, 3, 6], "two slices of the series lie at one position", None),
    ([0, 0], "two slices of the series lie at one position", None),
    # Axial and coronal slices in one series: each sorted along its own normal.
    ([0, 3, 6, 9], "lie in 2 orientations", [AXIAL, CORONAL] * 2),
])
def test_a_series_with_a_gap_is_not_scored_on_a_wrong_grid(tmp_path, capsys, offsets, words,
                                                           orientations):
    # Its spacing was the mean distance (3 mm for both series below), and the
    # grid check passed two series whose slices do not line up.
    _series(tmp_path / "ref", offsets, orientations)
    _series(tmp_path / "pred", [0, 3, 6, 9, 12][:len(offsets)])
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out", "--no-wepl")
    assert_one_line_error(capsys, code, words, "the 3-D metrics need evenly spaced slices")
    # Control: evenly spaced, the same series are scored.
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "pred",
                 "--out", tmp_path / "even", "--no-wepl") == 0


def test_a_case_that_fails_after_others_leaves_no_output(tmp_path, capsys):
    # case1 was scored and its mask written before case2's grid was refused.
    _offset_cases(tmp_path)
    _nifti(tmp_path / "pred" / "case2.nii.gz", _head(size=36))
    out = tmp_path / "out"
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", out, "--no-wepl")
    assert_one_line_error(capsys, code, "case2", "")
    assert not out.exists()
    # Control: with case2 as it was, both masks and the report are written.
    _offset_cases(tmp_path)
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", out, "--no-wepl") == 0
    assert sorted(os.listdir(out)) == sorted([
        "index.html", "mask_case1.nii.gz", "mask_case2.nii.gz", "metrics.json",
        "metrics_per_case.csv", "synthrad_mri2ct.png"])


def test_a_mask_given_from_the_report_folder_is_not_overwritten(tmp_path, capsys):
    # The mask an earlier run wrote, given back with --mask and the same
    # --out, was rewritten (labels 0/1, another affine) by this run's.
    reference = _head()
    prediction = _nifti(tmp_path / "pred" / "case1.nii.gz", reference + 20.0)
    truth = _nifti(tmp_path / "ref" / "case1.nii.gz", reference)
    out = tmp_path / "out"
    mask = _nifti(out / "mask_case1.nii.gz", (reference > -500) * 2, dtype=np.uint8)
    before = (out / "mask_case1.nii.gz").read_bytes()
    code = _eval("--predictions", prediction, "--references", truth, "--mask", mask,
                 "--out", out, "--no-wepl")
    assert_one_line_error(capsys, code, "mask_case1.nii.gz", "would overwrite an input",
                          "--out")
    assert (out / "mask_case1.nii.gz").read_bytes() == before
    assert sorted(os.listdir(out)) == ["mask_case1.nii.gz"]
    # Control: written into another folder, the same command runs.
    assert _eval("--predictions", prediction, "--references", truth, "--mask", mask,
                 "--out", tmp_path / "out2", "--no-wepl") == 0


def test_8bit_pairs_match_by_name_without_extension(tmp_path):
    # infer.py writes a.png for a.jpg: its results could not be scored
    # against the JPEG references and inputs they came from.
    rng = np.random.default_rng(0)
    for folder, suffix in (("pred", "png"), ("ref", "jpg"), ("in", "jpg")):
        for name in ("a", "b"):
            write_image(tmp_path / folder / f"{name}.{suffix}",
                        rng.integers(0, 256, (24, 24), dtype=np.uint8))
    out = tmp_path / "out"
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", out) == 0
    assert _metrics(out)["n"] == 2


def test_two_references_of_one_name_without_extension_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for folder, names in (("pred", ("a.png",)), ("ref", ("a.tif", "a.jpg")), ("in", ("a.png",))):
        for name in names:
            write_image(tmp_path / folder / name, rng.integers(0, 256, (24, 24), dtype=np.uint8))
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", tmp_path / "out")
    assert_one_line_error(capsys, code, "a.", "same name without extension")


def test_a_file_of_the_exact_name_pairs_before_names_without_extension(tmp_path):
    # A test folder with a.png and a.tif beside a.png: the exact name pairs
    # (before, the ambiguity turned a training run's evaluation off).
    from vaecyclegan.evaluation.paired_test_set import paired_files

    rng = np.random.default_rng(0)
    for folder, names in (("pred", ("a.png", "b.png")), ("ref", ("a.png", "a.tif", "b.jpg"))):
        for name in names:
            write_image(tmp_path / folder / name, rng.integers(0, 256, (24, 24), dtype=np.uint8))
    pairs = [(os.path.basename(p), os.path.basename(r))
             for p, r in paired_files(str(tmp_path / "pred"), str(tmp_path / "ref"))]
    assert pairs == [("a.png", "a.png"), ("b.png", "b.jpg")]


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path, capsys, monkeypatch):
    # A PermissionError traceback (find_cases listed the folder itself).
    _offset_cases(tmp_path)
    listdir = os.listdir

    def refusing_listdir(path="."):
        if os.path.basename(os.fspath(path)) == "ref":
            raise PermissionError(13, "Permission denied", path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refusing_listdir)
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out", "--no-wepl")
    assert_one_line_error(capsys, code, "ref", "folder cannot be listed (Permission denied)")


def test_an_sct_whose_header_flips_it_is_refused_and_one_stored_in_another_order_scored(
        tmp_path, capsys):
    # Saved with an identity affine where the CT's is LAS, the sCT was cut
    # into slices flipped left-right against the CT and scored so.
    reference = _head()
    truth = _nifti(tmp_path / "ref" / "case1.nii.gz", reference)
    identity = np.diag([0.8, 0.8, 2.0, 1.0])
    identity[:3, 3] = AFFINE[:3, 3]
    flipped = _nifti(tmp_path / "pred" / "case1.nii.gz", reference, identity)
    code = _eval("--predictions", flipped, "--references", truth, "--out", tmp_path / "out",
                 "--no-wepl")
    assert_one_line_error(capsys, code, "case1.nii.gz", "mm away from the reference")
    assert not (tmp_path / "out").exists()
    # A feet-first DICOM CT and an sCT of the same voxels in NIfTI at its
    # placement: both cut into the same axial slices, a perfect sCT.
    from tests.evaluation.test_cases import FEET_FIRST
    from tests.harness import write_ct_series
    from vaecyclegan.evaluation.cases import find_cases, read_hu

    (tmp_path / "dicom" / "case2").mkdir(parents=True)
    write_ct_series(tmp_path / "dicom" / "case2", ["IM3", "IM2", "IM1"], **FEET_FIRST)
    [source] = find_cases(str(tmp_path / "dicom" / "case2")).values()
    ct = read_hu(source, "case2", "reference")
    path = str(tmp_path / "pred2" / "case2.nii.gz")
    os.makedirs(os.path.dirname(path))
    nib.save(nib.Nifti1Image(ct.values.astype(np.int16), ct.world), path)
    assert _eval("--predictions", path, "--references", tmp_path / "dicom", "--out",
                 tmp_path / "out2", "--no-wepl", "--mask-dilation-mm", "0") == 0
    assert _metrics(tmp_path / "out2")["synthrad"]["mean"]["mae"] == 0.0


def test_8bit_predictions_without_their_window_are_said_to_take_the_default(tmp_path,
                                                                           capsys):
    # Brain-window predictions scored without --ct-window lost 17 dB and
    # the report recorded the default window as "given".
    hu = _head(1, 40)[0]
    write_image(tmp_path / "ref" / "a.png", np.clip(hu + 1024, 0, None).astype(np.uint16))
    grey = np.clip(np.round((hu + 160.0) / 400.0 * 255), 0, 255).astype(np.uint8)
    write_image(tmp_path / "pred" / "a.png", grey)
    write_image(tmp_path / "in" / "a.png", grey)
    common = ("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
              "--inputs", tmp_path / "in", "--no-wepl")
    assert _eval(*common, "--out", tmp_path / "default") == 0
    assert "read through the default CT window" in capsys.readouterr().err
    assert _metrics(tmp_path / "default")["tissue"]["window"].startswith("default")
    assert _eval(*common, "--ct-window", "40,400", "--out", tmp_path / "given") == 0
    assert "default CT window" not in capsys.readouterr().err  # control
    assert _metrics(tmp_path / "given")["tissue"]["window"] == "given"


def test_a_folder_scored_against_itself_is_said_to_be_after_the_scores(tmp_path, capsys):
    # A CycleGAN results folder (fake_B beside real_B) given as both
    # predictions and references scored every file against itself: perfect
    # scores, without a word.
    rng = np.random.default_rng(0)
    for name in ("1_fake_B", "1_real_B", "1_real_A"):
        write_image(tmp_path / "images" / f"{name}.png",
                    rng.integers(0, 256, (24, 24), dtype=np.uint8))
    images = tmp_path / "images"
    assert _eval("--predictions", images, "--references", images, "--inputs", images,
                 "--out", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "--predictions and --references are the same" in err
    # Named apart, files of different names are not paired, and the
    # message shows names of both and says how files pair.
    (tmp_path / "pred").mkdir()
    os.symlink(images / "1_fake_B.png", tmp_path / "pred" / "1_fake_B.png")
    code = _eval("--predictions", tmp_path / "pred", "--references", images, "--inputs",
                 images, "--out", tmp_path / "apart")
    assert code == 0  # 1_fake_B.png is in both: a pair, without the warning
    assert "are the same" not in capsys.readouterr().err
    (tmp_path / "ref").mkdir()
    os.symlink(images / "1_real_B.png", tmp_path / "ref" / "1_real_B.png")
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", images, "--out", tmp_path / "none")
    assert_one_line_error(capsys, code, "predictions such as 1_fake_B.png",
                          "references such as 1_real_B.png", "paired by name")


def test_files_of_an_earlier_report_left_in_out_are_named(tmp_path, capsys):
    # A volume report written into an image report's folder left its
    # grids and per-image CSV beside the new metrics.json, unsaid.
    rng = np.random.default_rng(0)
    for folder in ("pred", "ref", "in"):
        write_image(tmp_path / folder / "a.png", rng.integers(0, 256, (24, 24), np.uint8))
    common = ("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
              "--inputs", tmp_path / "in", "--out", tmp_path / "out")
    assert _eval(*common) == 0
    assert "does not replace" not in capsys.readouterr().err
    assert _eval(*common) == 0  # control: the same report replaces every file
    assert "does not replace" not in capsys.readouterr().err
    (tmp_path / "out" / "grid_old.png").write_bytes(b"from before")
    (tmp_path / "out" / ".DS_Store").write_bytes(b"hidden: not a report's")
    assert _eval(*common) == 0
    assert "held 1 file(s) that this report does not replace (grid_old.png)" in \
        capsys.readouterr().err


def test_a_ct_without_air_is_said_to_look_like_hu_plus_1024_or_mri(tmp_path, capsys):
    # Stored as HU + 1024 with no intercept, a CT scored MAE 568 "HU" and a
    # body mask of every voxel, unsaid (training warned; eval and infer not).
    reference = _head()
    _nifti(tmp_path / "ref" / "c.nii.gz", reference)
    _nifti(tmp_path / "pred" / "c.nii.gz", reference)
    _nifti(tmp_path / "shifted" / "c.nii.gz", reference + 1024, dtype=np.uint16)
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "a", "--no-wepl") == 0
    assert "are air" not in capsys.readouterr().err  # control: air around the head
    assert _eval("--predictions", tmp_path / "shifted", "--references", tmp_path / "ref",
                 "--out", tmp_path / "b", "--no-wepl") == 0
    err = capsys.readouterr().err
    assert "only 0.0 % of the prediction's voxels are air" in err
    assert "HU + 1024 read as HU" in err and "the reference's" not in err


def _peak_bytes_of_scoring(folder, count, size=64):
    """Peak memory (`tracemalloc`) of the 8-bit evaluation of `count`
    random image triples, without writing its report."""
    import tracemalloc

    from vaecyclegan.workflows.evaluate import _folder_evaluation

    rng = np.random.default_rng(0)
    for index in range(count):
        for kind in ("pred", "ref", "in"):
            write_image(folder / kind / f"{index:04d}.png",
                        rng.integers(0, 256, (size, size), dtype=np.uint8))
    tracemalloc.start()
    try:
        evaluation = _folder_evaluation(str(folder / "pred"), str(folder / "ref"),
                                        str(folder / "in"), "mri2ct", (40.0, 400.0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert evaluation.summary["n"] == count
    return peak


def test_a_2d_set_is_scored_image_by_image_holding_only_what_its_figures_draw(
        tmp_path, monkeypatch):
    # Every pair was held with its baselines while scoring, about 77 bytes
    # a pixel (4,000 exported 512-px slices: 80 GB); four times the images
    # took four times the memory. The baseline's histogram pool (up to 64
    # images) is made one size for both.
    monkeypatch.setattr("vaecyclegan.evaluation.scoring.HISTOGRAM_POOL_SIZE", 8)
    few = _peak_bytes_of_scoring(tmp_path / "few", 16)
    many = _peak_bytes_of_scoring(tmp_path / "many", 64)
    one_copy_of_the_set = 64 * 64 * 64 * 8
    assert many < 1.5 * few and many < 2 * one_copy_of_the_set, (few, many)


def test_cases_past_the_figure_let_their_slices_go_and_are_all_scored(tmp_path, monkeypatch):
    # Every case kept its figure's slices (reference, prediction, mask in
    # float64) until the report: a folder of 4,000 2-D cases held them all.
    import vaecyclegan.workflows.evaluate as evaluate

    kept, original = [], evaluate._add_section

    def add_section(evaluation, results, *rest):
        kept.extend(case.figure is not None for case in results)
        return original(evaluation, results, *rest)

    monkeypatch.setattr(evaluate, "SYNTHRAD_ROWS", 2)
    monkeypatch.setattr(evaluate, "_add_section", add_section)
    reference = _head(depth=1)[0]
    for name in ("a", "b", "c"):
        write_image(tmp_path / "ref" / f"{name}.png", (reference + 1024).astype(np.uint16))
        write_image(tmp_path / "pred" / f"{name}.png", (reference + 1034).astype(np.uint16))
    assert _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--out", tmp_path / "out") == 0
    assert kept == [True, True, False]
    assert set(_metrics(tmp_path / "out")["synthrad"]["cases"]) == {"a", "b", "c"}
    assert (tmp_path / "out" / "synthrad_mri2ct.png").is_file()


def test_a_refused_8bit_evaluation_says_one_line_and_nothing_before_it(tmp_path, capsys):
    # Read triple by triple, the default-window warning of the first came
    # before the refusal of the second: two lines for a refused run.
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    write_image(tmp_path / "pred" / "a0.png", grey)
    write_image(tmp_path / "ref" / "a0.png", (grey.astype(np.uint16) + 1000))
    write_image(tmp_path / "in" / "a0.png", grey)
    for folder in ("pred", "ref"):
        write_image(tmp_path / folder / "a1.png", grey)
    write_image(tmp_path / "in" / "a1.png", np.zeros((34, 32), np.uint8))
    code = _eval("--predictions", tmp_path / "pred", "--references", tmp_path / "ref",
                 "--inputs", tmp_path / "in", "--out", tmp_path / "out")
    assert_one_line_error(capsys, code, "a1.png", "differ in size")
    assert not (tmp_path / "out").exists()
