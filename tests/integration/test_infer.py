"""`infer.py` with the weights of the shared smoke training run."""

import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from tests.harness import assert_one_line_error, infer, write_image
from vaecyclegan.io.image_format import read_grey


@pytest.mark.parametrize("direction", ["mri2ct", "ct2mri"])
def test_infer_keeps_odd_sizes_and_bit_depths(trained_smoke, tmp_path, direction):
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    write_image(inputs / "odd.png", rng.integers(0, 256, (37, 53), dtype=np.uint8))
    write_image(inputs / "small.png", rng.integers(0, 256, (9, 8), dtype=np.uint8))
    write_image(inputs / "deep.png", rng.integers(0, 65536, (40, 33), dtype=np.uint16))
    write_image(inputs / "colour.jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert infer("--direction", direction, "--input", str(inputs), "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    assert sorted(os.listdir(out)) == ["colour.png", "deep.png", "odd.png", "small.png"]
    assert read_grey(str(out / "odd.png")).shape == (37, 53)
    assert read_grey(str(out / "small.png")).shape == (9, 8)
    deep = read_grey(str(out / "deep.png"))
    assert deep.shape == (40, 33) and deep.dtype == np.uint16
    assert read_grey(str(out / "colour.png")).shape == (32, 32)


def test_infer_on_the_phantom_test_folder_writes_one_image_per_input(trained_smoke, tmp_path,
                                                                       capsys):
    test_a = os.path.join(trained_smoke.data, "Dataset", "images", "testA")
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--input", test_a, "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    # The networks' rate and the time waited in all (loading took 6 s of
    # 10 a helper measured, unsaid).
    assert re.search(r"slices/s; [\d.]+ s in all with loading", capsys.readouterr().out)
    assert sorted(os.listdir(out)) == sorted(os.listdir(test_a))
    for name in os.listdir(test_a):
        assert read_grey(str(out / name)).shape == read_grey(os.path.join(test_a, name)).shape


def test_an_axis_for_two_dimensional_images_is_said_to_change_nothing(trained_smoke, tmp_path,
                                                                      capsys):
    test_b = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    common = ["--direction", "mri2ct", "--input", test_b, "--weights-dir",
              trained_smoke.weights_dir]
    assert infer(*common, "--output", str(tmp_path / "a"), "--axis", "sagittal") == 0
    captured = capsys.readouterr()
    assert "--axis sagittal cuts volumes" in captured.out + captured.err
    assert infer(*common, "--output", str(tmp_path / "b")) == 0  # control: the default
    captured = capsys.readouterr()
    assert "--axis" not in captured.err and "cuts volumes" not in captured.out


def test_inference_is_deterministic(trained_smoke, tmp_path):
    test_b = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    names = sorted(os.listdir(test_b))
    assert names
    for run in ("a", "b"):
        assert infer("--direction", "mri2ct", "--input", test_b, "--output", str(tmp_path / run),
                     "--weights-dir", trained_smoke.weights_dir) == 0
        assert sorted(os.listdir(tmp_path / run)) == names
    for name in names:
        np.testing.assert_array_equal(read_grey(str(tmp_path / "a" / name)),
                                      read_grey(str(tmp_path / "b" / name)))


def test_weights_of_another_architecture_are_refused(trained_smoke, tmp_path, capsys):
    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    shutil.copy(weights / "d_target_weights.h5", weights / "g_target_weights.h5")
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8), np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--weights-dir", str(weights))
    assert_one_line_error(capsys, code, "g_target_weights.h5", "scale0_conv0", "stem_conv")
    assert not (tmp_path / "out").exists()


def test_output_equal_to_input_is_refused_and_input_untouched(trained_smoke, tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "a.png", np.full((8, 8), 7, np.uint8))
    before = (folder / "a.png").read_bytes()
    code = infer("--direction", "mri2ct", "--input", str(folder), "--output", str(folder),
                 "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "overwrite an input")
    assert (folder / "a.png").read_bytes() == before and os.listdir(folder) == ["a.png"]


def test_an_unreadable_image_stops_before_any_output(trained_smoke, tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "a.png", np.zeros((8, 8), np.uint8))
    (folder / "b.png").write_text("this is not a PNG")
    code = infer("--direction", "ct2mri", "--input", str(folder), "--output",
                 str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "b.png", "not a readable image")
    # Nothing written: not even an empty output folder.
    assert not (tmp_path / "out").exists()
    assert sorted(os.listdir(folder)) == ["a.png", "b.png"]


def test_an_empty_folder_is_refused(trained_smoke, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = infer("--direction", "ct2mri", "--input", str(tmp_path / "empty"),
                 "--output", str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "empty", "no image, DICOM or NIfTI file")
    assert not (tmp_path / "out").exists()


def test_samples_and_reference_write_mean_std_maps_and_report(trained_smoke, tmp_path):
    images = os.path.join(trained_smoke.data, "Dataset", "images")
    out = tmp_path / "out"
    assert infer("--direction", "mri2ct", "--input", os.path.join(images, "testB"),
                 "--reference", os.path.join(images, "testA"), "--samples", "8",
                 "--output", str(out), "--weights-dir", trained_smoke.weights_dir) == 0
    names = sorted(os.listdir(os.path.join(images, "testB")))
    assert sorted(os.listdir(out / "std")) == sorted(names + ["scale.json"])
    heat = cv2.imread(str(out / "std" / names[0]))
    assert heat.shape == (32, 32, 3)
    metrics = json.loads((out / "metrics.json").read_text())["mri2ct"]
    assert metrics["n"] == len(names) and metrics["uncertainty"]["samples"] == 8
    assert -1.0 <= metrics["uncertainty"]["pearson"] <= 1.0
    scale = json.loads((out / "std" / "scale.json").read_text())
    assert scale["samples"] == 8 and scale["saturated_at"] > 0
    for name in ("metrics_per_image.csv", "grid_mri2ct.png", "index.html"):
        assert (out / name).is_file()
    assert not any(n.startswith(".vaecyclegan-") for n in os.listdir(out))


def test_one_sample_equals_plain_inference(trained_smoke, tmp_path):
    test_b = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    names = sorted(os.listdir(test_b))
    assert infer("--direction", "mri2ct", "--input", test_b, "--output", str(tmp_path / "plain"),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    assert infer("--direction", "mri2ct", "--input", test_b, "--output", str(tmp_path / "one"),
                 "--samples", "1", "--weights-dir", trained_smoke.weights_dir) == 0
    assert not (tmp_path / "one" / "std").exists()
    assert sorted(os.listdir(tmp_path / "plain")) == sorted(os.listdir(tmp_path / "one")) == names
    for name in names:
        np.testing.assert_array_equal(read_grey(str(tmp_path / "plain" / name)),
                                      read_grey(str(tmp_path / "one" / name)))


def _infer_against_reference(trained_smoke, tmp_path, reference_name, reference_shape):
    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "ref" / reference_name, np.zeros(reference_shape, np.uint8))
    return infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--reference",
                 str(tmp_path / "ref"), "--output", str(tmp_path / "out"),
                 "--weights-dir", trained_smoke.weights_dir)


def test_a_reference_of_another_size_is_refused(trained_smoke, tmp_path, capsys):
    code = _infer_against_reference(trained_smoke, tmp_path, "a.png", (16, 20))
    assert_one_line_error(capsys, code, "a.png", "20x16", "16x16")
    assert not (tmp_path / "out").exists()


def test_references_without_a_matching_name_are_refused(trained_smoke, tmp_path, capsys):
    code = _infer_against_reference(trained_smoke, tmp_path, "b.png", (16, 16))
    assert_one_line_error(capsys, code, "no reference has the file name of an input")
    assert not (tmp_path / "out").exists()


def test_upscale_after_translation_and_alone(trained_smoke, tmp_path):
    rng = np.random.default_rng(3)
    write_image(tmp_path / "in" / "odd.png", rng.integers(0, 256, (37, 53), dtype=np.uint8))
    write_image(tmp_path / "in" / "deep.png", rng.integers(0, 65536, (20, 16), dtype=np.uint16))
    for direction in ("ct2mri", "none"):
        out = tmp_path / direction
        assert infer("--direction", direction, "--upscale", "4", "--tile", "16",
                     "--input", str(tmp_path / "in"), "--output", str(out),
                     "--weights-dir", trained_smoke.weights_dir) == 0
        assert read_grey(str(out / "odd.png")).shape == (148, 212)
        deep = read_grey(str(out / "deep.png"))
        assert deep.shape == (80, 64) and deep.dtype == np.uint16


def test_upscale_factor_must_match_the_weights(trained_smoke, tmp_path, capsys):
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8), np.uint8))
    code = infer("--direction", "none", "--upscale", "2", "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "config.json", "x4 upscaler", "--upscale 2")
    assert not (tmp_path / "out").exists()


def test_upscale_with_samples_and_a_high_resolution_reference(trained_smoke, tmp_path):
    images = os.path.join(trained_smoke.data, "Dataset", "images")
    low = cv2.resize(read_grey(os.path.join(images, "testB", "phantom_test_00000.png")), (16, 16),
                     interpolation=cv2.INTER_AREA)
    write_image(tmp_path / "in" / "phantom_test_00000.png", low)
    write_image(tmp_path / "ref" / "phantom_test_00000.png",
                cv2.resize(read_grey(os.path.join(images, "testA", "phantom_test_00000.png")),
                           (64, 64)))
    out = tmp_path / "out"
    assert infer("--direction", "mri2ct", "--upscale", "4", "--tile", "16", "--samples", "2",
                 "--input", str(tmp_path / "in"), "--reference", str(tmp_path / "ref"),
                 "--output", str(out), "--weights-dir", trained_smoke.weights_dir) == 0
    assert read_grey(str(out / "phantom_test_00000.png")).shape == (64, 64)
    # The deviation map is at the input's size.
    assert read_grey(str(out / "std" / "phantom_test_00000.png")).shape == (16, 16)
    with open(out / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)["mri2ct"]
    assert metrics["n"] == 1 and "uncertainty" in metrics
    assert {"model", "identity", "histogram_matching"} <= set(metrics)


def test_upscale_alone_against_a_reference(trained_smoke, tmp_path):
    # `--direction none --upscale` with `--reference` crashed in the report
    # (no domain to look SynthRAD's metrics up by); it scores the upscaled
    # images against the references, with bicubic as the identity baseline.
    images = os.path.join(trained_smoke.data, "Dataset", "images")
    ct = read_grey(os.path.join(images, "testA", "phantom_test_00000.png"))
    write_image(tmp_path / "in" / "a.png", cv2.resize(ct, (8, 8), interpolation=cv2.INTER_AREA))
    write_image(tmp_path / "ref" / "a.png", ct)
    out = tmp_path / "out"
    assert infer("--direction", "none", "--upscale", "4", "--input", str(tmp_path / "in"),
                 "--reference", str(tmp_path / "ref"), "--output", str(out),
                 "--weights-dir", trained_smoke.weights_dir) == 0
    assert read_grey(str(out / "a.png")).shape == ct.shape
    with open(out / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)["none"]
    assert metrics["n"] == 1 and {"model", "identity"} <= set(metrics)
    assert "synthrad" not in metrics


def test_a_failure_while_scoring_writes_no_outputs(trained_smoke, tmp_path, monkeypatch):
    # Scoring runs before the outputs are published: a failure in it (the
    # crash above was one) leaves no translated images without a report.
    def failing(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr("vaecyclegan.workflows.infer.evaluate_scans", failing)
    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "ref" / "a.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(RuntimeError, match="scoring failed"):
        infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--reference",
              str(tmp_path / "ref"), "--output", str(tmp_path / "out"),
              "--weights-dir", trained_smoke.weights_dir)
    assert not (tmp_path / "out").exists()


def test_the_reference_folder_as_output_is_refused(trained_smoke, tmp_path, capsys):
    # The references were replaced by the translations, and scored as such.
    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "ref" / "a.png", np.full((16, 16), 7, np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--reference",
                 str(tmp_path / "ref"), "--output", str(tmp_path / "ref"),
                 "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "--output is the --reference folder")
    assert os.listdir(tmp_path / "ref") == ["a.png"]
    assert (read_grey(str(tmp_path / "ref" / "a.png")) == 7).all()


def test_no_output_replaces_a_reference(trained_smoke, tmp_path, capsys):
    # A reference that pairs with no input but has a report file's name.
    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "out" / "a.png", np.full((16, 16), 7, np.uint8))
    write_image(tmp_path / "out" / "grid_mri2ct.png", np.full((16, 16), 7, np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--reference",
                 str(tmp_path / "out" / "a.png"), "--output", str(tmp_path / "out"),
                 "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "a.png", "would overwrite an input or a reference")
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "grid_mri2ct.png"]


def _infer_blank_pairs(trained_smoke, tmp_path, inputs, references):
    """infer.py mri2ct from `in/` (blank 16-px `inputs`) against `ref/`
    (blank `references`) into `out/`; returns the exit code."""
    for folder, names in (("in", inputs), ("ref", references)):
        for name in names:
            write_image(tmp_path / folder / name, np.zeros((16, 16), np.uint8))
    return infer("--direction", "mri2ct", "--input", str(tmp_path / "in"), "--reference",
                 str(tmp_path / "ref"), "--output", str(tmp_path / "out"),
                 "--weights-dir", trained_smoke.weights_dir)


def test_an_input_named_like_a_report_file_is_refused(trained_smoke, tmp_path, capsys):
    # Its translation was silently replaced by the comparison grid.
    code = _infer_blank_pairs(trained_smoke, tmp_path, ["grid_mri2ct.png"], ["grid_mri2ct.png"])
    assert_one_line_error(capsys, code, "grid_mri2ct.png", "two outputs would be written")
    assert not (tmp_path / "out").exists()


def test_two_references_of_one_name_are_refused(trained_smoke, tmp_path, capsys):
    # One of them was picked silently.
    code = _infer_blank_pairs(trained_smoke, tmp_path, ["a.png"], ["a.png", "a.jpg"])
    assert_one_line_error(capsys, code, "a.png", "a.jpg has the same name without extension")
    assert not (tmp_path / "out").exists()


def test_inputs_without_a_reference_are_counted_in_a_warning(trained_smoke, tmp_path, caplog):
    assert _infer_blank_pairs(trained_smoke, tmp_path, ["a.png", "b.png"], ["a.png"]) == 0
    assert "1 of 2 inputs have no reference" in caplog.text
    with open(tmp_path / "out" / "metrics.json", encoding="utf-8") as f:
        assert json.load(f)["mri2ct"]["n"] == 1


def test_a_dicom_reference_file_is_refused_as_such(trained_smoke, tmp_path, capsys):
    # It was called "not a readable image (corrupt, truncated or not an image)".
    from pydicom.data import get_testdata_file

    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    reference = tmp_path / "CT_small.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), reference)
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in" / "a.png"),
                 "--reference", str(reference), "--output", str(tmp_path / "out"),
                 "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "CT_small.dcm", "2-D image files only, not on a DICOM")
    assert not (tmp_path / "out").exists()


def test_an_upscaled_output_needs_a_reference_of_the_upscaled_size(trained_smoke, tmp_path,
                                                                   capsys):
    write_image(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    write_image(tmp_path / "ref" / "a.png", np.zeros((16, 16), np.uint8))
    code = infer("--direction", "mri2ct", "--upscale", "4", "--input", str(tmp_path / "in"),
                 "--reference", str(tmp_path / "ref"), "--output", str(tmp_path / "out"),
                 "--weights-dir", trained_smoke.weights_dir)
    assert_one_line_error(capsys, code, "reference is 16x16", "x4 of", "is 64x64")
    assert not (tmp_path / "out").exists()


def test_an_upscaled_16bit_synthetic_mri_is_scored_as_written(trained_smoke, tmp_path):
    # It was read back by its percentiles, as a real MRI is: rescaled, so
    # that the score was not that of the file written (nor of the same
    # translation without --upscale), and vaecyclegan-eval read it otherwise.
    from vaecyclegan.config import ModelConfig
    from vaecyclegan.evaluation.metrics import image_metrics
    from vaecyclegan.io.image_format import read_image_scan, read_result_scan

    rng = np.random.default_rng(5)
    write_image(tmp_path / "in" / "a.png", rng.integers(0, 3000, (16, 16), dtype=np.uint16))
    reference = rng.integers(0, 40000, (64, 64), dtype=np.uint16)
    write_image(tmp_path / "ref" / "a.png", reference)
    out = tmp_path / "out"
    assert infer("--direction", "ct2mri", "--upscale", "4", "--tile", "16",
                 "--input", str(tmp_path / "in"), "--reference", str(tmp_path / "ref"),
                 "--output", str(out), "--weights-dir", trained_smoke.weights_dir) == 0
    with open(out / "metrics.json", encoding="utf-8") as f:
        scored = json.load(f)["ct2mri"]["model"]
    intensity = ModelConfig.load(trained_smoke.weights_dir).intensity
    written = read_result_scan(str(out / "a.png"), "mri").to_unit(intensity)[0]
    truth = read_image_scan(str(tmp_path / "ref" / "a.png"), "mri").to_unit(intensity)[0]
    expected = image_metrics((written + 1) * 127.5, (truth + 1) * 127.5)
    assert scored["mae"] == pytest.approx(expected["mae"], rel=1e-4)
