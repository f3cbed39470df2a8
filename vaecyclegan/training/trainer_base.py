"""The base of this project's trainers: a `keras.Model` whose networks and
optimisers are built before `fit`."""

import keras


class PrebuiltTrainer(keras.Model):
    """A `keras.Model` with a custom `train_step` over networks that are
    built functional models, and optimisers that `compile` builds.

    Nothing is left for `fit` to build, and its symbolic build is skipped:
    Keras (3.15) traces one at the start of `fit` under a strategy, first
    reducing a distributed batch with `strategy.reduce`, which
    MultiWorkerMirroredStrategy cannot do eagerly. Subclasses build their
    optimisers in `compile` (in the caller's strategy scope, so that a
    checkpoint can be restored before the first step) and list what a
    checkpoint holds in `checkpoint_variables()`.

    Example:
    >>> class Trainer(PrebuiltTrainer):
    ...     def train_step(self, data): ...
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return

    def checkpoint_variables(self):
        """Every variable training needs to continue, in a fixed order."""
        raise NotImplementedError
