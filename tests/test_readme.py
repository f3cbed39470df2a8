import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(REPO, name), encoding="utf-8") as f:
        return f.read()


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme_commands = [line for block in _bash_blocks(_read("README.md"))
                       for line in block.strip().splitlines()]
    ci_lines = [line for line in _read(".ci/run").splitlines()
                if line and not line.startswith(("#", "set ", "cd "))]
    assert len(ci_lines) == 1
    assert ci_lines[0] in readme_commands
    assert "pytest" in ci_lines[0]


def test_readme_main_job_trains_on_the_phantom():
    first = _bash_blocks(_read("README.md"))[0].strip()
    assert first.endswith("python train.py")


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", _read("README.md"), flags=re.S)


def test_readme_loading_example_runs(trained_smoke):
    block = _python_blocks()[0]
    # The example reads ./weights; point it at the smoke run's weights folder.
    block = block.replace('"weights', f'"{trained_smoke.root}/weights')
    import numpy as np

    namespace = {"images": np.zeros((1, 32, 32, 3), "float32")}
    exec(block, namespace)  # noqa: S102 - the README's own example
    assert isinstance(namespace["ct"], np.ndarray) and namespace["ct"].shape == (1, 32, 32, 3)
    assert namespace["ct_grey"].shape == (1, 32, 32)


def test_readme_translator_example_gives_what_infer_writes(trained_smoke, tmp_path):
    # At a pixel scale other than the image's own (weights trained on
    # images twice the size), where the network alone differs from infer.py.
    import json
    import shutil

    import numpy as np

    from vaecyclegan.cli.infer import main as infer_main
    from vaecyclegan.io.image_format import read_grey

    weights = tmp_path / "weights"
    shutil.copytree(trained_smoke.weights_dir, weights)
    config = json.loads((weights / "config.json").read_text())
    config["pixel_scale"]["resize_factor"] = 2.0
    (weights / "config.json").write_text(json.dumps(config))
    inputs = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    name = sorted(os.listdir(inputs))[0]
    assert infer_main(["--direction", "mri2ct", "--input", inputs, "--output",
                       str(tmp_path / "out"), "--weights-dir", str(weights)]) in (None, 0)
    load, translate = _python_blocks()[:2]
    namespace = {"images": np.zeros((1, 32, 32, 3), "float32"),
                 "mri_pixels": read_grey(os.path.join(inputs, name))}
    for block in (load, translate):
        exec(block.replace('"weights', f'"{weights}'), namespace)  # noqa: S102
    written = read_grey(str(tmp_path / "out" / name))
    assert namespace["ct_pixels"].dtype == written.dtype == np.uint8
    assert np.abs(namespace["ct_pixels"].astype(int) - written).max() <= 1
    # Control: the network alone at the image's own scale is not infer.py's.
    unit = namespace["mri_pixels"].astype("float32") / 127.5 - 1.0
    alone = namespace["g_target"].predict(np.repeat(unit[None, ..., None], 3, -1), verbose=0)
    alone = np.round((np.clip(alone.mean(axis=-1)[0], -1, 1) + 1) * 127.5)
    assert np.abs(alone - written).max() > 1


def test_readme_workflow_example_translates_like_infer(trained_smoke, tmp_path, monkeypatch):
    # The block runs in the user's folder: ./weights, scans/mri, out/ct.
    import shutil

    import numpy as np

    from vaecyclegan.io.image_format import read_grey

    block = _python_blocks()[2]
    assert "run_inference" in block
    inputs = os.path.join(trained_smoke.data, "Dataset", "images", "testB")
    name = sorted(os.listdir(inputs))[0]
    shutil.copytree(trained_smoke.weights_dir, tmp_path / "weights")
    (tmp_path / "scans" / "mri").mkdir(parents=True)
    shutil.copy(os.path.join(inputs, name), tmp_path / "scans" / "mri" / name)
    monkeypatch.chdir(tmp_path)
    exec(block, {})  # noqa: S102 - the README's own example
    assert os.listdir(tmp_path / "out" / "ct") == [name]
    assert os.listdir(tmp_path / "scans" / "mri") == [name]
    from vaecyclegan.cli.infer import main as infer_main

    assert infer_main(["--direction", "mri2ct", "--input", "scans/mri",
                       "--output", "by_infer"]) in (None, 0)
    written = read_grey(str(tmp_path / "out" / "ct" / name))
    assert np.array_equal(written, read_grey(str(tmp_path / "by_infer" / name)))
    assert not np.array_equal(written, read_grey(os.path.join(inputs, name)))
