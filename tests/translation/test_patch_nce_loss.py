"""PatchNCE: the generator's encoder levels, the projection heads, a loss
that sees a patch leave its location, and its place in the training step."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tests.harness import tiny_model_config
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
from vaecyclegan.translation.patch_nce_loss import (
    PatchNCE,
    build_patch_projector,
    encoder_layer_names,
    patch_nce_loss,
)


def _identity(patches):
    return patches


def _features(seed=0, size=16, channels=64):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(2, size, size, channels)).astype("float32")]


def _all(size=16):
    return [ops.arange(size * size, dtype="int32")]


def test_the_encoder_is_the_generators_own_up_to_the_latent():
    generator = build_network(tiny_model_config(), "g_target")
    assert encoder_layer_names(generator) == ["stem_relu", "down1_relu", "down2_relu", "res0_add"]
    nce = PatchNCE(generator, image_size=32)
    # The same weights, not copies: training the generator trains the encoder.
    generator_ids = {id(v) for v in generator.trainable_variables}
    assert {id(v) for v in nce.encoder.trainable_variables} <= generator_ids
    assert nce.counts == [(1024, 256), (256, 256), (64, 64), (64, 64)]
    image = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    features = nce.encoder(image)
    assert [tuple(f.shape) for f in features] == [(1, 32, 32, 8), (1, 16, 16, 16),
                                                   (1, 8, 8, 32), (1, 8, 8, 32)]


def test_the_projector_maps_each_level_to_its_own_head():
    projector = build_patch_projector([8, 16], width=32)
    outputs = projector([np.zeros((2, 5, 8), "float32"), np.ones((2, 5, 16), "float32")])
    assert [tuple(o.shape) for o in outputs] == [(2, 5, 32), (2, 5, 32)]
    assert len(projector.trainable_variables) == 8  # two Dense layers a level


def test_patches_that_cannot_be_told_apart_give_log_of_their_count():
    flat = [np.ones((2, 16, 16, 8), "float32")]
    loss = float(patch_nce_loss(flat, flat, _identity, _all()))
    assert loss == pytest.approx(np.log(256), rel=1e-5)


def test_a_patch_that_leaves_its_location_is_seen():
    features = _features()
    kept = float(patch_nce_loss(features, features, _identity, _all()))
    moved = float(patch_nce_loss(features, [np.roll(features[0], 3, axis=1)], _identity, _all()))
    # Distinct random vectors pick themselves out almost surely...
    assert kept < 0.1
    # ...and a shifted copy picks the wrong location: near chance (log 256).
    assert moved > 4.0


def test_a_scaled_translation_keeps_its_patches():
    # The comparison is of directions (cosines), not magnitudes.
    features = _features()
    scaled = [3.0 * features[0]]
    assert float(patch_nce_loss(features, scaled, _identity, _all())) == pytest.approx(
        float(patch_nce_loss(features, features, _identity, _all())), abs=1e-5)


def test_the_order_of_all_locations_does_not_matter():
    # What lets the backends, which draw different locations, be compared.
    features, other = _features(0), _features(1)
    order = np.random.default_rng(2).permutation(256).astype("int32")
    assert float(patch_nce_loss(features, other, _identity, [order])) == pytest.approx(
        float(patch_nce_loss(features, other, _identity, _all())), rel=1e-5)


def test_only_the_translation_side_is_trained():
    # CUT holds the input's patches fixed: the gradient reaches the
    # translation's features only.
    source = tf.Variable(_features(0)[0])
    translation = tf.Variable(_features(1)[0])
    with tf.GradientTape() as tape:
        loss = patch_nce_loss([source], [translation], _identity, _all())
    to_source, to_translation = tape.gradient(loss, [source, translation])
    assert to_source is None or float(tf.reduce_max(tf.abs(to_source))) == 0.0
    assert float(tf.reduce_max(tf.abs(to_translation))) > 0.0


def _tiny_trainer(**kwargs):
    import keras

    from vaecyclegan.translation.trainer import VAECycleGAN

    keras.utils.set_random_seed(0)
    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    model = VAECycleGAN(*(networks[n] for n in TRANSLATION_NETWORKS), image_size=32, **kwargs)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3),
                  d_optimizer=keras.optimizers.Adam(1e-3))
    return model


def test_the_step_trains_the_heads_with_the_generators():
    model = _tiny_trainer(lambda_nce=1.0, nce_patches=16)
    heads = [nce.projector for nce in model.patch_nce.values()]
    before = [np.array(v) for head in heads for v in head.trainable_variables]
    rng = np.random.default_rng(0)
    batch = tuple(rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32") for _ in range(2))
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=2,
                        verbose=0, shuffle=False)
    assert np.isfinite(history.history["patch_nce"]).all()
    after = [np.array(v) for head in heads for v in head.trainable_variables]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))
    # The heads are resumed with the rest, and are not among the weight files.
    checkpointed = {id(v) for v in model.checkpoint_variables()}
    assert all(id(v) in checkpointed for head in heads for v in head.variables)


def test_each_step_draws_its_own_distinct_locations():
    model = _tiny_trainer(lambda_nce=1.0, nce_patches=16)
    first = [np.asarray(i) for i in model._patch_indices()]
    model.g_optimizer.iterations.assign(1)
    second = [np.asarray(i) for i in model._patch_indices()]
    for (locations, patches), drawn in zip(model.patch_nce["g_target"].counts, first):
        assert len(drawn) == patches == 16 and len(set(drawn.tolist())) == 16
        assert drawn.min() >= 0 and drawn.max() < locations
    assert not np.array_equal(first[0], second[0])


def test_no_patch_nce_without_its_weight_and_none_without_a_size():
    assert _tiny_trainer().patch_nce == {}
    from vaecyclegan.translation.trainer import VAECycleGAN

    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    with pytest.raises(ValueError, match="image_size"):
        VAECycleGAN(*(networks[n] for n in TRANSLATION_NETWORKS), lambda_nce=1.0)
