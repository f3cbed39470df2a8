"""CycleGAN's history of generated images for the discriminators.

Each discriminator sees, for every new translated image, either that image
or (once the pool is full, with probability 1/2) one translated at an
earlier step, which then leaves the pool for the new one (Shrivastava et
al. 2017; CycleGAN's `ImagePool`, 50 images). It keeps the discriminators
from forgetting what the generators produced a few steps ago.
"""

import keras
import numpy as np


class ImagePool:
    """A pool of `size` translated images, kept in variables.

    Under `tf.distribute` every replica keeps its own pool (variables
    synchronised on read; a checkpoint stores the first replica's). On
    PyTorch the step runs eagerly, and so does the pool (`_eager_query`).

    Args:
        size: images kept (0: the pool returns its input unchanged).
        image_shape: (H, W, C) of the images.
        seed: seed of the pool's random choices.
        name: prefix of its variable names.

    Example:
    >>> pool = ImagePool(50, (32, 32, 3), seed=0, name="pool_ct")
    >>> fake_ct = g_target(np.repeat(mri, 3, axis=-1))  # grey to the networks' 3 channels
    >>> shown = pool.query(fake_ct)  # in a trainer: inside train_step
    >>> tuple(shown.shape)
    (4, 32, 32, 3)
    """

    def __init__(self, size, image_shape, seed=0, name="pool"):
        self.size = size
        options = dict(trainable=False, synchronization="on_read",
                       aggregation="only_first_replica")
        self.images = keras.Variable(np.zeros((max(size, 1), *image_shape), "float32"),
                                     dtype="float32",
                                     name=f"{name}_images", **options)
        self.count = keras.Variable(0, dtype="int32", name=f"{name}_count", **options)
        self.seed_generator = keras.random.SeedGenerator(seed, name=f"{name}_seed")

    @property
    def variables(self):
        return [self.images, self.count, self.seed_generator.state]

    def query(self, images):
        """The images the discriminator sees instead of `images` (same shape).

        Written with explicit `tf.while_loop`/`tf.cond`: Keras traces
        `train_step` without AutoGraph.
        """
        if self.size == 0:
            return images
        if keras.backend.backend() != "tensorflow":
            return self._eager_query(images)
        import tensorflow as tf

        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        seeds = self.seed_generator.next()
        draws = tf.random.stateless_uniform((batch,), seeds)
        slots = tf.random.stateless_uniform((batch,), seeds + 1, maxval=self.size, dtype=tf.int32)
        pool, count = tf.identity(self.images.value), tf.identity(self.count.value)

        def step(index, pool, count, shown):
            image = images[index]

            def store():  # the pool is not full yet: keep it, show it
                return (tf.tensor_scatter_nd_update(pool, [[count]], image[None]), count + 1,
                        image)

            def swap():  # show an older one, keep the new one in its place
                slot = slots[index]
                return (tf.tensor_scatter_nd_update(pool, [[slot]], image[None]), count,
                        pool[slot])

            def keep():
                return pool, count, image

            pool, count, chosen = tf.cond(
                count < self.size, store,
                lambda: tf.cond(draws[index] > 0.5, swap, keep))
            return index + 1, pool, count, shown.write(index, chosen)

        shown = tf.TensorArray(tf.float32, size=batch, element_shape=images.shape[1:])
        _, pool, count, shown = tf.while_loop(
            lambda index, *_: index < batch, step, (tf.constant(0), pool, count, shown))
        self.images.assign(pool)
        self.count.assign(count)
        return shown.stack()

    def _eager_query(self, images):
        """`query` as Python control flow, for a step that runs eagerly
        (PyTorch): the same rule and the same kind of draws; the images
        stay on their device, and the pool is written once per query (one
        scatter, not one copy of the whole pool per image)."""
        ops = keras.ops
        images = ops.cast(images, "float32")
        batch = images.shape[0]
        draws = ops.convert_to_numpy(keras.random.uniform((batch,), seed=self.seed_generator))
        slots = ops.convert_to_numpy(
            keras.random.randint((batch,), 0, self.size, seed=self.seed_generator))
        pool = self.images.value
        count = int(ops.convert_to_numpy(self.count.value))
        written = {}  # slot -> this batch's image now in it (the last write wins)
        shown = []
        for index in range(batch):
            image = images[index]
            if count < self.size:  # not full yet: keep it, show it
                written[count] = image
                count += 1
                shown.append(image)
            elif draws[index] > 0.5:  # show an older one, keep the new one in its place
                slot = int(slots[index])
                shown.append(written.get(slot, pool[slot]))
                written[slot] = image
            else:
                shown.append(image)
        # Stacked before the pool is written: on PyTorch `pool[slot]` is a
        # view of the variable's storage, which `assign` writes in place.
        shown = ops.stack(shown)
        if written:
            slots_written = sorted(written)
            self.images.assign(ops.scatter_update(
                pool, np.array(slots_written, "int32")[:, None],
                ops.stack([written[slot] for slot in slots_written])))
        self.count.assign(count)
        return shown
