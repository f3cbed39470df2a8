"""`run_stage`: one training stage built in the strategy's scope, trained
for its steps, checkpointed, logged, and resumed from its checkpoint."""

import contextlib
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.errors import InputError
from vaecyclegan.training.checkpoint import checkpoint_path, load_checkpoint
from vaecyclegan.training.distribution import make_strategy
from vaecyclegan.training.stage_runner import Stage, StageSettings, run_stage
from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet

TINY = RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4)


class _RecordingStrategy:
    """The default strategy, noting whether its scope is entered."""

    def __init__(self):
        self.strategy = make_strategy("default")
        self.inside = False

    @contextlib.contextmanager
    def scope(self):
        self.inside = True
        try:
            with self.strategy.scope():
                yield
        finally:
            self.inside = False


class _Tiny:
    """A tiny L1 upscaler stage that records what `run_stage` asks of it."""

    def __init__(self, steps, seed=0):
        keras.utils.set_random_seed(seed)
        self.rrdbnet = build_rrdbnet(TINY, channels=1)
        self.offsets = []
        self.built_in_scope = None
        self.stage = Stage("upscaler", steps, images_per_step=2, losses_csv="sr_losses.csv",
                           description="upscale", make_dataset=self.make_dataset)

    def make_dataset(self, offset):
        self.offsets.append(offset)
        rng = np.random.default_rng(offset)
        low = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
        high = rng.uniform(0, 1, (2, 32, 32, 1)).astype("float32")
        return tf.data.Dataset.from_tensors((low, high)).repeat()

    def build(self, settings):
        def build_trainer():
            self.built_in_scope = settings.strategy.inside
            trainer = L1UpscalerTrainer(self.rrdbnet)
            trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
            return trainer
        return build_trainer

    def run(self, logdir, make_callbacks=None, extra_state=None, **settings):
        settings = StageSettings(_RecordingStrategy(), **settings)
        return run_stage(self.build(settings), self.stage, str(logdir), settings,
                         make_callbacks, extra_state)


class _StepCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def _csv_steps(path):
    with open(path, encoding="utf-8") as f:
        return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]


def _checkpoint(logdir, steps):
    """The step and extra state of the upscaler checkpoint in `logdir`."""
    tiny = _Tiny(steps, seed=1)
    trainer = tiny.build(StageSettings(_RecordingStrategy()))()
    return load_checkpoint(checkpoint_path(str(logdir), "upscaler"), trainer)


def test_a_stage_trains_its_steps_and_writes_its_checkpoint_and_losses(tmp_path):
    tiny = _Tiny(steps=3)
    counter = _StepCounter()
    progress = tiny.run(tmp_path, make_callbacks=lambda start, extra: [counter])

    assert tiny.built_in_scope is True
    assert tiny.offsets == [0]
    assert progress.initial_step == 0 and progress.step == 3 and counter.steps == 3
    assert isinstance(progress.model, L1UpscalerTrainer)
    assert int(progress.model.optimizer.iterations) == 3
    assert progress.description == "upscale"
    assert _csv_steps(tmp_path / "sr_losses.csv") == [1, 2, 3]
    step, extra = _checkpoint(tmp_path, 3)
    assert step == 3 and extra == {}


def test_a_second_run_resumes_at_the_saved_step_and_trains_nothing_more(tmp_path, caplog):
    trained = _Tiny(steps=3)
    trained.run(tmp_path)

    again = _Tiny(steps=3, seed=1)
    seen = []
    with caplog.at_level(logging.INFO, logger="vaecyclegan.training.stage_runner"):
        progress = again.run(tmp_path, make_callbacks=lambda start, extra: seen.append(start) or [])
    assert seen == [3]
    assert progress.initial_step == progress.step == 3
    assert again.offsets == []  # no dataset made, no step taken
    assert progress.summary("loss") == "3 steps, all done before this run (its checkpoint)"
    assert "Resuming from step 3 of 3" in caplog.text
    # The weights are the checkpoint's, not the second network's own.
    for a, b in zip(trained.rrdbnet.variables, again.rrdbnet.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _csv_steps(tmp_path / "sr_losses.csv") == [1, 2, 3]


def test_a_checkpoint_past_the_steps_asked_for_is_refused(tmp_path):
    # "Resuming from step 3 of 1": config.json then said 1 step of weights
    # trained for 3.
    _Tiny(steps=3).run(tmp_path)
    with pytest.raises(InputError, match="the checkpoint is at step 3, past this stage's 1 "
                       "steps"):
        _Tiny(steps=1, seed=1).run(tmp_path)


def test_make_callbacks_gets_the_resumed_step_and_the_saved_state(tmp_path):
    _Tiny(steps=2).run(tmp_path, extra_state=lambda: {"note": 7})

    longer = _Tiny(steps=4, seed=1)
    counter = _StepCounter()
    received = []

    def make_callbacks(start, extra):
        received.append((start, extra))
        return [counter]

    progress = longer.run(tmp_path, make_callbacks, extra_state=lambda: {"note": 8})
    assert received == [(2, {"note": 7})]
    assert longer.offsets == [2]  # new batches, not the first run's again
    assert progress.initial_step == 2 and progress.step == 4 and counter.steps == 2
    assert int(progress.model.optimizer.iterations) == 4
    assert _csv_steps(tmp_path / "sr_losses.csv") == [1, 2, 3, 4]
    # The step it was resumed at is kept for the record (config.json).
    assert progress.resumed_at == [2]
    assert _checkpoint(tmp_path, 4) == (4, {"note": 8, "resumed_at": [2]})


def test_resume_rules(tmp_path):
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        _Tiny(steps=1).run(tmp_path, resume=True)
    assert not (tmp_path / "checkpoint").exists()

    _Tiny(steps=2).run(tmp_path)
    seen = []
    progress = _Tiny(steps=2, seed=1).run(
        tmp_path, make_callbacks=lambda start, extra: seen.append((start, extra)) or [],
        resume=False)
    assert seen == [(0, {})]
    assert progress.initial_step == 0 and progress.step == 2
    assert _csv_steps(tmp_path / "sr_losses.csv") == [1, 2]


def test_a_non_finite_loss_after_a_checkpoint_names_it_as_intact():
    import types

    from vaecyclegan.training.stage_runner import TrainingStopped, _raise_if_stopped

    checkpoints = types.SimpleNamespace(diverged=(7, "g_loss", float("nan")), saved_step=5,
                                        interrupted=None)
    with pytest.raises(TrainingStopped) as stopped:
        _raise_if_stopped(checkpoints, "run/checkpoint/translation.npz")
    assert stopped.value.path == "run/checkpoint/translation.npz"
    assert stopped.value.problem == (
        "g_loss became nan at step 7; training stopped and no weights were written (this "
        "checkpoint, of step 5, is intact, as are any weights in <weights-dir>/best); try a "
        "lower --lr or --precision float32")
    assert stopped.value.exit_code == 3


def test_a_non_finite_loss_after_a_resume_names_the_checkpoint_it_resumed_from(tmp_path):
    # A resumed run that diverged before its own first checkpoint said
    # training stopped "before its first checkpoint", beside the intact
    # checkpoint it had resumed from.
    import types

    from vaecyclegan.training.stage_runner import TrainingStopped, _raise_if_stopped

    _Tiny(steps=2).run(tmp_path)
    path = checkpoint_path(str(tmp_path), "upscaler")
    checkpoints = types.SimpleNamespace(diverged=(3, "loss", float("inf")), saved_step=None,
                                        interrupted=None)
    with pytest.raises(TrainingStopped) as stopped:
        _raise_if_stopped(checkpoints, path)
    assert stopped.value.path == path
    assert "(this checkpoint, of step 2, is intact" in stopped.value.problem
