"""The source distribution: what distribution packagers and offline users
build and test from."""

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tracked_files():
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.decode()
    return [name for name in listing.split("\0") if name]


def test_the_sdist_carries_the_tests_and_what_the_readme_runs(tmp_path):
    # It held 6 of the 100 test files, none of which could run without
    # tests/harness.py, and no train.py for the README's main command.
    if shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")):
        pytest.skip("needs the git checkout to know which files are tracked")
    tracked = _tracked_files()
    source = tmp_path / "source"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), source / name)
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)],
                   cwd=source, check=True, capture_output=True, timeout=300)
    [archive] = tmp_path.glob("vaecyclegan-*.tar.gz")
    with tarfile.open(archive) as sdist:
        carried = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    # Every tracked file but git's own settings.
    needed = [name for name in tracked if not name.startswith(".git")]
    assert "tests/harness.py" in needed and "train.py" in needed
    assert sorted(set(needed) - carried) == []
    assert not any("__pycache__" in name for name in carried)
