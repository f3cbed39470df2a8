"""bench/gpu/train_realistic.py, the driver of training runs on a lent GPU
machine: its planning and packing, with a stand-in for train.py (a lease is
15 minutes, so a broken driver costs a whole lease)."""

import importlib.util
import json
import os
import sys
import tarfile
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def driver():
    path = os.path.join(REPO, "bench", "gpu", "train_realistic.py")
    spec = importlib.util.spec_from_file_location("train_realistic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# train.py's stand-in: steps of STEP_S seconds (a dataset named "slow"
# takes twice as long), losses.csv as train.py writes it, an evaluation
# (EVAL_S) after every --eval-every steps, weights and metrics.json at the
# end; a dataset named "broken" fails at once.
FAKE_TRAIN = textwrap.dedent("""
    import argparse, json, os, sys, time
    STEP_S, EVAL_S = 0.01, 0.05
    parser = argparse.ArgumentParser()
    for name in ("--data", "--ct-window", "--stage", "--logdir", "--weights-dir",
                 "--image-size", "--seed"):
        parser.add_argument(name)
    for name in ("--steps", "--log-every", "--eval-every"):
        parser.add_argument(name, type=int, default=0)
    args = parser.parse_args()
    if "broken" in args.data:
        sys.exit(2)
    step_s = STEP_S * (2 if "slow" in args.data else 1)
    os.makedirs(args.logdir)
    start = time.monotonic()
    with open(os.path.join(args.logdir, "losses.csv"), "w") as out:
        out.write("step,seconds,g_loss\\n")
        for step in range(1, args.steps + 1):
            time.sleep(step_s)
            out.write(f"{step},{time.monotonic() - start:.4f},1.0\\n")
            out.flush()
            if args.eval_every and step % args.eval_every == 0:
                time.sleep(EVAL_S)
    os.makedirs(args.weights_dir)
    for name in ("g_target_weights.h5", "g_source_weights.h5", "config.json"):
        open(os.path.join(args.weights_dir, name), "w").write(args.data)
    figures = {"psnr": 20.0, "ssim": 0.8, "bone_dice": 0.5}
    json.dump({"mri2ct": {"model": figures}, "ct2mri": {"model": figures}},
              open(os.path.join(args.logdir, "metrics.json"), "w"))
""")


@pytest.fixture
def fake_repo(tmp_path, driver, monkeypatch):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    monkeypatch.setattr(driver, "REPO", str(tmp_path))
    monkeypatch.setattr(driver, "GRACE_S", 1)
    monkeypatch.setattr(driver, "POLL_S", 0.02)
    return tmp_path


def run_driver(driver, monkeypatch, tmp_path, *arguments):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["train_realistic.py", "--out", str(out),
                                      "--work", str(tmp_path / "work"), *arguments])
    driver.main()
    return out, json.loads((out / "train_realistic.json").read_text())


def test_runs_are_named_by_set_and_size(driver):
    sets = [("a", "A", "40,400"), ("b", "B", "500,3000")]
    runs = driver.plan_runs(sets, [128, 256], ["--seed", "1"])
    assert [run.name for run in runs] == ["a128", "a256", "b128", "b256"]
    assert runs[1].extra == ["--seed", "1", "--image-size", "256"]
    assert [run.name for run in driver.plan_runs(sets, None, [])] == ["a", "b"]


def test_the_shared_step_time_comes_from_the_window_where_every_run_steps(driver):
    # Run 0 steps every 0.1 s from t=1, run 1 every 0.2 s from t=1.5 (it
    # compiled longer); run 0 reaches its evaluating step (39 of 40) at t=4.9.
    samples = []
    for tenth in range(0, 80):
        t = tenth / 10
        samples.append((t, [min(max(round((t - 1) * 10), 0), 40),
                            min(max(round((t - 1.5) * 5), 0), 40)]))
    shared = driver.shared_step_seconds(samples, total_steps=40)
    # From the window in which both step (t about 1.6 to 4.8): the true
    # rates within a sample's rounding (each run's own clock would not see
    # that run 0 stepped alone before t=1.5).
    assert shared == pytest.approx([0.1, 0.2], rel=0.1)
    # Before run 1 has taken five steps together with run 0: no shared figure.
    assert driver.shared_step_seconds(samples[:25], total_steps=40) is None


def test_the_last_step_is_read_from_the_end_of_losses_csv(driver, tmp_path):
    assert driver.last_step(str(tmp_path)) == 0
    (tmp_path / "run").mkdir()
    losses = tmp_path / "run" / "losses.csv"
    losses.write_text("step,seconds\n")
    assert driver.last_step(str(tmp_path)) == 0
    losses.write_text("step,seconds\n" + "".join(f"{i},{i / 10}\n" for i in range(1, 2001)))
    assert driver.last_step(str(tmp_path)) == 2000


def test_parallel_runs_are_calibrated_planned_trained_and_packed(driver, fake_repo, monkeypatch,
                                                                 tmp_path):
    out, summary = run_driver(
        driver, monkeypatch, tmp_path, "--budget", "12", "--parallel", "--evals", "2",
        "--calibrate-steps", "40", "--round", "10",
        "--set", f"a={tmp_path}/fast@40,400", "--set", f"b={tmp_path}/slow@500,3000")
    calibration = summary["calibration"]
    # The slow set's steps take twice as long, and each evaluation about 0.05 s.
    assert calibration["b"]["s_per_step"] > 1.5 * calibration["a"]["s_per_step"]
    assert 0.03 < calibration["a"]["eval_s"] < 0.2
    runs = summary["runs"]
    assert runs["a"]["steps"] > 1.5 * runs["b"]["steps"] > 0
    for name in ("a", "b"):
        assert runs[name]["returncode"] == 0 and not runs[name]["stopped"]
        assert runs[name]["weights"] == "final" and runs[name]["metrics"]
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            assert sorted(tar.getnames()) == [
                f"{name}/weights/{file}" for file in
                ("config.json", "g_source_weights.h5", "g_target_weights.h5")]
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    assert "a/run/losses.csv" in names and "calibration_b/train.log" in names


def test_a_run_whose_calibration_failed_is_skipped_with_its_reason(driver, fake_repo,
                                                                   monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as stop:
        run_driver(driver, monkeypatch, tmp_path, "--budget", "6", "--parallel",
                   "--calibrate-steps", "10", "--set", f"x={tmp_path}/broken@40,400")
    assert stop.value.code == 1  # no run trained
    summary = json.loads((tmp_path / "out" / "train_realistic.json").read_text())
    assert "calibration failed" in summary["runs"]["x"]["skipped"]
    assert summary["calibration"]["x"] == {"failed": True}


def test_a_second_driver_starts_every_run_afresh(driver, fake_repo, monkeypatch, tmp_path):
    arguments = ("--budget", "20", "--steps", "20", "--set", f"a={tmp_path}/fast@40,400")
    run_driver(driver, monkeypatch, tmp_path, *arguments)
    # train.py would refuse to resume past its --steps; the stand-in refuses
    # any existing folder (os.makedirs), so a kept folder fails the run.
    _, summary = run_driver(driver, monkeypatch, tmp_path, *arguments)
    assert summary["runs"]["a"]["returncode"] == 0
    assert summary["runs"]["a"]["steps"] == 20
