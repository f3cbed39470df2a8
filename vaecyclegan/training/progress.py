"""Progress of `fit` (`ProgressCallback`): a tqdm bar on a terminal (step,
images/s, smoothed losses, time left), plain log lines every N steps where
the bar's stream is redirected to a file, and every step's losses in a
CSV; and of long work outside it (`WorkProgress`: slices translated)."""

import csv
import logging
import os
import sys
import time

import keras
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)
# Without a terminal, a line at most this many steps apart (and ten a stage).
MAX_STEPS_BETWEEN_LINES = 100


class ProgressCallback(keras.callbacks.Callback):
    """Shows one bar over all steps and records every step's losses.

    Losses on the bar are exponential moving averages (a GAN's per-step
    losses jump too much to read); `losses.csv` keeps the raw values. When
    the bar's stream (standard error) is not a terminal, carriage-return
    redraws would fill a log file with megabytes of bars: the progress is
    then logged as one plain line every `line_every` steps instead. The
    lines are logged beside the bar too when standard output, where they
    go, is not a terminal (`python train.py > log`). The time left is
    timed from the end of the first step, which also builds the step.

    Args:
        total_steps: steps the run will make.
        images_per_step: images the step consumes (both domains, after
            augmentation), for images/s.
        csv_path: where per-step losses go; None for none.
        shown: loss names for the bar (all when None).
        description: bar label.
        smoothing: weight of the previous average in the losses' moving
            average, in [0, 1): 0 shows each step's raw losses, nearer 1
            smooths more (0.9: about the last ten steps).
        initial_step: the step training starts from (after a resume): the
            bar and the step count start there, rows of an existing
            `csv_path` after it are dropped and its seconds go on from the
            last row kept; images/s counts this run's steps only, after
            its first, which also builds the step.
        line_every: steps between plain lines without a terminal (default:
            a tenth of the steps, at most `MAX_STEPS_BETWEEN_LINES`).

    Example:
    >>> from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset
    >>> from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer
    >>> trainer = L1UpscalerTrainer(rrdbnet)
    >>> trainer.compile(optimizer=keras.optimizers.Adam(2e-4))
    >>> progress = ProgressCallback(2, 2, "runs/x/losses.csv", description="upscaler")
    >>> history = trainer.fit(make_sr_dataset(mri, 32, 4, 2), steps_per_epoch=2, verbose=0,
    ...                       callbacks=[progress])
    >>> open("runs/x/losses.csv").readline().strip()
    'step,seconds,loss'
    """

    def __init__(self, total_steps, images_per_step, csv_path=None, shown=None,
                 description="train", smoothing=0.9, initial_step=0, line_every=None):
        super().__init__()
        self.total_steps = total_steps
        self.initial_step = initial_step
        self.images_per_step = images_per_step
        self.csv_path = csv_path
        self.shown = shown
        self.description = description
        self.smoothing = smoothing
        self.step = initial_step
        self.smoothed = {}
        self.last_logs = {}
        self.start = None
        self.seconds_before = 0.0  # a resumed log's last seconds
        self.line_every = line_every or max(1, min(MAX_STEPS_BETWEEN_LINES, total_steps // 10))
        self.bar = None

    def on_train_begin(self, logs=None):
        if _isatty(sys.stderr):
            self.bar = tqdm(total=self.total_steps, initial=self.initial_step,
                            desc=self.description, unit="step", dynamic_ncols=True,
                            mininterval=1.0, file=sys.stderr)
        # Plain lines also beside a bar when standard output, where they go,
        # is a file: `python train.py > log` from a terminal had kept no
        # progress in its log.
        self.plain_lines = self.bar is None or not _isatty(sys.stdout)
        self.start = time.perf_counter()
        self.first_step_end = None  # the clock of the time left starts here
        self._file = self._writer = None
        if self.csv_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.csv_path)), exist_ok=True)
            # A resumed run continues the log: rows after the checkpoint's
            # step (written before a kill) are dropped.
            kept = self._rows_before(self.initial_step) if self.initial_step else []
            # The seconds go on from the last kept row's, not from zero.
            self.seconds_before = _seconds_of(kept[-1]) if kept else 0.0
            # Line-buffered: a killed run keeps every row it logged.
            self._file = open(self.csv_path, "w", newline="", encoding="utf-8", buffering=1)
            self._file.writelines(kept)
            self._header_written = bool(kept)

    def on_train_batch_end(self, batch, logs=None):
        # `_model`: `model` would sync a JAX trainer's state into its variables.
        logs = {k: float(v) for k, v in _in_step_order(logs or {}, self._model).items()}
        self.step += 1
        self.last_logs = logs
        for key, value in logs.items():
            old = self.smoothed.get(key, value)
            self.smoothed[key] = self.smoothing * old + (1 - self.smoothing) * value
        if self._file is not None:
            if self._writer is None:
                self._writer = csv.DictWriter(self._file, ["step", "seconds", *logs])
                if not self._header_written:
                    self._writer.writeheader()
            seconds = time.perf_counter() - self.start + self.seconds_before
            self._writer.writerow({"step": self.step, "seconds": f"{seconds:.2f}", **logs})
        if self.first_step_end is None:
            self.first_step_end = time.perf_counter()
        self._show()
        if self.step >= self.total_steps:
            self.model.stop_training = True

    def _show(self):
        names = self.shown or list(self.smoothed)
        losses = {k: f"{self.smoothed[k]:.3f}" for k in names if k in self.smoothed}
        if self.bar is not None:
            self.bar.set_postfix({"img/s": f"{self.images_per_second:.1f}", **losses},
                                 refresh=False)
            self.bar.update(1)
        if self.plain_lines and (self.step % self.line_every == 0
                                 or self.step >= self.total_steps):
            logger.info(self.progress_line(losses))

    def progress_line(self, losses):
        """`<description>: step N/M (p %), images/s, smoothed losses, time left`."""
        # Timed from the end of the first step, which also builds (traces)
        # the step: counted in, it made the early estimates far too long.
        done = self.step - self.initial_step - 1
        if done > 0:
            left = ((time.perf_counter() - self.first_step_end) / done
                    * (self.total_steps - self.step))
        else:
            left = (time.perf_counter() - self.start) * (self.total_steps - self.step)
        cells = ", ".join(f"{k} {v}" for k, v in losses.items())
        return (f"{self.description}: step {self.step}/{self.total_steps} "
                f"({100 * self.step / self.total_steps:.0f} %), "
                f"{self.images_per_second:.1f} images/s" + (f", {cells}" if cells else "")
                + f", {_time_left(left)}")

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
        if self._file is not None:
            self._file.close()

    @property
    def images_per_second(self):
        """Images/s of the steps this run made after its first (0 when it
        made none; the first's own while it is the only one)."""
        steps = self.step - self.initial_step
        if not steps:
            return 0.0
        if steps == 1:
            return self.images_per_step / max(self.first_step_end - self.start, 1e-9)
        # The first step also builds (traces) the step, which takes many
        # steps' time: counted in, the figure read low, the more so the
        # shorter the run.
        return ((steps - 1) * self.images_per_step
                / max(time.perf_counter() - self.first_step_end, 1e-9))

    def summary(self, loss=None):
        """One line on the stage: steps, images/s and the last `loss`."""
        if self.step == self.initial_step:
            return f"{self.total_steps} steps, all done before this run (its checkpoint)"
        text = f"{self.total_steps} steps, {self.images_per_second:.1f} images/s"
        if loss in self.last_logs:
            text += f", last {loss} {self.last_logs[loss]:.4f}"
        return text

    def _rows_before(self, step):
        if not os.path.isfile(self.csv_path):
            return []
        with open(self.csv_path, encoding="utf-8") as f:
            lines = f.readlines()
        kept = lines[:1]
        for line in lines[1:]:
            head = line.split(",", 1)[0]
            if head.isdigit() and int(head) <= step:
                kept.append(line)
        return kept if len(kept) > 1 else []


def _seconds_of(row):
    """The `seconds` cell of a loss-log line (0 where it is not a number)."""
    cells = row.split(",")
    try:
        return float(cells[1])
    except (IndexError, ValueError):
        return 0.0


def _in_step_order(logs, model):
    """`logs` in the order the trainer's step wrote them (its `log_keys`,
    where it keeps them: Keras' PyTorch trainer hands them over sorted),
    so that a run's columns are the same on every backend."""
    order = [key for key in getattr(model, "log_keys", ()) if key in logs]
    return {key: logs[key] for key in order + [key for key in logs if key not in order]}


class WorkProgress:
    """Progress of long work outside `fit`, in units (slices translated):
    a tqdm bar on a terminal, shown once the work has taken
    `QUIET_SECONDS`; elsewhere a plain line at most every
    `SECONDS_BETWEEN_LINES`, from then on. Short work shows nothing.

    Args:
        total: units of work in all.
        unit: what a unit is, e.g. "slice".
        description: the bar's label and the lines' start.

    Example:
    >>> import numpy as np
    >>> slices = np.zeros((10, 32, 32), np.float32)
    >>> progress = WorkProgress(len(slices), "slice", "translating")
    >>> for start in range(0, len(slices), 4):
    ...     batch = slices[start:start + 4]  # translated here
    ...     progress.advance(len(batch))
    >>> progress.done
    10
    >>> progress.close()
    """

    QUIET_SECONDS = 5.0
    SECONDS_BETWEEN_LINES = 15.0

    def __init__(self, total, unit, description):
        self.total, self.unit, self.description = total, unit, description
        self.done = 0
        self.start = time.perf_counter()
        self.next_line = self.start + self.QUIET_SECONDS
        self.bar = (tqdm(total=total, desc=description, unit=unit, delay=self.QUIET_SECONDS,
                         leave=False, dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
                    if sys.stderr.isatty() else None)

    def advance(self, count):
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.perf_counter()
        if now >= self.next_line and self.done < self.total:
            self.next_line = now + self.SECONDS_BETWEEN_LINES
            rate = self.done / max(now - self.start, 1e-9)
            left = (self.total - self.done) / max(rate, 1e-9)
            logger.info(f"{self.description}: {self.done}/{self.total} {self.unit}s "
                        f"({100 * self.done / self.total:.0f} %), {rate:.1f} {self.unit}s/s, "
                        f"{_time_left(left)}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _time_left(seconds):
    """`4 min 5 s left`; from an hour on, `2 h 5 min left`, from a day on,
    `3 d 4 h left`."""
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h left"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min left"
    return f"{seconds // 60} min {seconds % 60} s left"


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
