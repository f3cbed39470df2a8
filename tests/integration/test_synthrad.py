"""SynthRAD's metrics with the shared smoke model: `vaecyclegan-eval
--synthrad` end to end on a SynthRAD-layout folder of phantom volumes,
`infer.py --reference` with 16-bit HU references, and the closing
evaluation of `train.py` and `vaecyclegan-eval --run`."""

import csv
import json
import os

import nibabel as nib
import numpy as np
import pytest

from tests.harness import infer
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.evaluate import main as eval_main
from vaecyclegan.data.phantom import render_slice
from vaecyclegan.evaluation.synthrad import METRIC_KEYS, synthrad_metrics

# 1 x 1 x 2.5 mm voxels, in the RAS+ orientation SynthRAD's files have.
AFFINE = np.array([[1.0, 0, 0, -16.0], [0, 1.0, 0, -16.0], [0, 0, 2.5, 0.0], [0, 0, 0, 1]])


def _save(path, volume_dhw, dtype):
    data = np.asarray(volume_dhw).transpose(2, 1, 0)[:, ::-1]  # rows run posterior
    nib.save(nib.Nifti1Image(np.round(data).astype(dtype), AFFINE), str(path))


def _synthrad_folder(root, patients=("1BA001", "1BA002"), slices=8, size=32):
    """Phantom slices stacked into volumes: ct (HU), mr, mask (the head)."""
    for number, name in enumerate(patients):
        phantoms = [render_slice([11, number, index], size) for index in range(slices)]
        folder = root / name
        folder.mkdir(parents=True)
        _save(folder / "ct.nii.gz", np.stack([p.ct_hu for p in phantoms]), np.int16)
        _save(folder / "mr.nii.gz", np.stack([p.mri for p in phantoms]) * 1000.0, np.int16)
        _save(folder / "mask.nii.gz", np.stack([p.labels > 0 for p in phantoms]), np.uint8)
    (root / "overview").mkdir()
    (root / "overview" / "notes.txt").write_text("not a patient")
    return root


def test_synthrad_folder_end_to_end(trained_smoke, tmp_path):
    root = _synthrad_folder(tmp_path / "Task1" / "brain")
    out = tmp_path / "out"
    assert run_cli(eval_main, ["--synthrad", str(root), "--weights-dir",
                               trained_smoke.weights_dir, "--out", str(out)]) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        section = json.load(f)["mri2ct"]["synthrad"]
    assert section["n"] == 2 and set(section["cases"]) == {"1BA001", "1BA002"}
    assert section["settings"]["mask"] == "each patient's mask file"
    for name, case in section["cases"].items():
        assert set(METRIC_KEYS) <= set(case) and "wepl_mean_abs_mm" in case  # small: WEPL on
        assert case["shape"] == [8, 32, 32] and case["spacing_mm"] == pytest.approx([2.5, 1, 1])
        assert case["spacing_from"] == "the file"
        assert case["mask_file"] == f"mask_{name}.nii.gz" and (out / case["mask_file"]).is_file()
        # The synthetic CT written is the one scored: rescoring it gives the same numbers.
        sct = nib.load(str(out / case["sct_file"]))
        ct = nib.load(str(root / name / "ct.nii.gz"))
        mask = np.asarray(nib.load(str(root / name / "mask.nii.gz")).dataobj) > 0
        assert np.allclose(sct.affine, ct.affine) and sct.shape == ct.shape
        again = synthrad_metrics(sct.get_fdata(), ct.get_fdata(), mask,
                                 spacing=ct.header.get_zooms())
        assert again["mae"] == pytest.approx(case["mae"], rel=1e-6)
        assert again["dice_bone"] == pytest.approx(case["dice_bone"], rel=1e-6)
    mean_mae = np.mean([c["mae"] for c in section["cases"].values()])
    assert section["mean"]["mae"] == pytest.approx(mean_mae)
    with open(out / "metrics_per_case.csv", encoding="utf-8") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["1BA001", "1BA002"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "synthrad_mri2ct.png" in page and "MS-SSIM" in page and "1BA002" in page
    assert (out / "synthrad_mri2ct.png").stat().st_size > 10_000


def test_infer_with_16bit_hu_references_reports_synthrad(trained_smoke, tmp_path, capsys):
    images = os.path.join(trained_smoke.data, "Dataset", "images")
    out = tmp_path / "out"
    assert infer("--direction", "mri2ct", "--input", os.path.join(images, "testB"),
                 "--reference", os.path.join(images, "testA_hu"), "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)["mri2ct"]
    assert {"model", "identity", "histogram_matching", "std"} <= set(metrics)
    assert "mae_hu" in metrics["model"]
    section = metrics["synthrad"]
    assert section["n"] == 4
    for key in ("dice_bone", "hd95_bone_mm", "mae_soft", "mae_bone", "psnr_2025",
                "ms_ssim_2025", "ssim_2023"):
        assert key in section["mean"]
    assert "Dice" in capsys.readouterr().out
    assert (out / "synthrad_mri2ct.png").is_file() and (out / "metrics_per_case.csv").is_file()


def test_training_and_run_evaluations_add_synthrad_to_mri2ct_only(trained_smoke, tmp_path):
    with open(os.path.join(trained_smoke.logdir, "metrics.json"), encoding="utf-8") as f:
        trained = json.load(f)
    assert trained["mri2ct"]["synthrad"]["n"] == 4 and "synthrad" not in trained["ct2mri"]
    assert {"model", "identity", "histogram_matching"} <= set(trained["mri2ct"])
    out = tmp_path / "eval"
    assert run_cli(eval_main, ["--run", trained_smoke.logdir, "--out", str(out)]) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        again = json.load(f)
    # Close, not equal: TensorFlow's CPU sums vary in order, and a result
    # written as 8-bit moves by a grey level (about 12 HU) where that tips it.
    assert again["mri2ct"]["synthrad"]["mean"]["mae"] == pytest.approx(
        trained["mri2ct"]["synthrad"]["mean"]["mae"], rel=0.02)


def test_synthrad_2025_mha_files(trained_smoke, tmp_path):
    sitk = pytest.importorskip("SimpleITK")  # without it, test_evaluate checks the one line
    root = _synthrad_folder(tmp_path / "nifti", patients=("1BA001",))
    patient = tmp_path / "mha" / "1BA001"
    patient.mkdir(parents=True)
    for stem in ("ct", "mr", "mask"):
        image = sitk.ReadImage(str(root / "1BA001" / f"{stem}.nii.gz"))
        sitk.WriteImage(image, str(patient / f"{stem}.mha"))
    out = tmp_path / "out"
    assert run_cli(eval_main, ["--synthrad", str(tmp_path / "mha"), "--weights-dir",
                               trained_smoke.weights_dir, "--out", str(out), "--no-wepl"]) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        case = json.load(f)["mri2ct"]["synthrad"]["cases"]["1BA001"]
    assert case["sct_file"] == os.path.join("sct", "1BA001.mha")
    assert case["spacing_mm"] == pytest.approx([2.5, 1.0, 1.0])
    sct = sitk.ReadImage(str(out / case["sct_file"]))
    ct = sitk.ReadImage(str(patient / "ct.mha"))
    assert sct.GetSize() == ct.GetSize() and sct.GetSpacing() == ct.GetSpacing()
    again = synthrad_metrics(sitk.GetArrayFromImage(sct), sitk.GetArrayFromImage(ct),
                             sitk.GetArrayFromImage(sitk.ReadImage(str(patient / "mask.mha"))),
                             spacing=(2.5, 1.0, 1.0))
    assert again["mae"] == pytest.approx(case["mae"], rel=1e-6)


def test_given_masks_replace_the_patients_own(trained_smoke, tmp_path):
    # --mask was read by nothing with --synthrad: each patient's own mask
    # scored, and the report said so.
    root = _synthrad_folder(tmp_path / "brain")
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("1BA001", "1BA002"):
        own = np.asarray(nib.load(str(root / name / "mask.nii.gz")).dataobj)
        half = own.copy()
        half[:, :, 4:] = 0  # the first four slices only
        nib.save(nib.Nifti1Image(half, AFFINE), str(masks / f"{name}.nii.gz"))
    out = tmp_path / "out"
    assert run_cli(eval_main, ["--synthrad", str(root), "--weights-dir",
                               trained_smoke.weights_dir, "--mask", str(masks), "--out",
                               str(out), "--no-wepl"]) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        section = json.load(f)["mri2ct"]["synthrad"]
    assert section["settings"]["mask"] == f"the masks of {masks}"
    for name, case in section["cases"].items():
        used = np.asarray(nib.load(str(out / case["mask_file"])).dataobj) > 0
        given = np.asarray(nib.load(str(masks / f"{name}.nii.gz")).dataobj) > 0
        assert used.sum() == given.sum() > 0
        # On the CT file's grid, voxel for voxel (it was in slice order).
        assert np.array_equal(used, given)
        assert np.allclose(nib.load(str(out / case["mask_file"])).affine, AFFINE)
        assert used.sum() < (np.asarray(nib.load(str(root / name / "mask.nii.gz")).dataobj)
                             > 0).sum()
