"""The VAE-CycleGAN training step on Keras' JAX backend, written stateless
as Keras documents custom training loops on JAX: every network runs through
`stateless_call`, gradients come from `jax.value_and_grad`, the optimisers
update through `stateless_apply`, and the whole step is one `jax.jit`
function of a state pytree and a batch.

Same losses and weights as `trainer.VAECycleGAN.train_step` (TensorFlow, PyTorch):
least-squares adversarial loss over every discriminator scale, cycle L1
(`lambda_cycle`), identity L1 (`lambda_cycle * lambda_identity`), the
mean KL term of the six generator calls (`kl_weight`) and, with
`lambda_structure`, the MIND structure loss of both translations, with
`lambda_nce` CUT's contrastive patch loss of both (its projection heads
trained with the generators, the locations drawn by `jax.random`); the
discriminators on real images against translations drawn through
CycleGAN's image pool. float32, mixed_bfloat16, or mixed_float16 with each
optimiser's dynamic loss scale; over several devices under a `JaxStrategy`
(GSPMD: one pool for the global batch, where each TensorFlow replica keeps
its own). `train.py` uses it when `KERAS_BACKEND=jax`.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from vaecyclegan.training.jax_loop import StatelessTrainer, loss_scale
from vaecyclegan.translation.cycle_losses import l1_loss, lsgan_loss
from vaecyclegan.translation.patch_nce_loss import NUM_PATCHES, patch_indices, patch_nce_for
from vaecyclegan.translation.structure_loss import mind_loss


def pool_query(pool, images, size):
    """CycleGAN's image pool as a pure function (the TensorFlow trainer's
    `ImagePool.query`): while the pool is not full each image is stored and
    shown; once full, each is swapped for a random stored one half the time.

    Args:
        pool: `[images (size, H, W, C) float32, count int32, PRNG key]`.
        images: the batch of translations, (batch, H, W, C).
        size: the pool's capacity (0: `images` are returned unchanged).

    Returns:
        `(shown, pool)`: the images the discriminator sees, and the new pool.
    """
    if size == 0:
        return images, pool
    images = images.astype(jnp.float32)
    stored, count, key = pool
    key, draw_key, slot_key = jax.random.split(key, 3)
    batch = images.shape[0]
    draws = jax.random.uniform(draw_key, (batch,))
    slots = jax.random.randint(slot_key, (batch,), 0, size)
    shown = []
    for index in range(batch):  # the batch is static under jit
        image = images[index]
        not_full = count < size
        swap = jnp.logical_and(jnp.logical_not(not_full), draws[index] > 0.5)
        slot = jnp.where(not_full, jnp.minimum(count, size - 1), slots[index])
        old = stored[slot]
        shown.append(jnp.where(swap, old, image))
        # One slot written (with itself when kept): an in-place update.
        stored = stored.at[slot].set(jnp.where(jnp.logical_or(not_full, swap), image, old))
        count = count + not_full.astype(count.dtype)
    return jnp.stack(shown), [stored, count, key]


class JaxVAECycleGAN(StatelessTrainer):
    """One stateless, jitted VAE-CycleGAN step on the JAX backend.

    The state is a pytree of arrays (never `keras.Variable`s): each
    network's trainable and non-trainable variables (the latent samplers'
    seed states among the latter), both optimisers' variables and the two
    image pools. `train_step` keeps it between steps; `sync_to_variables`
    writes it back into the Keras variables (for `save_networks`, say), and
    `fit` runs the stage's Keras callbacks (`StatelessTrainer`).

    Args:
        g_target, g_source: generators from `build_vae_unet_generator`.
        d_source, d_target: discriminators from
            `build_multiscale_patchgan_discriminator`.
        g_optimizer, d_optimizer: Keras optimisers (built here, on the
            generators' and the discriminators' trainable variables); each
            in its own `LossScaleOptimizer` under mixed_float16.
        lambda_cycle, lambda_identity, kl_weight, lambda_structure,
            lambda_nce, nce_patches: as `VAECycleGAN`.
        pool_size: translated images each discriminator's pool keeps
            (CycleGAN: 50; 0: none). Needs `image_size`.
        image_size: side of the training images.
        seed: seed of the pools' random choices and of PatchNCE's locations.
        strategy: a `JaxStrategy` (None: one device).

    Example:
    >>> from vaecyclegan.translation.array_batches import unpaired_batches
    >>> step = JaxVAECycleGAN(g_target, g_source, d_source, d_target,
    ...                       keras.optimizers.AdamW(2e-4, beta_1=0.5),
    ...                       keras.optimizers.AdamW(2e-4, beta_1=0.5))
    >>> batches = unpaired_batches(mri, ct, 1)  # endless
    >>> for _ in range(1):  # steps
    ...     logs = step.train_step(next(batches))
    >>> sorted(logs)
    ['adversarial', 'cycle', 'd_loss', 'g_loss', 'identity', 'kl']
    >>> step.sync_to_variables()
    """

    GENERATORS = ("g_target", "g_source")
    DISCRIMINATORS = ("d_target", "d_source")
    # Older checkpoints of this trainer hold its discriminators in the
    # other order (`checkpoint.CHECKPOINT_FORMAT`): refused, not swapped.
    oldest_checkpoint_format = 2

    def __init__(self, g_target, g_source, d_source, d_target, g_optimizer, d_optimizer,
                 lambda_cycle=10.0, lambda_identity=0.5, kl_weight=1e-3, lambda_structure=0.0,
                 pool_size=0, image_size=None, seed=0, strategy=None, lambda_nce=0.0,
                 nce_patches=NUM_PATCHES):
        super().__init__(strategy)
        # In the TensorFlow trainer's checkpoint order (`checkpoint_variables`).
        self.networks = {"g_target": g_target, "g_source": g_source,
                         "d_source": d_source, "d_target": d_target}
        self.lambda_nce = lambda_nce
        self.seed = seed
        self.patch_nce = {}
        self.generator_names = self.GENERATORS
        if lambda_nce:
            losses = patch_nce_for({"g_target": g_target, "g_source": g_source}, image_size,
                                   nce_patches)
            for name, nce in losses.items():
                self.patch_nce[name] = (nce, _positions(nce.encoder, self.networks[name]))
                self.networks[nce.projector.name] = nce.projector
            # Trained with the generators, by their optimiser.
            self.generator_names = self.GENERATORS + tuple(
                nce.projector.name for nce in losses.values())
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.optimizers = {"g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.kl_weight = kl_weight
        self.lambda_structure = lambda_structure
        self.pool_size = pool_size if image_size else 0
        channels = g_target.input_shape[-1]
        shape = (max(self.pool_size, 1), image_size or 1, image_size or 1, channels)
        # The pools as Keras variables, in ImagePool's order (images,
        # count, seed state): what checkpoints keep.
        self.pools = {}
        for index, name in enumerate(("pool_ct", "pool_mri")):
            key = np.asarray(jax.random.PRNGKey(seed + 101 + index), np.uint32)
            self.pools[name] = [
                keras.Variable(np.zeros(shape, np.float32), dtype="float32", trainable=False,
                               name=f"{name}_images"),
                keras.Variable(0, dtype="int32", trainable=False, name=f"{name}_count"),
                keras.Variable(key, dtype="uint32", trainable=False, name=f"{name}_seed")]
        # The same variable order as VAECycleGAN.compile builds them in.
        g_optimizer.build(self._trainable(self.generator_names))
        d_optimizer.build(self._trainable(self.DISCRIMINATORS))

    def _trainable(self, names):
        return [v for name in names for v in self.networks[name].trainable_variables]

    def extra_variables(self):
        return dict(self.pools)

    # long: one pure function is what jax.jit traces; its parts follow
    # trainer.py's train_step in the same order, to be compared line by line.
    def stateless_train_step(self, state, batch):
        """The step as a pure function: `(logs, new_state)`."""
        mri, ct = batch
        trainable, non_trainable = state["trainable"], dict(state["non_trainable"])

        def generator_loss(g_params, non_trainable):
            non_trainable = dict(non_trainable)
            kls = []

            def translate(name, images):
                # training=True: the latent is sampled, its KL term returned.
                outputs, non_trainable[name], losses = self.networks[name].stateless_call(
                    g_params[name], non_trainable[name], images, training=True,
                    return_losses=True)
                kls.append(ops.sum(ops.stack(losses)))
                return outputs

            def judge(name, images):
                outputs, non_trainable[name] = self.networks[name].stateless_call(
                    trainable[name], non_trainable[name], images, training=True)
                return outputs

            fake_ct = translate("g_target", mri)
            fake_mri = translate("g_source", ct)
            cycled_mri = translate("g_source", fake_ct)
            cycled_ct = translate("g_target", fake_mri)
            same_ct = translate("g_target", ct)
            same_mri = translate("g_source", mri)
            adversarial = (lsgan_loss(judge("d_target", fake_ct), 1.0)
                           + lsgan_loss(judge("d_source", fake_mri), 1.0))
            cycle = l1_loss(cycled_mri, mri) + l1_loss(cycled_ct, ct)
            identity = l1_loss(same_ct, ct) + l1_loss(same_mri, mri)
            kl = sum(kls) / 6.0
            g_loss = (adversarial + self.lambda_cycle * cycle
                      + self.lambda_cycle * self.lambda_identity * identity
                      + self.kl_weight * kl)
            logs = {"adversarial": adversarial, "cycle": cycle, "identity": identity, "kl": kl}
            if self.lambda_structure:
                structure = mind_loss(mri, fake_ct) + mind_loss(ct, fake_mri)
                g_loss = g_loss + self.lambda_structure * structure
                logs["structure"] = structure
            if self.lambda_nce:
                indices = self._patch_indices(state["g_optimizer"])
                patch_nce = (self._patch_nce("g_target", g_params, non_trainable, mri, fake_ct,
                                             indices)
                             + self._patch_nce("g_source", g_params, non_trainable, ct, fake_mri,
                                               indices))
                g_loss = g_loss + self.lambda_nce * patch_nce
                logs["patch_nce"] = patch_nce
            scaled = loss_scale(self.g_optimizer, state["g_optimizer"], g_loss)
            return scaled, (g_loss, logs, fake_ct, fake_mri, non_trainable)

        g_params = {name: trainable[name] for name in self.generator_names}
        (_, (g_loss, logs, fake_ct, fake_mri, non_trainable)), g_grads = jax.value_and_grad(
            generator_loss, has_aux=True)(g_params, non_trainable)

        # Translated images are fixed inputs to the discriminators, drawn
        # through the pools of earlier translations.
        fake_ct_d, pool_ct = pool_query(state["pool_ct"], jax.lax.stop_gradient(fake_ct),
                                        self.pool_size)
        fake_mri_d, pool_mri = pool_query(state["pool_mri"], jax.lax.stop_gradient(fake_mri),
                                          self.pool_size)

        def discriminator_loss(d_params, non_trainable):
            non_trainable = dict(non_trainable)

            def judge(name, images):
                outputs, non_trainable[name] = self.networks[name].stateless_call(
                    d_params[name], non_trainable[name], images, training=True)
                return outputs

            d_target_loss = 0.5 * (lsgan_loss(judge("d_target", ct), 1.0)
                                   + lsgan_loss(judge("d_target", fake_ct_d), 0.0))
            d_source_loss = 0.5 * (lsgan_loss(judge("d_source", mri), 1.0)
                                   + lsgan_loss(judge("d_source", fake_mri_d), 0.0))
            d_loss = d_target_loss + d_source_loss
            scaled = loss_scale(self.d_optimizer, state["d_optimizer"], d_loss)
            return scaled, (d_loss, non_trainable)

        d_params = {name: trainable[name] for name in self.DISCRIMINATORS}
        (_, (d_loss, non_trainable)), d_grads = jax.value_and_grad(
            discriminator_loss, has_aux=True)(d_params, non_trainable)

        new_trainable = dict(trainable)
        g_values, g_optimizer = apply_gradients(self.g_optimizer, state["g_optimizer"],
                                                self.generator_names, g_grads, trainable)
        d_values, d_optimizer = apply_gradients(self.d_optimizer, state["d_optimizer"],
                                                self.DISCRIMINATORS, d_grads, trainable)
        new_trainable.update(g_values)
        new_trainable.update(d_values)
        logs = {"g_loss": g_loss, "d_loss": d_loss, **logs}
        return logs, {"trainable": new_trainable, "non_trainable": non_trainable,
                      "g_optimizer": g_optimizer, "d_optimizer": d_optimizer,
                      "pool_ct": pool_ct, "pool_mri": pool_mri}

    def _patch_nce(self, name, g_params, non_trainable, images, translations, indices):
        """`PatchNCE.loss` of generator `name`, its encoder and projection
        head run statelessly on the step's parameters."""
        nce, (trainable_at, non_trainable_at) = self.patch_nce[name]
        encoder_values = ([g_params[name][i] for i in trainable_at],
                          [non_trainable[name][i] for i in non_trainable_at])
        projector = nce.projector.name

        def encode(batch):
            return nce.encoder.stateless_call(*encoder_values, batch, training=True)[0]

        def project(patches):
            return nce.projector.stateless_call(g_params[projector], non_trainable[projector],
                                                patches, training=True)[0]

        return nce.loss(images, translations, indices, encode, project)

    def _patch_indices(self, optimizer_state):
        """The TensorFlow trainer's `_patch_indices`, drawn by `jax.random`
        from the run's seed and the generator optimiser's step count."""
        step = optimizer_state[_iterations_index(self.g_optimizer)]

        def draw(level, locations, patches):
            key = jax.random.fold_in(jax.random.PRNGKey(self.seed + level), step)
            return jax.random.permutation(key, locations)[:patches].astype(jnp.int32)

        return patch_indices(self.patch_nce["g_target"][0].counts, draw)


def _positions(part, model):
    """Where `part`'s variables (a model sharing `model`'s layers) sit in
    `model`'s trainable and non-trainable lists."""
    trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
    non_trainable = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    return ([trainable[id(v)] for v in part.trainable_variables],
            [non_trainable[id(v)] for v in part.non_trainable_variables])


def _iterations_index(optimizer):
    """The place of the optimiser's step count among its variables."""
    return [v is optimizer.iterations for v in optimizer.variables].index(True)


def apply_gradients(optimizer, optimizer_state, names, grads, trainable):
    """`optimizer.stateless_apply` on the networks `names` (their gradients
    and values per name, as lists): `({name: new values}, new state)`."""
    flat_grads = [g for name in names for g in grads[name]]
    flat_values = [v for name in names for v in trainable[name]]
    flat_values, optimizer_state = optimizer.stateless_apply(
        optimizer_state, flat_grads, flat_values)
    values, start = {}, 0
    for name in names:
        count = len(trainable[name])
        values[name] = list(flat_values[start:start + count])
        start += count
    return values, optimizer_state
