"""The command lines' shared ending: every stop is one `error: <file>:
<problem>` line."""

import os
import subprocess
import sys

import pytest

from vaecyclegan.cli.common import run_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_an_interrupt_ends_as_one_error_line_naming_the_program(capsys, monkeypatch):
    # It read "error: interrupted", without the `<file>:` part.
    monkeypatch.setattr(sys, "argv", ["/usr/bin/vaecyclegan-infer", "--input", "x"])

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_cli(interrupted, []) == 130
    assert capsys.readouterr().err == "error: vaecyclegan-infer: interrupted\n"


def test_a_subcommands_options_are_printed_against_its_own_defaults(capsys):
    # vaecyclegan-data printed "seed: 0 [default: None]" for a seed left alone.
    from vaecyclegan.cli.common import print_options
    from vaecyclegan.cli.data import build_parser

    parser = build_parser()
    print_options(parser, parser.parse_args(["realistic", "--out", "x", "--size", "64"]))
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert "[default" not in lines["seed"] and "[default" not in lines["style"]
    assert "[default" not in lines["command"]
    assert lines["size"].endswith("[default: 256]")
    # A required option has no default to differ from: infer.py printed
    # "direction: mri2ct [default: None]".
    assert "[default" not in lines["out"]


def test_a_ct_window_of_negative_level_reaches_every_parser_as_written():
    from vaecyclegan.cli.common import attach_negative_windows
    from vaecyclegan.cli.evaluate import build_parser as eval_parser
    from vaecyclegan.cli.train import build_parser as train_parser

    argv = attach_negative_windows(["--ct-window", "-600,1500", "--tissue-thresholds", "-200",
                                    "200"])
    assert argv == ["--ct-window=-600,1500", "--tissue-thresholds", "-200", "200"]
    assert train_parser().parse_args(argv[:1]).ct_window == (-600.0, 1500.0)
    assert eval_parser().parse_args(argv).ct_window == (-600.0, 1500.0)
    # An option after --ct-window is left alone.
    assert attach_negative_windows(["--ct-window", "--help"]) == ["--ct-window", "--help"]


def test_installed_commands_name_themselves_in_their_errors(capsys, monkeypatch):
    # A wheel's user has no train.py; the error named it all the same.
    from vaecyclegan.cli import infer, train

    for module, installed, script in ((train, "vaecyclegan-train", "train.py"),
                                      (infer, "vaecyclegan-infer", "infer.py")):
        for argv0, name in ((f"/venv/bin/{installed}", installed), (script, script)):
            monkeypatch.setattr(sys, "argv", [argv0])
            with pytest.raises(SystemExit) as stop:
                module.main(["--bogus"])
            assert stop.value.code == 2
            assert capsys.readouterr().err.startswith(f"error: {name}: ")


_WITHOUT_BACKEND = """
import sys
sys.modules[{package!r}] = None  # as if it were not installed
sys.argv = ["/venv/bin/vaecyclegan-infer", *sys.argv[1:]]
from vaecyclegan.cli.infer import entry_point
entry_point()
"""


@pytest.mark.parametrize("backend, line", [
    ("jax", "error: vaecyclegan-infer: the Keras backend jax (KERAS_BACKEND or "
     "~/.keras/keras.json) is not installed: pip install 'vaecyclegan[jax]'"),
    ("torch", "error: vaecyclegan-infer: the Keras backend torch (KERAS_BACKEND or "
     "~/.keras/keras.json) is not installed: pip install 'vaecyclegan[torch]'"),
    ("nonesuch", "error: vaecyclegan-infer: Unable to import backend : nonesuch"),
    ("openvino", "error: vaecyclegan-infer: the Keras backend openvino (KERAS_BACKEND or "
     "~/.keras/keras.json) is not installed; this project runs on the tensorflow, jax and "
     "torch backends"),
])
def test_a_keras_backend_that_is_not_installed_is_one_line(tmp_path, backend, line):
    # It was a 58-line traceback after the options.
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    code = _WITHOUT_BACKEND.format(package=backend) + "\n"
    result = subprocess.run(
        [sys.executable, "-c", code, "--direction", "mri2ct", "--input", str(image),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": REPO})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(line) and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_the_dataset_command_names_the_training_command_the_user_has(monkeypatch):
    # An installed vaecyclegan-data told its users to run train.py.
    from vaecyclegan.cli import data

    monkeypatch.setattr(sys, "argv", ["/venv/bin/vaecyclegan-data"])
    assert data._train_command() == "vaecyclegan-train"
    monkeypatch.setattr(sys, "argv", ["vaecyclegan/cli/data.py"])
    assert data._train_command() == "python train.py"


def test_each_command_module_runs_as_python_dash_m_with_everything_defined():
    # `python -m vaecyclegan.cli.data` ran its command before a helper
    # below the `__main__` guard was defined: a NameError after the work.
    import ast
    import pathlib

    import vaecyclegan.cli

    folder = pathlib.Path(vaecyclegan.cli.__file__).parent
    guarded = []
    for path in sorted(folder.glob("*.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        guards = [index for index, node in enumerate(body) if isinstance(node, ast.If)
                  and "__main__" in ast.unparse(node.test)]
        if guards:
            guarded.append(path.name)
            assert guards == [len(body) - 1], f"{path.name}: the __main__ guard is not last"
    assert {"data.py", "infer.py", "train.py", "evaluate.py", "convert.py"} <= set(guarded)
