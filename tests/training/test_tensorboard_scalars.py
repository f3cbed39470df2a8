"""TensorBoard scalars of every stage, numbered by the run's step, also
after a resume."""

import glob
import os

from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.train import main


def _scalar_steps(folder, tag):
    """The steps at which the event files under `folder` hold `tag`."""
    import tensorflow as tf

    steps = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return sorted(steps)


def test_every_stage_logs_its_losses_at_the_runs_steps_across_a_resume(phantom_dir, tmp_path):
    # A resumed run's scalars started over at step 1, over the first
    # segment's; the upscaler's stages wrote none at all.
    run = tmp_path / "run"
    common = ["--preset", "smoke", "--data", phantom_dir, "--logdir", str(run),
              "--weights-dir", str(tmp_path / "w"), "--eval-every", "0", "--log-every", "1",
              "--sr-gan-steps", "0", "--lr-decay-start", "10"]
    assert run_cli(main, [*common, "--steps", "2", "--sr-steps", "2"]) == 0
    assert run_cli(main, [*common, "--steps", "4", "--sr-steps", "3"]) == 0
    board = run / "tensorboard"
    assert _scalar_steps(board / "train", "batch_g_loss") == [1, 2, 3, 4]
    assert _scalar_steps(board / "upscaler", "batch_loss") == [1, 2, 3]
