"""A tqdm progress bar for `fit`: step, images/s, smoothed losses, time left."""

import csv
import os
import time

import keras
from tqdm.auto import tqdm


class ProgressCallback(keras.callbacks.Callback):
    """Shows one bar over all steps and records every step's losses.

    Losses on the bar are exponential moving averages (a GAN's per-step
    losses jump too much to read); `losses.csv` keeps the raw values.

    Args:
        total_steps: steps the run will make.
        images_per_step: images the step consumes (both domains, after
            augmentation), for images/s.
        csv_path: where per-step losses go; None for none.
        shown: loss names for the bar (all when None).
        description: bar label.

    Example:
    >>> model.fit(dataset, steps_per_epoch=100, verbose=0,
    ...           callbacks=[ProgressCallback(100, 16, "runs/x/losses.csv")])
    """

    def __init__(self, total_steps, images_per_step, csv_path=None, shown=None,
                 description="train", smoothing=0.9, initial_step=0):
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

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.total_steps, initial=self.initial_step, desc=self.description,
                        unit="step", dynamic_ncols=True, mininterval=1.0)
        self.start = time.perf_counter()
        self._file = self._writer = None
        if self.csv_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.csv_path)), exist_ok=True)
            # A resumed run continues the log: rows after the checkpoint's
            # step (written before a kill) are dropped.
            kept = self._rows_before(self.initial_step) if self.initial_step else []
            # Line-buffered: a killed run keeps every row it logged.
            self._file = open(self.csv_path, "w", newline="", encoding="utf-8", buffering=1)
            self._file.writelines(kept)
            self._header_written = bool(kept)

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
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
            seconds = time.perf_counter() - self.start
            self._writer.writerow({"step": self.step, "seconds": f"{seconds:.2f}", **logs})
        names = self.shown or list(self.smoothed)
        postfix = {"img/s": f"{self.images_per_second:.1f}"}
        postfix.update({k: f"{self.smoothed[k]:.3f}" for k in names if k in self.smoothed})
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)
        if self.step >= self.total_steps:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.bar.close()
        if self._file is not None:
            self._file.close()

    @property
    def images_per_second(self):
        """Images/s of the steps this run made (0 when it made none)."""
        steps = self.step - self.initial_step
        if not steps:
            return 0.0
        return steps * self.images_per_step / max(time.perf_counter() - self.start, 1e-9)

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
