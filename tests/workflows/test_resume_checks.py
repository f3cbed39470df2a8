"""What a resumed run must keep of the run it continues, checked on the
records a run writes (`options.json`, `run.json`, a checkpoint's step)."""

import json
import logging

import numpy as np
import pytest

from vaecyclegan.errors import InputError
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.workflows.resume_checks import (
    check_resumed_data,
    check_resumed_recipe,
    warn_if_schedule_moves,
)
from vaecyclegan.workflows.run_folder import write_options
from vaecyclegan.workflows.settings import TrainSettings
from vaecyclegan.workflows.train import resolve_preset


def _started(tmp_path, **options):
    settings = TrainSettings(preset="smoke", logdir=str(tmp_path), **options)
    write_options(str(tmp_path), settings)
    return settings


def test_a_resume_with_another_recipe_is_refused_naming_each_change(tmp_path):
    # A resume with --seed 5 --lr 1e-3 trained on, and config.json recorded
    # the second recipe as the whole run's.
    _started(tmp_path, steps=10)
    with pytest.raises(InputError) as refused:
        check_resumed_recipe(str(tmp_path), TrainSettings(preset="smoke", steps=20, seed=5,
                                                          lr=1e-3))
    assert refused.value.path == str(tmp_path / "options.json")
    assert ("this run started with --seed 0 --lr 0.0002; resuming with --seed 5 --lr 0.001 "
            "would train one model on two recipes") in refused.value.problem


def test_a_resume_that_names_the_presets_own_values_or_changes_steps_is_accepted(tmp_path):
    smoke = PRESETS["smoke"]
    _started(tmp_path, steps=10)
    check_resumed_recipe(str(tmp_path), TrainSettings(
        preset="smoke", steps=40, lr=smoke.lr, batch_size=smoke.batch_size, log_every=3,
        eval_every=5, precision="float32", sr_degradations=()))
    # A value given at the start must be given again.
    _started(tmp_path, augmentation="flips")
    check_resumed_recipe(str(tmp_path), TrainSettings(preset="smoke", augmentation="flips"))
    with pytest.raises(InputError, match="--augmentation flips; resuming with --augmentation"):
        check_resumed_recipe(str(tmp_path), TrainSettings(preset="smoke"))


def test_a_resume_on_other_data_folders_is_refused(tmp_path):
    from vaecyclegan.data.dataset_layout import resolve_dataset
    from vaecyclegan.workflows.run_folder import write_run_file

    datasets = []
    for name in ("first", "second"):
        for sub in ("trainA", "trainB"):
            (tmp_path / name / "Dataset" / "images" / sub).mkdir(parents=True)
        datasets.append(str(tmp_path / name))
    settings = TrainSettings(preset="smoke", data=datasets[0])
    folders = resolve_dataset(datasets[0])
    write_run_file(str(tmp_path), datasets[0], folders, settings)
    check_resumed_data(str(tmp_path), datasets[0] + "/", folders, settings)
    with pytest.raises(InputError) as refused:
        check_resumed_data(str(tmp_path), datasets[1], resolve_dataset(datasets[1]),
                           TrainSettings(preset="smoke", data=datasets[1]))
    assert refused.value.problem.startswith(f"this run trained on --data {datasets[0]}; "
                                            f"resuming on {datasets[1]}")


def _checkpoint_at(logdir, stage, step):
    path = logdir / "checkpoint" / f"{stage}.npz"
    path.parent.mkdir(exist_ok=True)
    meta = json.dumps({"format": 2, "step": step, "extra": {}, "variables": []})
    np.savez(path, meta=np.frombuffer(meta.encode(), dtype=np.uint8))


def test_extending_a_finished_run_warns_that_its_learning_rate_restarts(tmp_path, caplog):
    # 10 steps decay to zero at step 10; 20 steps put the decay's start at
    # 10, so step 11 ran at the full rate again without a word.
    _started(tmp_path, steps=10)
    _checkpoint_at(tmp_path, "translation", 10)
    settings = TrainSettings(preset="smoke", steps=20)
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        warn_if_schedule_moves(str(tmp_path), settings, resolve_preset(settings))
    [record] = caplog.records
    assert ("the learning rate at the checkpoint's step 10 was 0 in the run so far and is "
            "0.0002 with the steps now asked for (--lr-decay-start sets") in record.getMessage()
    # Control: keeping the decay's start where it was is the same schedule
    # up to the checkpoint's step, and says nothing.
    caplog.clear()
    _started(tmp_path, steps=20)
    _checkpoint_at(tmp_path, "translation", 8)
    settings = TrainSettings(preset="smoke", steps=40, lr_decay_start=10)
    with caplog.at_level(logging.WARNING, logger="vaecyclegan"):
        warn_if_schedule_moves(str(tmp_path), settings, resolve_preset(settings))
    assert caplog.records == []
