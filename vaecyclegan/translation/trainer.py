"""The training model: four networks, two optimisers, one custom
`train_step`, on TensorFlow (traced, under `tf.distribute`) or PyTorch
(eager, one device)."""

import numpy as np
from keras import ops

from vaecyclegan.training.distribution import on_tensorflow
from vaecyclegan.training.trainer_base import PrebuiltTrainer
from vaecyclegan.translation.cycle_losses import l1_loss, lsgan_loss
from vaecyclegan.translation.image_pool import ImagePool
from vaecyclegan.translation.patch_nce_loss import NUM_PATCHES, patch_indices, patch_nce_for
from vaecyclegan.translation.structure_loss import mind_loss


class VAECycleGAN(PrebuiltTrainer):
    """A VAE-CycleGAN that `fit` trains on `(mri_batch, ct_batch)` pairs.

    Generators: `g_target` (MRI -> CT) and `g_source` (CT -> MRI), trained
    together on the least-squares adversarial loss over every discriminator
    scale, the cycle L1 loss (weight `lambda_cycle`), the identity L1 loss
    (weight `lambda_cycle * lambda_identity`, CycleGAN's convention) and
    the VAE's KL term from `model.losses` (weight `kl_weight`) and, with
    `lambda_structure` above 0, the MIND structure loss between each
    generator's input and its translation (`structure_loss.mind_loss`,
    logged as `structure`), which keeps edges in place whatever happens
    to the intensities on either side of them, and, with `lambda_nce`
    above 0, CUT's contrastive patch loss of both translations
    (`patch_nce_loss`, logged as `patch_nce`; its projection heads are
    trained with the generators).
    Discriminators: `d_source` (MRI) and `d_target` (CT), trained on the
    least-squares loss of real against translated images.

    Under `tf.distribute` the losses are those of the global batch (logged
    as its mean); under mixed_float16 pass each optimiser wrapped in its own
    `keras.optimizers.LossScaleOptimizer`; logged losses are unscaled.

    Args:
        g_target, g_source: generators from `build_vae_unet_generator`.
        d_source, d_target: discriminators from
            `build_multiscale_patchgan_discriminator`.
        lambda_cycle: weight of the cycle loss.
        lambda_identity: identity weight relative to `lambda_cycle`.
        kl_weight: weight of the KL term.
        lambda_structure: weight of the MIND structure loss (0: none).
        lambda_nce: weight of the PatchNCE loss (0: none). Needs
            `image_size`.
        nce_patches: locations PatchNCE compares per encoder level.
        pool_size: translated images each discriminator's pool keeps
            (CycleGAN: 50; 0: none). Needs `image_size`.
        image_size: side of the training images.
        seed: seed of the pools' random choices and of PatchNCE's locations.

    Example:
    >>> import keras
    >>> from vaecyclegan.translation.dataset import make_unpaired_dataset
    >>> model = VAECycleGAN(g_target, g_source, d_source, d_target)
    >>> model.compile(g_optimizer=keras.optimizers.AdamW(1e-4, beta_1=0.5),
    ...               d_optimizer=keras.optimizers.AdamW(1e-4, beta_1=0.5))
    >>> history = model.fit(make_unpaired_dataset(mri, ct, 4), steps_per_epoch=1, verbose=0)
    >>> sorted(history.history)
    ['adversarial', 'cycle', 'd_loss', 'g_loss', 'identity', 'kl']
    """

    def __init__(
        self, g_target, g_source, d_source, d_target,
        lambda_cycle=10.0, lambda_identity=0.5, kl_weight=1e-3, pool_size=0, image_size=None,
        seed=0, lambda_structure=0.0, lambda_nce=0.0, nce_patches=NUM_PATCHES, **kwargs,
    ):
        super().__init__(**kwargs)
        channels = g_target.input_shape[-1]
        size = pool_size if image_size else 0
        shape = (image_size or 1, image_size or 1, channels)
        self.pool_ct = ImagePool(size, shape, seed + 101, name="pool_ct")
        self.pool_mri = ImagePool(size, shape, seed + 102, name="pool_mri")
        self.g_target = g_target
        self.g_source = g_source
        self.d_source = d_source
        self.d_target = d_target
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.kl_weight = kl_weight
        self.lambda_structure = lambda_structure
        self.lambda_nce = lambda_nce
        self.seed = seed
        self.patch_nce = (patch_nce_for({"g_target": g_target, "g_source": g_source},
                                        image_size, nce_patches) if lambda_nce else {})

    def _generator_variables(self):
        # The generators' and their PatchNCE projection heads' weights.
        variables = self.g_target.trainable_variables + self.g_source.trainable_variables
        for nce in self.patch_nce.values():
            variables += nce.projector.trainable_variables
        return variables

    def checkpoint_variables(self):
        """Everything training needs to continue, in a fixed order: the four
        networks' variables, the PatchNCE heads', both optimisers' and the
        image pools'."""
        variables = []
        for network in (self.g_target, self.g_source, self.d_source, self.d_target):
            variables += network.variables
        for nce in self.patch_nce.values():
            variables += nce.projector.variables
        return (variables + list(self.g_optimizer.variables) + list(self.d_optimizer.variables)
                + self.pool_ct.variables + self.pool_mri.variables)

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Built here, in the caller's strategy scope, not lazily inside the
        # first distributed step.
        g_optimizer.build(self._generator_variables())
        d_optimizer.build(self.d_target.trainable_variables + self.d_source.trainable_variables)

    def call(self, inputs, training=False):
        mri, ct = inputs
        return self.g_target(mri, training=training), self.g_source(ct, training=training)

    @staticmethod
    def _translate(generator, images):
        # The KL term of this call is in `generator.losses` only until the
        # next call, so it is read right away.
        output = generator(images, training=True)
        return output, ops.sum(ops.stack(generator.losses))

    def train_step(self, data):
        mri, ct = data
        g_loss, (fake_ct, fake_mri, logs) = self.minimize(
            self.g_optimizer, self._generator_variables(),
            lambda: self._generator_loss(mri, ct))
        # Translated images are fixed inputs to the discriminators, drawn
        # through the pools of earlier translations.
        fake_ct = self.pool_ct.query(ops.stop_gradient(fake_ct))
        fake_mri = self.pool_mri.query(ops.stop_gradient(fake_mri))
        d_loss, _ = self.minimize(
            self.d_optimizer, self.d_target.trainable_variables + self.d_source.trainable_variables,
            lambda: (self._discriminator_loss(mri, ct, fake_ct, fake_mri), None))
        return self.logs({"g_loss": g_loss, "d_loss": d_loss, **logs})

    def _generator_loss(self, mri, ct):
        """The generators' loss, and the translations and loss terms."""
        fake_ct, kl_fake_ct = self._translate(self.g_target, mri)
        fake_mri, kl_fake_mri = self._translate(self.g_source, ct)
        cycled_mri, kl_cycled_mri = self._translate(self.g_source, fake_ct)
        cycled_ct, kl_cycled_ct = self._translate(self.g_target, fake_mri)
        same_ct, kl_same_ct = self._translate(self.g_target, ct)
        same_mri, kl_same_mri = self._translate(self.g_source, mri)

        adversarial = lsgan_loss(self.d_target(fake_ct, training=True), 1.0) + lsgan_loss(
            self.d_source(fake_mri, training=True), 1.0
        )
        cycle = l1_loss(cycled_mri, mri) + l1_loss(cycled_ct, ct)
        identity = l1_loss(same_ct, ct) + l1_loss(same_mri, mri)
        kl = (
            kl_fake_ct + kl_fake_mri + kl_cycled_mri + kl_cycled_ct + kl_same_ct + kl_same_mri
        ) / 6.0
        g_loss = (
            adversarial
            + self.lambda_cycle * cycle
            + self.lambda_cycle * self.lambda_identity * identity
            + self.kl_weight * kl
        )
        logs = {"adversarial": adversarial, "cycle": cycle, "identity": identity, "kl": kl}
        if self.lambda_structure:
            logs["structure"] = mind_loss(mri, fake_ct) + mind_loss(ct, fake_mri)
            g_loss = g_loss + self.lambda_structure * logs["structure"]
        if self.lambda_nce:
            indices = self._patch_indices()
            logs["patch_nce"] = (self.patch_nce["g_target"].loss(mri, fake_ct, indices)
                                 + self.patch_nce["g_source"].loss(ct, fake_mri, indices))
            g_loss = g_loss + self.lambda_nce * logs["patch_nce"]
        return g_loss, (fake_ct, fake_mri, logs)

    def _discriminator_loss(self, mri, ct, fake_ct, fake_mri):
        """Least squares of real images against (pooled) translations."""
        d_target_loss = 0.5 * (
            lsgan_loss(self.d_target(ct, training=True), 1.0)
            + lsgan_loss(self.d_target(fake_ct, training=True), 0.0)
        )
        d_source_loss = 0.5 * (
            lsgan_loss(self.d_source(mri, training=True), 1.0)
            + lsgan_loss(self.d_source(fake_mri, training=True), 0.0)
        )
        return d_target_loss + d_source_loss

    def _patch_indices(self):
        """Per encoder level, the locations PatchNCE compares this step,
        drawn where there are more than `nce_patches` from the run's seed
        and the step (`patch_indices`)."""
        if not on_tensorflow():  # eager: the step is a number
            step = int(ops.convert_to_numpy(self.g_optimizer.iterations))

            def draw(level, locations, patches):
                order = np.random.default_rng([(self.seed + level) % 2**31, step])
                return ops.convert_to_tensor(
                    order.permutation(locations)[:patches].astype("int32"))

            return patch_indices(self.patch_nce["g_target"].counts, draw)
        import tensorflow as tf

        step = tf.cast(self.g_optimizer.iterations, tf.int32)

        def draw(level, locations, patches):
            seed = tf.stack([tf.constant((self.seed + level) % 2**31, tf.int32), step])
            scores = tf.random.stateless_uniform([locations], seed=seed)
            return tf.cast(tf.argsort(scores)[:patches], tf.int32)

        return patch_indices(self.patch_nce["g_target"].counts, draw)
