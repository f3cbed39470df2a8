"""What every training stage shares: the trainers' base class, whose
`minimize` takes one update on TensorFlow or PyTorch (`trainer_base`), one
resumable stage runner (`stage_runner`), strategies, precision and
per-replica loss scaling (`distribution`), checkpoints and their callback
(`checkpoint`, `checkpoint_callback`), the best weights kept during
training (`best_weights`), progress (`progress`), TensorBoard scalars
numbered by the run's step (`tensorboard_scalars`), CycleGAN's learning-rate
decay (`learning_rate`) and the presets (`presets`); on Keras' JAX
backend, the data-parallel strategy and the `fit` loop of the stateless
trainers (`jax_loop`)."""
