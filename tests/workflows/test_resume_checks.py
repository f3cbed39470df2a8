"""What a resumed run must keep of the run it continues, checked on the
records a run writes (`options.json`, `run.json`, a checkpoint's step)."""

import json
import logging
import os

import numpy as np
import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.workflows.resume_checks import (
    check_resumed_dataset,
    check_resumed_folders,
    check_resumed_recipe,
    resumed_stages,
    warn_if_schedule_moves,
)
from vaecyclegan.workflows.run_folder import read_options, write_options
from vaecyclegan.workflows.settings import TrainSettings
from vaecyclegan.workflows.train import resolve_preset


def _checkpoint_at(logdir, stage, step):
    path = logdir / "checkpoint" / f"{stage}.npz"
    path.parent.mkdir(exist_ok=True)
    meta = json.dumps({"format": 2, "step": step, "extra": {}, "variables": []})
    np.savez(path, meta=np.frombuffer(meta.encode(), dtype=np.uint8))


def _started(tmp_path, stage="translate", **options):
    """A run folder whose last run had these options, and checkpoints of
    the stages it trained."""
    settings = TrainSettings(preset="smoke", logdir=str(tmp_path), stage=stage, **options)
    write_options(str(tmp_path), settings)
    for name in {"translate": ["translation"], "sr": ["upscaler"],
                 "all": ["translation", "upscaler"]}[stage]:
        _checkpoint_at(tmp_path, name, 2)
    return settings


def _recipe(tmp_path, **now):
    settings = TrainSettings(preset="smoke", **now)
    options = read_options(str(tmp_path))
    check_resumed_recipe(str(tmp_path), settings, options,
                         resumed_stages(str(tmp_path), settings, options))


def test_a_resume_with_another_recipe_is_refused_naming_each_change(tmp_path):
    # A resume with --seed 5 --lr 1e-3 trained on, and config.json recorded
    # the second recipe as the whole run's.
    _started(tmp_path, steps=10)
    with pytest.raises(InputError) as refused:
        _recipe(tmp_path, stage="translate", steps=20, seed=5, lr=1e-3)
    assert refused.value.path == str(tmp_path / "options.json")
    assert ("this run started with --seed 0 --lr 0.0002; resuming with --seed 5 --lr 0.001 "
            "would train one model on two recipes") in refused.value.problem


def test_a_resume_that_names_the_presets_own_values_or_changes_steps_is_accepted(tmp_path):
    smoke = PRESETS["smoke"]
    _started(tmp_path, steps=10)
    _recipe(tmp_path, stage="translate", steps=40, lr=smoke.lr, batch_size=smoke.batch_size,
            log_every=3, eval_every=5, precision="float32")
    # A value given at the start must be given again.
    _started(tmp_path, augmentation="flips")
    _recipe(tmp_path, stage="translate", augmentation="flips")
    with pytest.raises(InputError, match="--augmentation flips; resuming with --augmentation"):
        _recipe(tmp_path, stage="translate")


def test_a_crop_factor_added_on_resume_is_refused(tmp_path):
    # The preset's None (whole slices) was skipped: crops were accepted.
    _started(tmp_path)
    with pytest.raises(InputError, match="--crop-factor"):
        _recipe(tmp_path, stage="translate", crop_factor=2.0)


def test_only_the_resumed_stages_recipe_is_compared(tmp_path):
    # After a --stage sr run with --sr-degradations blur, a translators'
    # resume was refused for lacking --sr-degradations, which --stage
    # translate refuses: only --no-resume was left.
    _started(tmp_path, stage="all", sr_degradations=("blur",))
    _recipe(tmp_path, stage="translate")
    with pytest.raises(InputError, match="--sr-degradations blur; resuming with "
                                         "--sr-degradations \\(none\\)"):
        _recipe(tmp_path, stage="all")
    _recipe(tmp_path, stage="sr", sr_degradations=("blur",))
    # Degradations in another order are the same.
    _started(tmp_path, stage="sr", sr_degradations=("blur", "noise"))
    _recipe(tmp_path, stage="sr", sr_degradations=("noise", "blur"))
    # The last run (an sr one, seed 1) did not train the translators: their
    # resume is not compared with its record.
    _started(tmp_path, stage="sr", seed=1)
    _checkpoint_at(tmp_path, "translation", 2)
    _recipe(tmp_path, stage="translate", seed=0)
    with pytest.raises(InputError, match="--seed 1; resuming with --seed 0"):
        _recipe(tmp_path, stage="sr", seed=0)


def test_a_resume_on_another_dataset_is_refused_before_it_is_read(tmp_path):
    _started(tmp_path)
    settings = TrainSettings(preset="smoke", stage="translate", data="kaggle")
    options = read_options(str(tmp_path))
    with pytest.raises(InputError, match="this run trained on --data phantom; resuming on "
                                         "--data kaggle"):
        check_resumed_dataset(str(tmp_path), settings, options,
                              resumed_stages(str(tmp_path), settings, options))


def test_a_resume_on_other_data_folders_is_refused_from_anywhere(tmp_path, monkeypatch):
    from vaecyclegan.data.dataset_layout import resolve_dataset
    from vaecyclegan.workflows.run_folder import write_run_file

    datasets = []
    for name in ("first", "second"):
        for sub in ("trainA", "trainB"):
            (tmp_path / name / "Dataset" / "images" / sub).mkdir(parents=True)
        datasets.append(str(tmp_path / name))
    run = tmp_path / "run"
    settings = _started(run, data=datasets[0])
    write_run_file(str(run), datasets[0], resolve_dataset(datasets[0]), settings)
    # The same folder named from elsewhere, relatively, is the same data.
    monkeypatch.chdir(tmp_path / "first")
    check_resumed_folders(str(run), os.path.abspath("."), resolve_dataset("."),
                          TrainSettings(preset="smoke", stage="translate", data="."))
    with pytest.raises(InputError) as refused:
        check_resumed_folders(str(run), datasets[1], resolve_dataset(datasets[1]),
                              TrainSettings(preset="smoke", stage="translate",
                                            data=datasets[1]))
    assert refused.value.problem.startswith(f"this run trained on --data {datasets[0]}; "
                                            f"resuming on {datasets[1]}")


def test_the_phantom_resumed_from_another_folder_is_the_same_data(tmp_path, monkeypatch):
    # Its folder under the relative --data-root differed from elsewhere,
    # and the resume was refused after rendering it again.
    from vaecyclegan.data.dataset_layout import resolve_dataset
    from vaecyclegan.workflows.run_folder import write_run_file

    phantom = tmp_path / "a" / "data" / "phantom_32px_seed0"
    for sub in ("trainA", "trainB"):
        (phantom / "Dataset" / "images" / sub).mkdir(parents=True)
    run = tmp_path / "run"
    settings = _started(run)
    write_run_file(str(run), str(phantom), resolve_dataset(str(phantom)), settings)
    other = tmp_path / "b" / "data" / "phantom_32px_seed0"
    for sub in ("trainA", "trainB"):
        (other / "Dataset" / "images" / sub).mkdir(parents=True)
    check_resumed_folders(str(run), str(other), resolve_dataset(str(other)),
                          TrainSettings(preset="smoke", stage="translate"))


def _warned(tmp_path, caplog, **now):
    settings = TrainSettings(preset="smoke", **now)
    options = read_options(str(tmp_path))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        warn_if_schedule_moves(str(tmp_path), settings, resolve_preset(settings), options,
                               resumed_stages(str(tmp_path), settings, options))
    return [record.getMessage() for record in caplog.records]


def test_extending_a_finished_run_warns_that_its_learning_rate_restarts(tmp_path, caplog):
    # 10 steps decay to zero at step 10; 20 steps put the decay's start at
    # 10, so step 11 ran at the full rate again without a word.
    _started(tmp_path, steps=10)
    _checkpoint_at(tmp_path, "translation", 10)
    [message] = _warned(tmp_path, caplog, stage="translate", steps=20)
    assert ("the learning rate at the checkpoint's step 10 was 0 in the run so far and is "
            "0.0002 with the steps now asked for (--lr-decay-start sets") in message
    # Control: keeping the decay's start where it was is the same schedule
    # up to the checkpoint's step, and says nothing.
    _started(tmp_path, steps=20)
    _checkpoint_at(tmp_path, "translation", 8)
    assert _warned(tmp_path, caplog, stage="translate", steps=40, lr_decay_start=10) == []
    # A --stage sr run does not touch the translators' checkpoint.
    _started(tmp_path, stage="all", steps=10)
    _checkpoint_at(tmp_path, "translation", 10)
    assert _warned(tmp_path, caplog, stage="sr", steps=20) == []
