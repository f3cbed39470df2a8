"""The package's shape, as its README maps it: sub-packages by role, the
command-line layer alone parses arguments, the networks build without
TensorFlow, one place knows the file formats."""

import ast
import os
import pathlib
import re
import subprocess
import sys

from tests.harness import REPO

PACKAGE = pathlib.Path(REPO) / "vaecyclegan"
SUB_PACKAGES = ("cli", "data", "evaluation", "io", "training", "translation", "upscaler",
                "workflows")


def _modules(folder=PACKAGE):
    return sorted(folder.rglob("*.py"))


def _imported_names(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_top_level_holds_at_most_eight_modules_and_the_sub_packages():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(SUB_PACKAGES)


def test_each_sub_package_says_what_lives_there():
    for name in SUB_PACKAGES:
        init = PACKAGE / name / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and len(docstring) > 80, name
        modules = [p.stem for p in (PACKAGE / name).glob("*.py") if p.stem != "__init__"]
        # Every module of the sub-package is named in its docstring.
        missing = [m for m in modules if f"`{m}`" not in docstring]
        assert not missing, (name, missing)


def test_the_package_readme_maps_every_module_and_nothing_that_is_gone():
    text = (PACKAGE / "README.md").read_text(encoding="utf-8")
    # Each module is a table row under its folder's heading.
    named, folder = set(), ""
    for line in text.splitlines():
        heading = re.match(r"## `(\w+)/`", line)
        if heading or line == "## Top level":
            folder = heading.group(1) + "/" if heading else ""
        row = re.match(r"\| `(\w+\.py)` \|", line)
        if row:
            named.add(folder + row.group(1))
    # A sub-package's __init__ is its folder, which its heading names.
    modules = {str(p.relative_to(PACKAGE)) for p in _modules()
               if not (p.name == "__init__.py" and p.parent != PACKAGE)}
    # Control: the rows are found where they are.
    assert "translation/trainer.py" in named and "config.py" in named
    assert sorted(modules - named) == [] and sorted(named - modules) == []


def test_only_the_command_lines_parse_arguments():
    users = [str(p.relative_to(PACKAGE)) for p in _modules()
             if "argparse" in _imported_names(p) and p.parent.name != "cli"]
    assert users == []


def test_no_format_branches_outside_the_format_registry():
    # `kind` is the file format of a scan; only vaecyclegan/io decides by it.
    branch = re.compile(r"\bkind\s*(==|!=)|\.kind\s+(not\s+)?in\b|==\s*\w*\.kind\b")
    # Control: the pattern sees the branches this rule replaced.
    assert branch.search('    if scan.kind == "image":')
    assert branch.search('    elif source.kind in ("dicom", "nifti"):')
    found = [f"{p.relative_to(PACKAGE)}:{n}" for p in _modules() if p.parent.name != "io"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if branch.search(line) and "dtype.kind" not in line]
    assert found == []


def test_no_reference_to_documents_outside_the_project():
    found = [str(p) for p in _modules() if "DESIGN" in p.read_text(encoding="utf-8")]
    assert found == []


def test_the_networks_build_without_tensorflow():
    # PyTorch is Keras' other backend on this project's machines (the test
    # extra installs it); under it nothing may pull TensorFlow in.
    script = (
        "import sys\n"
        "from tests.harness import tiny_model_config\n"
        "from vaecyclegan.networks import build_network\n"
        "config = tiny_model_config()\n"
        "for name in ('g_target', 'g_source', 'd_source', 'd_target'):\n"
        "    build_network(config, name)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_the_control_detects_a_tensorflow_import():
    # The same check sees TensorFlow when a module the networks import loads it.
    script = ("import sys\nimport vaecyclegan.upscaler.degraded_dataset\n"
              "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": REPO})
    assert result.stdout.strip().splitlines()[-1] == "True"


def _code_lines(source_lines, node):
    """Lines of code of a function: no blank lines, comments or docstring."""
    skip = set()
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        skip = set(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number in range(node.lineno, node.end_lineno + 1)
               if number not in skip and source_lines[number - 1].strip()
               and not source_lines[number - 1].strip().startswith("#"))


def test_no_function_is_over_60_lines_without_a_reason_beside_it():
    # A reason is a comment `# long: ...` in the comment lines above the def.
    long = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                above, number = [], node.lineno - 2
                while number >= 0 and lines[number].strip().startswith("#"):
                    above.append(lines[number].strip())
                    number -= 1
                reason = any(line.startswith("# long:") for line in above)
                if _code_lines(lines, node) > 60 and not reason:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert long == []


def test_the_line_count_sees_a_long_function():
    # Control: 61 statements count as 61 lines; a docstring and comments do not.
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    source = f'def f():\n    """Doc\n    string."""\n    # a comment\n{body}\n'
    node = ast.parse(source).body[0]
    assert _code_lines(source.splitlines(), node) == 62  # the def line and 61 statements


def test_the_files_the_suite_hands_out_first_exist():
    # A renamed file would silently lose its place at the front (and the
    # two workers would end minutes apart again).
    from tests.conftest import LONGEST_FILES

    missing = [path for path in LONGEST_FILES if not (pathlib.Path(REPO) / path).is_file()]
    assert not missing, missing
