"""Evaluate on the test pairs during training and keep the best weights."""

import csv
import io
import math
import os
import shutil

import keras

from vaecyclegan.io.atomic_write import atomic_write_text
from vaecyclegan.names import LOWER_IS_BETTER
from vaecyclegan.networks import TRANSLATION_NETWORKS, save_networks


class BestWeightsCallback(keras.callbacks.Callback):
    """Every `every` steps, scores the generators and saves them when better.

    The score is the model's `metric` averaged over the directions
    evaluated. The best translation networks and `config.json` go to
    `best_dir` (a weights folder `infer.py --weights-dir` takes as it is);
    every evaluation is logged to `history_csv`.

    Args:
        evaluate: a function `() -> {direction: summary}` scoring the current
            generators (see `evaluation.paired_test_set.evaluate_generators`).
        networks: the project networks, by name.
        config: the `ModelConfig` saved beside them.
        every: steps between evaluations.
        metric: a key of the summaries' `model` dict.
        best_dir: where the best weights go.
        history_csv: the log of every evaluation.
        resumed: `state()` of the run being resumed, if any.
    """

    def __init__(self, evaluate, networks, config, every, metric, best_dir, history_csv,
                 resumed=None):
        super().__init__()
        self.evaluate = evaluate
        self.networks = {n: networks[n] for n in TRANSLATION_NETWORKS}
        self.config = config
        self.every = every
        self.metric = metric
        self.best_dir = best_dir
        self.history_csv = history_csv
        self.best = None
        self.best_step = None
        self.step = 0
        self.history = []
        previous = best_dir + ".previous"
        if os.path.isdir(previous) and not os.path.isdir(best_dir):
            # A run stopped between the two renames of `_save_best`: the
            # previous best is whole, and is the best again.
            os.replace(previous, best_dir)
        if resumed:
            self.best, self.best_step = resumed["best"], resumed["best_step"]
            self.step, self.history = resumed["step"], resumed["history"]
            if self.best is not None:
                # The final config.json names the best step even when it
                # came before the resume and this process never beat it.
                self._record_best()

    def state(self):
        """What a checkpoint keeps so that a resumed run compares with the
        best score so far."""
        return {"best": self.best, "best_step": self.best_step, "step": self.step,
                "history": self.history}

    def _record_best(self):
        self.config.training["best"] = {"step": self.best_step, "metric": self.metric,
                                        "score": self.best}

    def _better(self, score):
        if self.best is None:
            return True
        return score < self.best if self.metric in LOWER_IS_BETTER else score > self.best

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every:
            return
        if any(not math.isfinite(float(value)) for value in (logs or {}).values()):
            # The step whose loss is not finite stops training (the
            # checkpoint callback sees it first); weights it left are not
            # evaluated, let alone kept as the best.
            return
        # On JAX, Keras' `Callback.model` writes the trainer's state into the
        # networks (the trainer no longer does so after every step).
        self.model  # noqa: B018
        summaries = self.evaluate()
        values = [s["model"][self.metric] for s in summaries.values()
                  if self.metric in s["model"]]
        if not values:
            return
        score = sum(values) / len(values)
        improved = self._better(score)
        if improved:
            self.best, self.best_step = score, self.step
            self._record_best()
            self._save_best()
        self.history.append({"step": self.step, "metric": self.metric, "score": score,
                             "best": int(improved),
                             **{f"{d}_{self.metric}": s["model"].get(self.metric)
                                for d, s in summaries.items()}})
        self._write_history()

    def _save_best(self):
        # Saved beside, then swapped in: a crash or a full disk while saving
        # leaves the previous best whole, not files of two steps.
        saving, previous = self.best_dir + ".saving", self.best_dir + ".previous"
        for folder in (saving, previous):
            shutil.rmtree(folder, ignore_errors=True)
        save_networks(self.networks, self.config, saving)
        if os.path.isdir(self.best_dir):
            os.replace(self.best_dir, previous)
        os.replace(saving, self.best_dir)
        shutil.rmtree(previous, ignore_errors=True)

    def _write_history(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.history_csv)), exist_ok=True)
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, list(self.history[-1]))
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.history_csv, table.getvalue())
