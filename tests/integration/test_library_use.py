"""The workflows called from Python with typed settings, as the README
shows, give what the command lines give."""

import os

import numpy as np

from vaecyclegan.cli.infer import main as infer_main
from vaecyclegan.io.image_format import read_grey
from vaecyclegan.workflows.evaluate import evaluate
from vaecyclegan.workflows.infer import run_inference
from vaecyclegan.workflows.settings import EvalSettings, InferSettings


def test_run_inference_with_settings_equals_the_command_line(trained_smoke, tmp_path):
    inputs = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    library, command = tmp_path / "library", tmp_path / "command"
    written = run_inference(InferSettings(direction="mri2ct", input=inputs, output=str(library),
                                          weights_dir=trained_smoke.weights_dir))
    infer_main(["--direction", "mri2ct", "--input", inputs, "--output", str(command),
                "--weights-dir", trained_smoke.weights_dir])
    names = sorted(os.listdir(inputs))
    assert sorted(os.path.basename(p) for p in written) == names
    assert sorted(os.listdir(library)) == sorted(os.listdir(command)) == names
    for name in names:
        np.testing.assert_array_equal(read_grey(str(library / name)),
                                      read_grey(str(command / name)))


def test_evaluate_with_settings_scores_the_run(trained_smoke, tmp_path):
    evaluations = evaluate(EvalSettings(run=trained_smoke.logdir, out=str(tmp_path)))
    assert [e.direction for e in evaluations] == ["mri2ct", "ct2mri"]
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "index.html").is_file()
