"""Progress: a bar on a terminal, plain lines every N steps in a log file,
and every step's losses in the CSV."""

import csv
import types

import pytest

from vaecyclegan.training import progress as progress_module
from vaecyclegan.training.progress import ProgressCallback


def _run(callback, steps):
    callback.set_model(types.SimpleNamespace(stop_training=False))
    callback.on_train_begin()
    for step in range(steps):
        callback.on_train_batch_end(step, {"loss": 1.0 / (step + 1), "g_loss": 2.0})
    callback.on_train_end()
    return callback


def test_without_a_terminal_it_logs_a_plain_line_every_n_steps(tmp_path, capsys):
    path = tmp_path / "losses.csv"
    callback = _run(ProgressCallback(20, 8, str(path), shown=["loss"], description="translate",
                                     line_every=5), 20)
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith("translate:")]
    assert [line.split(",")[0] for line in lines] == [
        f"translate: step {n}/20 ({n * 5} %)" for n in (5, 10, 15, 20)]
    assert "images/s" in lines[-1] and "loss 0." in lines[-1] and "left" in lines[-1]
    assert "\r" not in captured.out + captured.err
    assert callback.model.stop_training
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert float(rows[1]["loss"]) == pytest.approx(0.5)


def test_the_default_spacing_is_a_tenth_of_the_steps_at_most_a_hundred():
    assert ProgressCallback(1200, 8).line_every == 100
    assert ProgressCallback(300, 8).line_every == 30
    assert ProgressCallback(4, 8).line_every == 1


def test_on_a_terminal_it_draws_a_bar_and_logs_no_lines(monkeypatch, capsys):
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(progress_module.sys.stdout, "isatty", lambda: True, raising=False)
    callback = _run(ProgressCallback(6, 8, description="upscale", line_every=1), 6)
    captured = capsys.readouterr()
    assert callback.bar is not None
    assert "upscale: step" not in captured.out
    assert "upscale" in captured.err  # tqdm's bar


def test_a_resumed_log_counts_its_seconds_on_from_the_checkpoints_row(tmp_path):
    # They began again from zero after a resume: time ran backwards.
    path = tmp_path / "losses.csv"
    path.write_text("step,seconds,loss,g_loss\n1,40.00,1.0,2.0\n2,80.50,0.5,2.0\n"
                    "3,120.00,0.3,2.0\n")
    _run(ProgressCallback(4, 8, str(path), initial_step=2), 2)
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds[:2] == [40.0, 80.5] and 80.5 <= seconds[2] <= seconds[3] < 100.0


def test_output_redirected_from_a_terminal_keeps_its_lines_beside_the_bar(monkeypatch, capsys):
    # `python train.py > log` on a terminal: the bar went to the terminal
    # and the log kept no progress at all.
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(progress_module.sys.stdout, "isatty", lambda: False, raising=False)
    callback = _run(ProgressCallback(6, 8, description="upscale", line_every=3), 6)
    captured = capsys.readouterr()
    assert callback.bar is not None and "upscale" in captured.err
    assert [line.split(",")[0] for line in captured.out.splitlines()
            if line.startswith("upscale:")] == ["upscale: step 3/6 (50 %)",
                                                "upscale: step 6/6 (100 %)"]


def test_the_time_left_leaves_out_the_first_steps_build(monkeypatch, capsys):
    # The first step traces the step (here 100 s, then 1 s a step): it had
    # counted as a step, and at step 5 of 10 the estimate was 1 min 44 s.
    now = {"seconds": 0.0}
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now["seconds"])
    callback = ProgressCallback(10, 8, description="translate", line_every=5)
    callback.set_model(types.SimpleNamespace(stop_training=False))
    callback.on_train_begin()
    for step in range(5):
        now["seconds"] = 100.0 + step
        callback.on_train_batch_end(step, {"loss": 1.0})
    [line] = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("translate:")]
    assert line.endswith(", 0 min 5 s left")


def test_long_times_left_read_in_hours_and_days():
    # A day read "1440 min 0 s left".
    assert progress_module._time_left(245) == "4 min 5 s left"
    assert progress_module._time_left(2 * 3600 + 5 * 60 + 7) == "2 h 5 min left"
    assert progress_module._time_left(3 * 86400 + 4 * 3600 + 5) == "3 d 4 h left"


def test_images_per_second_leaves_out_the_first_steps_build(monkeypatch, capsys):
    # 8 images a step; the first step builds for 100 s, then 2 s a step.
    # Counted in, the build made it 0.5 images/s after 21 steps.
    now = {"seconds": 0.0}
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now["seconds"])
    callback = ProgressCallback(21, 8, description="translate")
    callback.set_model(types.SimpleNamespace(stop_training=False))
    callback.on_train_begin()
    now["seconds"] = 100.0
    callback.on_train_batch_end(0, {"loss": 1.0})
    assert callback.images_per_second == pytest.approx(0.08)  # the first step alone
    for step in range(1, 21):
        now["seconds"] = 100.0 + 2 * step
        callback.on_train_batch_end(step, {"loss": 1.0})
    assert callback.images_per_second == pytest.approx(4.0)
    assert callback.summary("loss").startswith("21 steps, 4.0 images/s")
