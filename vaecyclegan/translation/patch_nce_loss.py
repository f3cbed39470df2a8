"""CUT's contrastive patch loss (PatchNCE; Park et al. 2020, "Contrastive
Learning for Unpaired Image-to-Image Translation").

A translation should keep, at every location, what its input shows there,
whatever the intensities become. PatchNCE asks the generator's own encoder
for that: encode the input and its translation, take the feature vectors
of both at the same few hundred locations per encoder level, project each
through a small MLP, and score with InfoNCE how well each translated
patch picks the input patch at its own location out of the input's other
patches. Unlike MIND (`structure_loss`), which compares fixed 3x3
neighbourhood descriptors, the encoder and the MLP learn which features
identify a location, across the whole receptive field of each level.

For one level, with `q` the translation's projected patches and `k` the
input's (each L2-normalised, `k` held fixed as CUT holds it), the loss is
the cross entropy of the softmax over `q . k / temperature` whose correct
class is the patch's own location; the levels' losses are averaged.

The model code is backend-neutral. Drawing the locations is not (each
trainer draws them with its backend's stateless random numbers); when
every location of a level is taken, the loss does not depend on their
order, so the two backends' losses can be compared exactly.
"""

import keras
from keras import layers, ops

# CUT's settings: 256 patches a level, a 256-wide two-layer MLP, tau 0.07.
NUM_PATCHES = 256
PROJECTION_WIDTH = 256
TEMPERATURE = 0.07


def encoder_layer_names(generator):
    """The encoder levels PatchNCE reads: the stem, every stride-2 level,
    and the first residual block where it comes before the latent sampler
    (the deterministic part of the VAE U-Net's encoder).

    Args:
        generator: a generator from `build_vae_unet_generator`.

    Example:
    >>> encoder_layer_names(g_target)  # 2 levels, 2 residual blocks
    ['stem_relu', 'down1_relu', 'down2_relu', 'res0_add']
    """
    names = ["stem_relu"]
    level = 1
    while _has_layer(generator, f"down{level}_relu"):
        names.append(f"down{level}_relu")
        level += 1
    if _has_layer(generator, "res0_add") and _comes_before(generator, "res0_add",
                                                           "latent_sample"):
        names.append("res0_add")
    return names


def _has_layer(model, name):
    return any(layer.name == name for layer in model.layers)


def _comes_before(model, first, second):
    names = [layer.name for layer in model.layers]
    return names.index(first) < names.index(second)


def build_encoder(generator):
    """The generator's encoder levels as a model sharing its weights.

    Returns:
        A functional `keras.Model` from the generator's input to one
        feature map a level of `encoder_layer_names(generator)`.
    """
    outputs = [generator.get_layer(name).output for name in encoder_layer_names(generator)]
    return keras.Model(generator.input, outputs, name=f"{generator.name}_encoder")


def build_patch_projector(channels, width=PROJECTION_WIDTH, name="patch_projector"):
    """CUT's projection head: per encoder level, Dense-ReLU-Dense.

    Args:
        channels: the channels of each level's features.
        width: the projection's width.
        name: the model's name.

    Returns:
        A functional `keras.Model` from one `(batch, patches, channels[i])`
        tensor a level to one `(batch, patches, width)` tensor a level.

    Example:
    >>> import numpy as np
    >>> projector = build_patch_projector([8, 16], width=32)
    >>> [tuple(p.shape) for p in projector([np.zeros((2, 5, 8)), np.zeros((2, 5, 16))])]
    [(2, 5, 32), (2, 5, 32)]
    """
    inputs, outputs = [], []
    for level, count in enumerate(channels):
        features = keras.Input((None, count), name=f"level{level}_patches")
        hidden = layers.Dense(width, activation="relu", name=f"level{level}_hidden")(features)
        outputs.append(layers.Dense(width, name=f"level{level}_projection")(hidden))
        inputs.append(features)
    return keras.Model(inputs, outputs, name=name)


def patch_counts(encoder, image_size, num_patches=NUM_PATCHES):
    """Per encoder level, `(locations, patches drawn)` for square training
    images of side `image_size`.

    Args:
        encoder: from `build_encoder`.
        image_size: side of the training images.
        num_patches: the most locations compared a level.

    Example:
    >>> patch_counts(build_encoder(g_target), 32)  # the smoke preset
    [(1024, 256), (256, 256), (64, 64), (64, 64)]
    """
    shapes = encoder.compute_output_shape((1, image_size, image_size, encoder.input_shape[-1]))
    if isinstance(shapes[0], int):  # one level: one shape, not a list of them
        shapes = [shapes]
    return [(height * width, min(num_patches, height * width))
            for _, height, width, _ in shapes]


def _sample(features, indices):
    # (batch, H, W, C) -> (batch, patches, C) at the flat locations `indices`.
    batch, height, width, channels = ops.shape(features)
    flat = ops.reshape(features, (batch, height * width, channels))
    return ops.take(flat, indices, axis=1)


def patch_nce_loss(source_features, translation_features, project, indices,
                   temperature=TEMPERATURE):
    """The PatchNCE loss of one generator's translations.

    Args:
        source_features: the encoder's levels on the generator's inputs,
            each (batch, H, W, C).
        translation_features: the same levels on its translations.
        project: a function from a list of (batch, patches, C) tensors, one
            a level, to their projections (the projector, called the way
            the backend's trainer calls it).
        indices: per level, the int32 flat locations (row * W + column) to
            compare, the same for every image of the batch.
        temperature: the softmax's temperature.

    Returns:
        A float32 scalar: log(patches) where the projections cannot tell
        locations apart, lower the better each translated patch picks its
        own location.

    Example:
    >>> import numpy as np
    >>> flat = [np.ones((1, 4, 4, 8), "float32")]  # every patch alike
    >>> round(float(patch_nce_loss(flat, flat, lambda xs: xs, [ops.arange(16)])), 3)
    2.773
    """
    queries = project([_sample(f, i) for f, i in zip(translation_features, indices)])
    keys = project([_sample(f, i) for f, i in zip(source_features, indices)])
    losses = []
    for query, key in zip(queries, keys):
        query = _unit(query)
        key = ops.stop_gradient(_unit(key))
        logits = ops.matmul(query, ops.transpose(key, (0, 2, 1))) / temperature
        positives = ops.sum(query * key, axis=-1) / temperature
        losses.append(ops.mean(ops.logsumexp(logits, axis=-1) - positives))
    return ops.mean(ops.stack(losses))


def _unit(vectors):
    vectors = ops.cast(vectors, "float32")
    return vectors / ops.sqrt(ops.sum(ops.square(vectors), axis=-1, keepdims=True) + 1e-12)


class PatchNCE:
    """PatchNCE for one generator: its encoder and its projection head.

    The head's weights are trained with the generator's and are part of a
    run's checkpoint, not of its weight files (CUT discards them too).

    Args:
        generator: a generator from `build_vae_unet_generator`.
        image_size: side of the training images.
        num_patches: locations compared a level (all of a smaller level).
        width: the projection's width.

    Example:
    >>> nce = PatchNCE(g_target, image_size=32)
    >>> def draw(level, locations, patches):  # random distinct locations
    ...     return keras.random.shuffle(ops.arange(locations, dtype="int32"), seed=level)[:patches]
    >>> indices = patch_indices(nce.counts, draw)
    >>> [int(i.shape[0]) for i in indices]
    [256, 256, 64, 64]
    >>> mri_batch = ops.repeat(mri, 3, axis=-1)  # grey to the networks' 3 channels
    >>> loss = nce.loss(mri_batch, g_target(mri_batch), indices)
    """

    def __init__(self, generator, image_size, num_patches=NUM_PATCHES, width=PROJECTION_WIDTH):
        self.encoder = build_encoder(generator)
        self.projector = build_patch_projector(
            [output.shape[-1] for output in self.encoder.outputs], width,
            name=f"{generator.name}_patch_projector")
        self.counts = patch_counts(self.encoder, image_size, num_patches)

    def loss(self, images, translations, indices, encode=None, project=None):
        """`patch_nce_loss` of `images` and their `translations`.

        Args:
            images, translations: (batch, H, W, C) batches.
            indices: per level, the flat locations to compare.
            encode, project: the encoder and the projector as functions
                (the JAX trainer's stateless calls); None: the models
                called directly (TensorFlow).
        """
        encode = encode or (lambda batch: self.encoder(batch, training=True))
        project = project or (lambda patches: self.projector(patches, training=True))
        # A one-level model returns its output bare, not in a list.
        return patch_nce_loss(_as_list(encode(images)), _as_list(encode(translations)),
                              lambda patches: _as_list(project(patches)), indices)


def patch_nce_for(generators, image_size, num_patches=NUM_PATCHES):
    """`{name: PatchNCE}` for the trainers' two generators.

    Raises:
        ValueError: no `image_size`, or generators whose encoders differ
            in their levels' sizes (the trainers draw one set of locations
            for both).
    """
    if not image_size:
        raise ValueError("lambda_nce needs image_size (its patch counts)")
    losses = {name: PatchNCE(generator, image_size, num_patches)
              for name, generator in generators.items()}
    if len({tuple(nce.counts) for nce in losses.values()}) != 1:
        raise ValueError("PatchNCE needs generators with encoders of one shape")
    return losses


def patch_indices(counts, draw):
    """Per level, the flat locations PatchNCE compares: every location of
    a level with no more than the patches asked (in order, so that the
    backends agree exactly), else `draw(level, locations, patches)`, the
    backend's random choice of `patches` distinct ones.

    Example:
    >>> [keras.ops.convert_to_numpy(i).tolist() for i in patch_indices([(4, 4)], draw=None)]
    [[0, 1, 2, 3]]
    """
    return [ops.arange(locations, dtype="int32") if patches == locations
            else draw(level, locations, patches)
            for level, (locations, patches) in enumerate(counts)]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
