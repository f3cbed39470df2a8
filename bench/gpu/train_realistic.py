"""Trains the translators on several datasets within one time budget, on
whatever Keras backend is set (made for Keras' JAX backend on a lent GPU
machine, which has no TensorFlow), and packs what to bring back: each
run's generator weights, and every run's log and metrics.

The step count is measured, not guessed: a short calibration run on the
first dataset gives the seconds per step and the fixed cost of a run
(start, compilation, closing evaluation); the budget left is split evenly
over the datasets and each run gets the steps that fit, with a safety
margin, so that every run keeps the preset's learning-rate schedule (the
linear decay from half the steps) instead of being cut off mid-schedule.
A run that still overruns is stopped with SIGINT (its checkpoint is
written) and its best weights so far are packed instead: these exist only
where the runs evaluate (`--evals N`, or `--eval-every N` among the
train.py options), so without them a run stopped in training brings back
its log alone.

With `--image-sizes`, every dataset is trained at each of those sizes
(runs named like `a128`). With `--parallel`, all runs share the GPU at
once (each JAX process takes an equal part of its memory): small networks
leave a large GPU idle between kernels, so several runs together do more
steps than one after the other. The calibration then times every run
while all of them run, which is how the final runs will share the GPU.

JAX's persistent compilation cache is shared by the runs, so that only the
calibration pays for compiling a step of a given shape.

    KERAS_BACKEND=jax python bench/gpu/train_realistic.py --budget 420 \\
        --set a=data/real_a@40,400 --set b=data/real_b@500,3000 \\
        --out $OUT -- --image-size 256 --eval-every 0

    KERAS_BACKEND=jax python bench/gpu/train_realistic.py --budget 480 \\
        --set a=data/real_a@40,400 --set b=data/real_b@500,3000 \\
        --image-sizes 128 256 --parallel --evals 4 --out $OUT

Arguments after `--` go to every `train.py` run (the calibration's too).
Each run's generator weights come back as NAME.tar.gz (about 16 MB for
the quick networks, under the 16 MiB a file that a lent machine returns),
and the runs' logs, metrics and figures together as runs.tar.gz.
"""

import argparse
import csv
import dataclasses
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
GPU_MEMORY_SHARE = 0.9  # of the GPU's memory, split evenly over parallel runs


@dataclasses.dataclass
class Run:
    """One training: a dataset, its CT window and the train.py options."""

    name: str
    folder: str
    window: str
    extra: list


def parse_set(text):
    """'name=folder@level,width' -> (name, folder, window)."""
    name, _, rest = text.partition("=")
    folder, _, window = rest.partition("@")
    if not name or not folder or not window:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FOLDER@LEVEL,WIDTH")
    return name, folder, window


def plan_runs(sets, image_sizes, extra):
    """Every dataset, at every image size where sizes are given."""
    if not image_sizes:
        return [Run(name, folder, window, list(extra)) for name, folder, window in sets]
    return [Run(f"{name}{size}", folder, window, [*extra, "--image-size", str(size)])
            for name, folder, window in sets for size in image_sizes]


class Training:
    """One `train.py --stage translate` process, stopped with SIGINT (its
    checkpoint is written) if it outlives `guard_s`."""

    def __init__(self, run, workdir, steps, extra, guard_s, log, env=None):
        command = [sys.executable, os.path.join(REPO, "train.py"), "--data", run.folder,
                   "--ct-window", run.window, "--stage", "translate", "--steps", str(steps),
                   "--logdir", os.path.join(workdir, "run"),
                   "--weights-dir", os.path.join(workdir, "weights"),
                   "--log-every", "0", *extra]
        log(f"$ {' '.join(command)}  (stopped after {guard_s:.0f} s)")
        self.workdir, self.log, self.guard_s = workdir, log, guard_s
        self.start = time.monotonic()
        self.output = open(workdir + ".log", "w")
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT,
                                        env=env)

    def wait(self):
        """(seconds, stopped) once the process has ended."""
        try:
            self.process.wait(timeout=max(self.guard_s - (time.monotonic() - self.start), 0.1))
            stopped = False
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGINT)  # the checkpoint is written, then it stops
            try:
                self.process.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
            stopped = True
        seconds = time.monotonic() - self.start
        self.output.close()
        with open(self.workdir + ".log") as out:
            tail = out.read()[-1500:]
        self.log(f"{os.path.basename(self.workdir)}: exit {self.process.returncode} after "
                 f"{seconds:.0f} s{' (stopped)' if stopped else ''}\n{tail}")
        return seconds, stopped


def train_all(runs, workdirs, steps, extras, guard_s, log, parallel):
    """Runs the trainings one after the other, or all at once, each stopped
    after `guard_s`; returns [(seconds, stopped)] in the runs' order."""
    if not parallel:
        return [Training(run, workdirs[i], steps[i], extras[i], guard_s, log).wait()
                for i, run in enumerate(runs)]
    env = dict(os.environ, XLA_PYTHON_CLIENT_MEM_FRACTION=f"{GPU_MEMORY_SHARE / len(runs):.3f}")
    trainings = [Training(run, workdirs[i], steps[i], extras[i], guard_s, log, env)
                 for i, run in enumerate(runs)]
    return [training.wait() for training in trainings]


def step_times(losses_csv):
    """(steps, cumulative seconds) from a run's losses.csv."""
    with open(losses_csv) as handle:
        rows = list(csv.DictReader(handle))
    return [int(row["step"]) for row in rows], [float(row["seconds"]) for row in rows]


# No figures: four runs' weights (about 15 MB each) and these have to fit
# in the 64 MiB that a lent machine returns; the weights make the figures.
RUN_FILES = ("metrics.json", "losses.csv", "checkpoint_evals.csv", "options.json", "run.json")


def pack_weights(name, workdir, out_dir):
    """The run's generator weights and config.json as OUT/NAME.tar.gz: the
    final ones where training finished (a run stopped in its closing
    evaluation has them), else the best so far; None where there are none."""
    weights = os.path.join(workdir, "weights")
    final = os.path.join(weights, "g_target_weights.h5")
    source = weights if os.path.exists(final) else os.path.join(weights, "best")
    if not os.path.isdir(source):
        print(f"{name}: stopped before any evaluation kept weights: its log alone comes back")
        return None
    archive = os.path.join(out_dir, f"{name}.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for file in ("g_target_weights.h5", "g_source_weights.h5", "config.json"):
            path = os.path.join(source, file)
            if os.path.exists(path):
                tar.add(path, arcname=f"{name}/weights/{file}")
    return archive


def pack_runs(names, work, out_dir):
    """Every run's log, metrics and figures (the calibrations' too) as
    OUT/runs.tar.gz."""
    archive = os.path.join(out_dir, "runs.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            workdir = os.path.join(work, name)
            for file in RUN_FILES:
                path = os.path.join(workdir, "run", file)
                if os.path.exists(path):
                    tar.add(path, arcname=f"{name}/run/{file}")
            if os.path.exists(workdir + ".log"):
                tar.add(workdir + ".log", arcname=f"{name}/train.log")
    return archive


def calibrate(args, runs, deadline, log):
    """[(seconds a step, fixed seconds a run, seconds an evaluation)] from
    short runs: the step from the second half of its steps, the rest of its
    wall time (start, compilation, closing evaluation) as the fixed cost.
    With `--evals`, the run evaluates once, halfway, and what that step took
    beyond the others is an evaluation's cost. Sequentially only the first
    run is timed and stands for all; in parallel every run is timed while
    all of them run."""
    timed = runs if args.parallel else runs[:1]
    workdirs = [os.path.join(args.work, "calibration_" + run.name) for run in timed]
    halfway = args.calibrate_steps // 2
    evaluate = ["--eval-every", str(halfway)] if args.evals > 0 else ["--eval-every", "0"]
    walls = train_all(timed, workdirs, [args.calibrate_steps] * len(timed),
                      [[*run.extra, *evaluate] for run in timed],
                      max(60.0, deadline - time.monotonic()), log, args.parallel)
    figures = []
    for run, workdir, (wall, _) in zip(timed, workdirs, walls):
        losses = os.path.join(workdir, "run", "losses.csv")
        steps, seconds = step_times(losses) if os.path.exists(losses) else ([], [])
        if steps[-1:] != [args.calibrate_steps]:
            log(f"calibration of {run.name}: it did not finish its steps (its log says why)")
            figures.append(None)
            continue
        after = steps.index(halfway + 1)  # the first step after the evaluation
        per_step = (seconds[-1] - seconds[after]) / (steps[-1] - steps[after])
        eval_s = max(seconds[after] - seconds[after - 1] - per_step, 0.0) if args.evals else 0.0
        overhead = wall - per_step * steps[-1] - eval_s
        log(f"calibration of {run.name}: {per_step * 1000:.1f} ms a step, {overhead:.0f} s a "
            f"run's fixed cost, {eval_s:.1f} s an evaluation")
        figures.append((per_step, overhead, eval_s))
    return figures if args.parallel else figures * len(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", type=parse_set, required=True,
                        help="NAME=FOLDER@LEVEL,WIDTH (repeat)")
    parser.add_argument("--budget", type=float, required=True,
                        help="seconds for all the runs, the calibration included")
    parser.add_argument("--image-sizes", type=int, nargs="+", default=None,
                        help="train every set at each of these sizes (--image-size)")
    parser.add_argument("--parallel", action="store_true",
                        help="run all trainings at once, sharing the GPU")
    parser.add_argument("--evals", type=int, default=0,
                        help="evaluations during each run (--eval-every its steps / N; "
                             "they keep the best weights, which a stopped run returns)")
    parser.add_argument("--calibrate-steps", type=int, default=100,
                        help="steps of the calibration run (at least 4)")
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="steps of every run, or of each run in order (sets, then "
                             "sizes), with no calibration (a run that overruns its share "
                             "of the budget is stopped)")
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
    runs = plan_runs(args.set, args.image_sizes, args.extra)
    if args.steps and len(args.steps) not in (1, len(runs)):
        parser.error(f"--steps: one number, or one for each of the {len(runs)} runs")
    summary = {"budget_s": args.budget, "extra": args.extra, "parallel": args.parallel,
               "runs": {}}
    log_path = os.path.join(args.out, "train_realistic.log")

    def log(text):
        print(text, flush=True)
        with open(log_path, "a") as handle:
            handle.write(text + "\n")

    try:
        train_and_pack(args, runs, deadline, summary, log)
    finally:  # whatever happened, the logs come back
        names = [name for name in summary["runs"]]
        names += ["calibration_" + run.name for run in runs if os.path.exists(
            os.path.join(args.work, "calibration_" + run.name + ".log"))]
        names += [run.name for run in runs if run.name not in summary["runs"]
                  and os.path.exists(os.path.join(args.work, run.name + ".log"))]
        pack_runs(names, args.work, args.out)
        with open(os.path.join(args.out, "train_realistic.json"), "w") as handle:
            json.dump(summary, handle, indent=1, default=str)


def train_and_pack(args, runs, deadline, summary, log):
    """Calibrates (unless --steps), trains and packs every run's weights,
    recording each run in `summary`."""
    calibration = None
    if not args.steps:
        calibration = calibrate(args, runs, deadline, log)
        summary["calibration"] = {
            run.name: dict(zip(("s_per_step", "overhead_s", "eval_s"), figures or ()))
            for run, figures in zip(runs, calibration)}

    def room(index):
        """Seconds for run `index`: all that is left in parallel, else an
        even share of it among the runs still to come."""
        left = deadline - time.monotonic()
        return left if args.parallel else left / (len(runs) - index)

    def steps_for(index):
        if args.steps:
            return args.steps[index] if len(args.steps) > 1 else args.steps[0]
        if calibration[index] is None:
            return 0
        per_step, overhead, eval_s = calibration[index]
        fixed = overhead + args.evals * eval_s  # the evaluations at the end of each part
        usable = room(index) - GRACE_S - fixed  # the guard stops a run GRACE_S early
        return int(SAFETY * usable / per_step) // args.round * args.round

    def extras_for(index, run_steps):
        if args.evals > 0:
            return [*runs[index].extra, "--eval-every", str(max(run_steps // args.evals, 1))]
        return runs[index].extra

    # In parallel every run's steps are fixed now; one after the other, each
    # run's are fixed when it starts, from what the runs before it left.
    steps, results = {}, {}
    if args.parallel:
        steps = {i: steps_for(i) for i in range(len(runs))}
        for index in [i for i in steps if steps[i] < 1]:
            log(f"{runs[index].name}: too little time for a step: skipped")
        active = [i for i in steps if steps[i] >= 1]
        results = {} if not active else dict(zip(active, train_all(
            [runs[i] for i in active], [os.path.join(args.work, runs[i].name) for i in active],
            [steps[i] for i in active], [extras_for(i, steps[i]) for i in active],
            max(room(0) - GRACE_S, 1.0), log, parallel=True)))
    else:
        for index, run in enumerate(runs):
            steps[index] = steps_for(index)
            if steps[index] < 1:
                log(f"{run.name}: {room(index):.0f} s left for it, too little for a step: skipped")
                continue
            # Stopped early enough that the grace after SIGINT stays in the budget.
            results[index] = Training(run, os.path.join(args.work, run.name), steps[index],
                                      extras_for(index, steps[index]),
                                      max(room(index) - GRACE_S, 1.0), log).wait()
    for index, (wall, stopped) in results.items():
        run, workdir = runs[index], os.path.join(args.work, runs[index].name)
        archive = pack_weights(run.name, workdir, args.out)
        metrics_path = os.path.join(workdir, "run", "metrics.json")
        metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else None
        summary["runs"][run.name] = {
            "steps": steps[index], "wall_s": wall, "stopped": stopped,
            "archive": os.path.basename(archive) if archive else None,
            "weights": ("final" if archive and os.path.exists(os.path.join(
                workdir, "weights", "g_target_weights.h5")) else "best" if archive else None),
            "metrics": metrics}
        if metrics:
            a, b = metrics["mri2ct"]["model"], metrics["ct2mri"]["model"]
            log(f"{run.name}: {steps[index]} steps in {wall:.0f} s: mri2ct "
                f"{a['psnr']:.2f} dB, SSIM {a['ssim']:.3f}, bone Dice "
                f"{a.get('bone_dice', float('nan')):.3f}; ct2mri {b['psnr']:.2f} dB, "
                f"SSIM {b['ssim']:.3f}")


if __name__ == "__main__":
    main()
