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


def test_readme_loading_example_runs(trained_smoke):
    block = re.search(r"```python\n(.*?)```", _read("README.md"), flags=re.S).group(1)
    # The example reads ./weights; point it at the smoke run's weights folder.
    block = block.replace('"weights', f'"{trained_smoke.root}/weights')
    import numpy as np

    namespace = {"images": np.zeros((1, 32, 32, 3), "float32")}
    exec(block, namespace)  # noqa: S102 - the README's own example
    assert tuple(namespace["ct"].shape) == (1, 32, 32, 3)
