"""Trains the translators on several datasets within one time budget, on
whatever Keras backend is set (made for Keras' JAX backend on a lent GPU
machine, which has no TensorFlow), and packs what to bring back: each
run's generator weights, and every run's log and metrics.

The step count is measured, not guessed: short calibration runs give the
seconds per step, the seconds an evaluation takes and the fixed cost of a
run (start, compilation, closing evaluation); each run then gets the steps
that fit in what is left, with a safety margin, so that every run keeps
the preset's learning-rate schedule (the linear decay from half the steps)
instead of being cut off mid-schedule. One after the other, the budget
left is split evenly over the runs still to come, and one run of each
distinct set of options (each image size) is timed and stands for the
others. A run that still overruns is stopped with SIGINT (its checkpoint
is written) and its best weights so far are packed instead: these exist
only where the runs evaluate (`--evals N`, or `--eval-every N` among the
train.py options), so without them a run stopped in training brings back
its log alone. Every run starts afresh: its folder under `--work` is
emptied first.

With `--image-sizes`, every dataset is trained at each of those sizes
(runs named like `a128`). With `--parallel`, all runs share the GPU at
once (each JAX process takes an equal part of its memory): small networks
leave a large GPU idle between kernels, so several runs together do more
steps than one after the other. The calibration then times every run
while all of them take steps (the driver reads each run's step count on
one clock), which is how the final runs will share the GPU: runs that
still compile leave the GPU to the others, so each run's own timing would
be too fast.

JAX's persistent compilation cache is shared by the runs. On an H200 the
final runs still spent 40-60 s before their first step, so the cache saves
little there; the calibration's fixed cost includes the compilation and so
errs on the safe side.

    KERAS_BACKEND=jax python bench/gpu/train_realistic.py --budget 420 \\
        --set a=data/real_a@40,400 --set b=data/real_b@500,3000 \\
        --out $OUT -- --image-size 256 --eval-every 0

    KERAS_BACKEND=jax python bench/gpu/train_realistic.py --budget 480 \\
        --set a=data/real_a@40,400 --set b=data/real_b@500,3000 \\
        --image-sizes 128 256 --parallel --evals 3 --out $OUT

Arguments after `--` go to every `train.py` run (the calibration's too).
Each run's generator weights come back as NAME.tar.gz (about 15 MB for
the quick networks, under the 16 MiB a file that a lent machine returns),
and the runs' logs and metrics together as runs.tar.gz; a lent machine
returns at most 8 files and 64 MiB, so at most four runs of the quick
networks fit (the driver warns past that). Exits 1 when no run trained.
"""

import argparse
import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAFETY = 0.85  # the fraction of a run's measured room that its steps may fill
GRACE_S = 30  # after SIGINT: the step in flight and the checkpoint's writing
GPU_MEMORY_SHARE = 0.9  # of the GPU's memory, split evenly over parallel runs
POLL_S = 0.5  # how often parallel runs' step counts are read
MIN_WINDOW_STEPS = 5  # fewer steps taken by all runs at once: each run's own timing
RETURN_FILES, RETURN_BYTES = 8, 64 * 2**20  # what a lent machine returns
ACTIVE = []  # trainings still running, stopped if the driver ends early
STARTED = []  # the folder names of every training this driver started


@dataclasses.dataclass
class Run:
    """One training: a dataset, its CT window and the train.py options."""

    name: str
    folder: str
    window: str
    extra: list


@dataclasses.dataclass
class Result:
    """How a training ended."""

    seconds: float
    stopped: bool
    returncode: int


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


def last_step(workdir):
    """The last step in the run's losses.csv (0 before the first)."""
    try:
        with open(os.path.join(workdir, "run", "losses.csv"), "rb") as handle:
            handle.seek(max(os.fstat(handle.fileno()).st_size - 4096, 0))
            lines = handle.read().decode(errors="replace").strip().splitlines()
        return int(lines[-1].split(",")[0]) if len(lines) > 1 or lines[-1][:1].isdigit() else 0
    except (OSError, ValueError, IndexError):
        return 0


class Training:
    """One `train.py --stage translate` process in an emptied folder,
    stopped with SIGINT (its checkpoint is written) if it outlives
    `guard_s`."""

    def __init__(self, run, workdir, steps, extra, guard_s, log, env=None):
        shutil.rmtree(workdir, ignore_errors=True)  # never resume an earlier run
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
        self.stopped, self.result = False, None
        ACTIVE.append(self)
        STARTED.append(os.path.basename(workdir))

    def overdue(self):
        return time.monotonic() - self.start > self.guard_s

    def stop(self):
        self.process.send_signal(signal.SIGINT)  # the checkpoint is written, then it stops
        try:
            self.process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stopped = True

    def wait(self):
        """The Result, once the process has ended (stopped when overdue)."""
        try:
            self.process.wait(timeout=max(self.guard_s - (time.monotonic() - self.start), 0.1))
        except subprocess.TimeoutExpired:
            self.stop()
        return self.finish()

    def finish(self):
        if self.result is None:
            self.result = Result(time.monotonic() - self.start, self.stopped,
                                 self.process.returncode)
            self.output.close()
            ACTIVE.remove(self)
            with open(self.workdir + ".log") as out:
                tail = out.read()[-1500:]
            self.log(f"{os.path.basename(self.workdir)}: exit {self.result.returncode} after "
                     f"{self.result.seconds:.0f} s{' (stopped)' if self.stopped else ''}\n{tail}")
        return self.result


def train_parallel(runs, workdirs, steps, extras, guard_s, log):
    """All trainings at once, each stopped after `guard_s`; returns their
    Results and the samples [(seconds, [step of each run])] read every
    POLL_S on the driver's clock."""
    env = dict(os.environ, XLA_PYTHON_CLIENT_MEM_FRACTION=f"{GPU_MEMORY_SHARE / len(runs):.3f}")
    trainings = [Training(run, workdirs[i], steps[i], extras[i], guard_s, log, env)
                 for i, run in enumerate(runs)]
    samples = []
    while any(training.process.poll() is None for training in trainings):
        samples.append((time.monotonic(), [last_step(workdir) for workdir in workdirs]))
        for training in trainings:
            if training.process.poll() is None and training.overdue():
                training.stop()
        time.sleep(POLL_S)
    return [training.finish() for training in trainings], samples


def step_times(losses_csv):
    """(steps, cumulative seconds) from a run's losses.csv."""
    with open(losses_csv) as handle:
        rows = list(csv.DictReader(handle))
    return [int(row["step"]) for row in rows], [float(row["seconds"]) for row in rows]


def shared_step_seconds(samples, total_steps):
    """Each run's seconds a step while all of them were taking steps (past
    their first, before the evaluation at the step before their last), from
    the driver's samples;
    None where that window held too few steps of some run."""
    window = [(t, steps) for t, steps in samples
              if all(1 <= step < total_steps - 1 for step in steps)]
    if len(window) < 2:
        return None
    (t0, first), (t1, last) = window[0], window[-1]
    taken = [b - a for a, b in zip(first, last)]
    if min(taken) < MIN_WINDOW_STEPS:
        return None
    return [(t1 - t0) / count for count in taken]


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
        return None
    archive = os.path.join(out_dir, f"{name}.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for file in ("g_target_weights.h5", "g_source_weights.h5", "config.json"):
            path = os.path.join(source, file)
            if os.path.exists(path):
                tar.add(path, arcname=f"{name}/weights/{file}")
    return archive


def pack_runs(names, work, out_dir):
    """Every run's log and metrics (the calibrations' too) as
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
    """[(seconds a step, fixed seconds a run, seconds an evaluation) or None
    where the calibration failed], one for each run. Each calibration run
    takes --calibrate-steps steps and, with --evals, evaluates once, at the
    step before its last, so that what its last step took beyond the others
    is an evaluation's cost. The step: in parallel, from the window in which
    all runs took steps, on the driver's clock; else from the second half of
    the run's own steps. The rest of its wall time (start, compilation,
    closing evaluation) is the fixed cost."""
    total = args.calibrate_steps
    evaluate = ["--eval-every", str(total - 1)] if args.evals > 0 else ["--eval-every", "0"]
    if args.parallel:
        timed = runs
    else:  # one run of each distinct set of options stands for the others
        timed = list({tuple(run.extra): run for run in reversed(runs)}.values())[::-1]
    workdirs = [os.path.join(args.work, "calibration_" + run.name) for run in timed]
    guard_s = max(60.0, deadline - time.monotonic())
    extras = [[*run.extra, *evaluate] for run in timed]
    if args.parallel:
        results, samples = train_parallel(timed, workdirs, [total] * len(timed), extras,
                                          guard_s, log)
        shared = shared_step_seconds(samples, total)
    else:
        results = [Training(run, workdirs[i], total, extras[i], guard_s, log).wait()
                   for i, run in enumerate(timed)]
        shared = None
    figures = {}
    for index, (run, workdir, result) in enumerate(zip(timed, workdirs, results)):
        losses = os.path.join(workdir, "run", "losses.csv")
        steps, seconds = step_times(losses) if os.path.exists(losses) else ([], [])
        if steps[-1:] != [total]:
            log(f"calibration of {run.name}: it did not finish its steps ({workdir}.log says why)")
            continue
        half = len(steps) // 2
        own = (seconds[-2] - seconds[half]) / (steps[-2] - steps[half])
        per_step = shared[index] if shared else own
        eval_s = max(seconds[-1] - seconds[-2] - own, 0.0) if args.evals else 0.0
        overhead = result.seconds - per_step * total - eval_s
        log(f"calibration of {run.name}: {per_step * 1000:.1f} ms a step"
            f"{' with all runs stepping' if shared else ''} ({own * 1000:.1f} by its own "
            f"clock), {overhead:.0f} s a run's fixed cost, {eval_s:.1f} s an evaluation")
        figures[tuple(run.extra) if not args.parallel else run.name] = (
            per_step, overhead, eval_s)
    key = (lambda run: run.name) if args.parallel else (lambda run: tuple(run.extra))
    return [figures.get(key(run)) for run in runs]


def warn_if_too_much(out_dir, log):
    """A line in the log when OUT holds more than a lent machine returns."""
    files = [os.path.join(out_dir, name) for name in os.listdir(out_dir)]
    size = sum(os.path.getsize(path) for path in files)
    if len(files) > RETURN_FILES or size > RETURN_BYTES:
        log(f"warning: {len(files)} files, {size / 2**20:.1f} MiB in {out_dir}: a lent machine "
            f"returns at most {RETURN_FILES} files and {RETURN_BYTES // 2**20} MiB")


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
                        help="steps of each calibration run (at least 6)")
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
    if args.calibrate_steps < 6:
        parser.error("--calibrate-steps: at least 6 (the step time is read off the second half)")
    runs = plan_runs(args.set, args.image_sizes, args.extra)
    if args.steps and len(args.steps) not in (1, len(runs)):
        parser.error(f"--steps: one number, or one for each of the {len(runs)} runs")
    deadline = time.monotonic() + args.budget
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(args.work, "jax_cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    summary = {"budget_s": args.budget, "extra": args.extra, "parallel": args.parallel,
               "runs": {}}
    log_path = os.path.join(args.out, "train_realistic.log")

    def log(text):
        print(text, flush=True)
        with open(log_path, "a") as handle:
            handle.write(text + "\n")

    # A time limit's SIGTERM would end Python without `finally`: make it an exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        train_and_pack(args, runs, deadline, summary, log)
    finally:  # whatever happened, the trainings stop and the logs come back
        for training in list(ACTIVE):
            training.stop()
            training.finish()
        pack_runs(STARTED, args.work, args.out)  # not what earlier drivers left there
        with open(os.path.join(args.out, "train_realistic.json"), "w") as handle:
            json.dump(summary, handle, indent=1, default=str)
        warn_if_too_much(args.out, log)
    if not any("steps" in entry for entry in summary["runs"].values()):
        log("no run trained")
        sys.exit(1)


def train_and_pack(args, runs, deadline, summary, log):
    """Calibrates (unless --steps), trains and packs every run's weights,
    recording each run in `summary`."""
    calibration = None
    if not args.steps:
        calibration = calibrate(args, runs, deadline, log)
        summary["calibration"] = {
            run.name: dict(zip(("s_per_step", "overhead_s", "eval_s"), figures))
            if figures else {"failed": True} for run, figures in zip(runs, calibration)}

    def room(index):
        """Seconds for run `index`: all that is left in parallel, else an
        even share of it among the runs still to come."""
        left = deadline - time.monotonic()
        return left if args.parallel else left / (len(runs) - index)

    def steps_for(index):
        if args.steps:
            return args.steps[index] if len(args.steps) > 1 else args.steps[0]
        per_step, overhead, eval_s = calibration[index]
        fixed = overhead + args.evals * eval_s  # the calibration's own evaluation is not in it
        usable = room(index) - GRACE_S - fixed  # the guard stops a run GRACE_S early
        return int(SAFETY * usable / per_step) // args.round * args.round

    def extras_for(index, run_steps):
        if args.evals > 0:
            return [*runs[index].extra, "--eval-every", str(max(run_steps // args.evals, 1))]
        return runs[index].extra

    def skip(index, reason):
        log(f"{runs[index].name}: skipped: {reason}")
        summary["runs"][runs[index].name] = {"skipped": reason}

    def planned(index):
        """The run's steps, or None where it is skipped."""
        if calibration is not None and calibration[index] is None:
            skip(index, f"its calibration failed (calibration_{runs[index].name}.log says why)")
            return None
        steps = steps_for(index)
        if steps < 1:
            skip(index, f"{room(index):.0f} s left for it, too little for a step")
            return None
        return steps

    # In parallel every run's steps are fixed now; one after the other, each
    # run's are fixed when it starts, from what the runs before it left.
    steps, results = {}, {}
    if args.parallel:
        steps = {i: n for i in range(len(runs)) if (n := planned(i)) is not None}
        active = list(steps)
        if active:
            finished, _ = train_parallel(
                [runs[i] for i in active], [os.path.join(args.work, runs[i].name) for i in active],
                [steps[i] for i in active], [extras_for(i, steps[i]) for i in active],
                max(room(0) - GRACE_S, 1.0), log)
            results = dict(zip(active, finished))
    else:
        for index, run in enumerate(runs):
            steps[index] = planned(index)
            if steps[index] is None:
                continue
            # Stopped early enough that the grace after SIGINT stays in the budget.
            results[index] = Training(run, os.path.join(args.work, run.name), steps[index],
                                      extras_for(index, steps[index]),
                                      max(room(index) - GRACE_S, 1.0), log).wait()
    for index, result in results.items():
        record_run(runs[index], os.path.join(args.work, runs[index].name), steps[index],
                   result, args.out, summary, log)


def record_run(run, workdir, steps, result, out_dir, summary, log):
    """Packs the run's weights and records it: metrics only from a run
    that ended well (not a failed one, whose folder may hold less)."""
    archive = pack_weights(run.name, workdir, out_dir)
    weights = None
    if archive:
        finished = os.path.exists(os.path.join(workdir, "weights", "g_target_weights.h5"))
        weights = "final" if finished else "best"
    metrics_path = os.path.join(workdir, "run", "metrics.json")
    metrics = None
    if result.returncode == 0 and os.path.exists(metrics_path):
        with open(metrics_path) as handle:
            metrics = json.load(handle)
    summary["runs"][run.name] = {
        "steps": steps, "wall_s": result.seconds, "stopped": result.stopped,
        "returncode": result.returncode, "archive": os.path.basename(archive) if archive else None,
        "weights": weights, "metrics": metrics}
    if archive is None:
        log(f"{run.name}: no weights to bring back (stopped before any evaluation kept some)")
    if metrics:
        a, b = metrics["mri2ct"]["model"], metrics["ct2mri"]["model"]
        log(f"{run.name}: {steps} steps in {result.seconds:.0f} s: mri2ct "
            f"{a['psnr']:.2f} dB, SSIM {a['ssim']:.3f}, bone Dice "
            f"{a.get('bone_dice', float('nan')):.3f}; ct2mri {b['psnr']:.2f} dB, "
            f"SSIM {b['ssim']:.3f}")


if __name__ == "__main__":
    main()
