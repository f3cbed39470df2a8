"""An earlier run in the folder of a run that starts afresh is moved aside:
the files a run writes, and nothing else of the folder."""

import os

from vaecyclegan.workflows.run_folder import EARLIER_RUN_PREFIX, set_aside_earlier_run


def test_an_earlier_runs_files_are_moved_aside_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "translation.npz").write_bytes(b"old")
    written = ["options.json", "run.json", "losses.csv", "sr_gan_losses.csv",
               "checkpoint_evals.csv", "metrics.json", "sr_metrics.json",
               "metrics_per_image.csv", "grid_mri2ct.png", "index.html"]
    for name in written:
        (run / name).write_text("{}")
    (run / "tensorboard").mkdir()
    # A folder used as --logdir . or beside data: what the run did not
    # write stays where it is.
    for name in ("trainA", "weights", ".git"):
        (run / name).mkdir()
    (run / "notes.txt").write_text("mine")
    target = set_aside_earlier_run(str(run))
    assert os.path.basename(target).startswith(EARLIER_RUN_PREFIX)
    assert sorted(os.listdir(run)) == sorted([".git", "notes.txt", "trainA", "weights",
                                              os.path.basename(target)])
    assert sorted(os.listdir(target)) == sorted(written + ["checkpoint", "tensorboard"])
    assert (run / os.path.basename(target) / "checkpoint" / "translation.npz").read_bytes() \
        == b"old"
    # A second fresh start keeps the first set-aside folder where it is.
    (run / "options.json").write_text("{}")
    second = set_aside_earlier_run(str(run))
    assert second != target and os.listdir(second) == ["options.json"]
    assert os.path.isdir(target)


def test_a_folder_without_an_earlier_run_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert set_aside_earlier_run(str(tmp_path)) is None
    assert set_aside_earlier_run(str(tmp_path / "absent")) is None
    assert os.listdir(tmp_path) == ["notes.txt"]
