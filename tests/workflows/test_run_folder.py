"""An earlier run in the folder of a run that starts afresh is moved aside,
whole, with what the new run keeps in the folder left in place."""

import os

from vaecyclegan.workflows.run_folder import EARLIER_RUN_PREFIX, set_aside_earlier_run


def test_an_earlier_run_is_moved_aside_but_kept_folders_stay(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "translation.npz").write_bytes(b"old")
    (run / "options.json").write_text("{}")
    (run / "checkpoint_evals.csv").write_text("step\n")
    (run / "weights" / "best").mkdir(parents=True)
    (run / "data").mkdir()
    target = set_aside_earlier_run(str(run), keep=(str(run / "weights"), str(run / "data"),
                                                   None))
    assert os.path.basename(target).startswith(EARLIER_RUN_PREFIX)
    assert sorted(os.listdir(run)) == sorted(["weights", "data", os.path.basename(target)])
    assert sorted(os.listdir(target)) == ["checkpoint", "checkpoint_evals.csv", "options.json"]
    assert (run / os.path.basename(target) / "checkpoint" / "translation.npz").read_bytes() \
        == b"old"
    # A second fresh start keeps the first set-aside folder where it is.
    (run / "options.json").write_text("{}")
    second = set_aside_earlier_run(str(run), keep=(str(run / "weights"), str(run / "data")))
    assert second != target and os.listdir(second) == ["options.json"]
    assert os.path.isdir(target)


def test_a_folder_without_an_earlier_run_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert set_aside_earlier_run(str(tmp_path)) is None
    assert os.listdir(tmp_path) == ["notes.txt"]
