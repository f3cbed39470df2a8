"""Trains the translators on several datasets within one time budget, on
whatever Keras backend is set (made for Keras' JAX backend on a lent GPU
machine, which has no TensorFlow), and packs each run's weights and
figures into one `.tar.gz` to bring back.

The step count is measured, not guessed: a short calibration run on the
first dataset gives the seconds per step and the fixed cost of a run
(start, compilation, closing evaluation); the budget left is split evenly
over the datasets and each run gets the steps that fit, with a safety
margin, so that every run keeps the preset's learning-rate schedule (the
linear decay from half the steps) instead of being cut off mid-schedule.
A run that still overruns is stopped with SIGINT (its checkpoint is
written) and its best weights so far are packed instead: these exist only
where the runs evaluate (`--eval-every N` among the train.py options), so
with `--eval-every 0` a stopped run brings back its figures and log alone.

JAX's persistent compilation cache is shared by the runs, so that only the
calibration pays for compiling a step of a given shape.

    KERAS_BACKEND=jax python bench/gpu/train_realistic.py --budget 420 \\
        --set a=data/real_a@40,400 --set b=data/real_b@500,3000 \\
        --out $OUT -- --image-size 256 --eval-every 0

Arguments after `--` go to every `train.py` run (the calibration's too).
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAFETY = 0.85  # the fraction of a run's measured room that its steps may fill
GRACE_S = 30  # after SIGINT: the step in flight and the checkpoint's writing


def parse_set(text):
    """'name=folder@level,width' -> (name, folder, window)."""
    name, _, rest = text.partition("=")
    folder, _, window = rest.partition("@")
    if not name or not folder or not window:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FOLDER@LEVEL,WIDTH")
    return name, folder, window


def train(folder, window, workdir, steps, extra, guard_s, log):
    """One `train.py --stage translate` run; returns (seconds, stopped)."""
    command = [sys.executable, os.path.join(REPO, "train.py"), "--data", folder,
               "--ct-window", window, "--stage", "translate", "--steps", str(steps),
               "--logdir", os.path.join(workdir, "run"),
               "--weights-dir", os.path.join(workdir, "weights"),
               "--log-every", "0", *extra]
    log(f"$ {' '.join(command)}  (stopped after {guard_s:.0f} s)")
    start = time.monotonic()
    with open(workdir + ".log", "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=guard_s)
            stopped = False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # the checkpoint is written, then it stops
            try:
                process.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
            stopped = True
    seconds = time.monotonic() - start
    with open(workdir + ".log") as out:
        tail = out.read()[-1500:]
    log(f"exit {process.returncode} after {seconds:.0f} s{' (stopped)' if stopped else ''}\n{tail}")
    return seconds, stopped


def step_times(losses_csv):
    """(steps, cumulative seconds) from a run's losses.csv."""
    with open(losses_csv) as handle:
        rows = list(csv.DictReader(handle))
    return [int(row["step"]) for row in rows], [float(row["seconds"]) for row in rows]


def pack(name, workdir, out_dir, stopped):
    """The run's generator weights (final, or the best so far where it was
    stopped), config.json and its figures, as OUT/NAME.tar.gz."""
    weights = os.path.join(workdir, "weights")
    final = os.path.join(weights, "g_target_weights.h5")
    source = weights if os.path.exists(final) and not stopped else os.path.join(weights, "best")
    if not os.path.isdir(source):
        print(f"{name}: stopped before any evaluation kept weights: packing its figures alone")
    archive = os.path.join(out_dir, f"{name}.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for file in ("g_target_weights.h5", "g_source_weights.h5", "config.json"):
            path = os.path.join(source, file)
            if os.path.exists(path):
                tar.add(path, arcname=f"{name}/weights/{file}")
        for file in ("metrics.json", "losses.csv", "checkpoint_evals.csv", "grid_mri2ct.png",
                     "grid_ct2mri.png", "options.json", "run.json"):
            path = os.path.join(workdir, "run", file)
            if os.path.exists(path):
                tar.add(path, arcname=f"{name}/run/{file}")
        tar.add(workdir + ".log", arcname=f"{name}/train.log")
    return archive


def calibrate(args, deadline, log):
    """(seconds a step, fixed seconds a run) from a short run on the first
    dataset: the step from the second half of its steps, the rest of its
    wall time (start, compilation, closing evaluation) as the fixed cost."""
    _, folder, window = args.set[0]
    calibration = os.path.join(args.work, "calibration")
    wall, _ = train(folder, window, calibration, args.calibrate_steps,
                    [*args.extra, "--eval-every", "0"], max(60.0, deadline - time.monotonic()), log)
    steps, seconds = step_times(os.path.join(calibration, "run", "losses.csv"))
    half = len(steps) // 2
    per_step = (seconds[-1] - seconds[half]) / (steps[-1] - steps[half])
    overhead = wall - per_step * steps[-1]
    log(f"calibration: {per_step * 1000:.1f} ms a step, {overhead:.0f} s a run's fixed cost")
    return per_step, overhead


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", type=parse_set, required=True,
                        help="NAME=FOLDER@LEVEL,WIDTH (repeat)")
    parser.add_argument("--budget", type=float, required=True,
                        help="seconds for all the runs, the calibration included")
    parser.add_argument("--calibrate-steps", type=int, default=100,
                        help="steps of the calibration run (at least 4)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps of every run, with no calibration (a run that "
                             "overruns its share of the budget is stopped)")
    parser.add_argument("--round", type=int, default=100, help="steps are a multiple of this")
    parser.add_argument("--out", required=True, help="where the archives and the log go")
    parser.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                       "train_realistic"))
    parser.add_argument("extra", nargs="*", help="train.py options (after --)")
    args = parser.parse_args()
    if args.calibrate_steps < 4:
        parser.error("--calibrate-steps: at least 4 (the step time is read off the second half)")
    deadline = time.monotonic() + args.budget
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(args.work, "jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    summary = {"budget_s": args.budget, "extra": args.extra, "runs": {}}
    log_path = os.path.join(args.out, "train_realistic.log")

    def log(text):
        print(text, flush=True)
        with open(log_path, "a") as handle:
            handle.write(text + "\n")

    if args.steps:
        per_step, overhead = None, None
    else:
        per_step, overhead = calibrate(args, deadline, log)
        summary["calibration"] = {"s_per_step": per_step, "overhead_s": overhead}

    for index, (name, folder, window) in enumerate(args.set):
        left = deadline - time.monotonic()
        room = left / (len(args.set) - index)
        if args.steps:
            run_steps = args.steps
        else:
            run_steps = int(SAFETY * (room - overhead) / per_step) // args.round * args.round
        if run_steps < 1:
            log(f"{name}: {room:.0f} s left for it, too little for a step: skipped")
            continue
        workdir = os.path.join(args.work, name)
        # Stopped early enough that the grace after SIGINT stays in the budget.
        guard_s = max(room - GRACE_S, 1.0)
        wall, stopped = train(folder, window, workdir, run_steps, args.extra, guard_s, log)
        archive = pack(name, workdir, args.out, stopped)
        metrics_path = os.path.join(workdir, "run", "metrics.json")
        metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else None
        summary["runs"][name] = {"steps": run_steps, "wall_s": wall, "stopped": stopped,
                                 "archive": os.path.basename(archive), "metrics": metrics}
        if metrics:
            a, b = metrics["mri2ct"]["model"], metrics["ct2mri"]["model"]
            log(f"{name}: {run_steps} steps in {wall:.0f} s: mri2ct {a['psnr']:.2f} dB, "
                f"SSIM {a['ssim']:.3f}, bone Dice {a.get('bone_dice', float('nan')):.3f}; "
                f"ct2mri {b['psnr']:.2f} dB, SSIM {b['ssim']:.3f}")
    with open(os.path.join(args.out, "train_realistic.json"), "w") as handle:
        json.dump(summary, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
