"""ESRGAN's adversarial stage: its loss, its discriminator, its perceptual
loss and a training step."""

import os

import keras
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.errors import InputError
from vaecyclegan.upscaler.adversarial_trainer import RelativisticSRGAN
from vaecyclegan.upscaler.relativistic_loss import relativistic_losses
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet
from vaecyclegan.upscaler.vgg_perceptual_loss import build_vgg_feature_extractor, find_vgg19_weights
from vaecyclegan.upscaler.vgg_style_discriminator import build_vgg_style_discriminator


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def test_relativistic_losses_follow_esrgan_equations():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(1, 1, (6, 1)), rng.normal(-1, 1, (6, 1))
    d_loss, g_loss = relativistic_losses(real.astype("float32"), fake.astype("float32"))
    real_vs_fake, fake_vs_real = real - fake.mean(), fake - real.mean()
    # L_D = -E[log D(xr, xf)] - E[log(1 - D(xf, xr))], halved; 1 - sigmoid(x) = sigmoid(-x).
    expected_d = 0.5 * (-_log_sigmoid(real_vs_fake).mean() - _log_sigmoid(-fake_vs_real).mean())
    expected_g = 0.5 * (-_log_sigmoid(-real_vs_fake).mean() - _log_sigmoid(fake_vs_real).mean())
    assert float(d_loss) == pytest.approx(expected_d, rel=1e-5)
    assert float(g_loss) == pytest.approx(expected_g, rel=1e-5)


def test_discriminator_matches_basicsr_vgg_style_discriminator():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class VGGStyleDiscriminator(nn.Module):  # BasicSR's, for input 128
        def __init__(self, num_in_ch=3, num_feat=64):
            super().__init__()
            widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
            layers, previous = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)], num_feat
            for stage, width in enumerate(widths):
                if stage:
                    layers += [nn.Conv2d(previous, width, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(width, affine=True)]
                layers += [nn.Conv2d(width, width, 4, 2, 1, bias=False),
                           nn.BatchNorm2d(width, affine=True)]
                previous = width
            self.features = nn.Sequential(*layers)
            self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
            self.linear2 = nn.Linear(100, 1)

    reference = VGGStyleDiscriminator()
    expected = sum(p.numel() for p in reference.parameters())
    model = build_vgg_style_discriminator(input_size=128, num_feat=64)
    assert model.count_params() - _bn_moving_stats(model) == expected
    names = {layer.name for layer in model.layers}
    assert {"conv0_0", "conv0_1", "bn0_1", "conv4_1", "bn4_1", "linear1", "linear2"} <= names
    assert "bn0_0" not in names and "conv5_0" not in names
    assert model(np.zeros((2, 128, 128, 3), "float32")).shape == (2, 1)


def _bn_moving_stats(model):
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_discriminator_needs_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_vgg_style_discriminator(input_size=48)


def test_perceptual_features_are_conv5_4_before_its_relu(tmp_path):
    vgg = keras.applications.VGG19(include_top=False, weights=None)
    path = str(tmp_path / "vgg19_notop.weights.h5")
    vgg.save_weights(path)
    assert find_vgg19_weights(path) == path
    extractor = build_vgg_feature_extractor(path)
    image = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype("float32")
    features = np.asarray(extractor(image))
    assert features.shape == (1, 2, 2, 512)
    assert features.min() < 0  # before the ReLU
    # After a ReLU they are the original network's block5_conv4 output.
    original = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)
    caffe = image[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], "float32")
    np.testing.assert_allclose(np.maximum(features, 0), np.asarray(original(caffe)), atol=1e-3)
    assert not extractor.trainable_weights


def test_missing_vgg_weights_are_none_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert find_vgg19_weights() is None
    with pytest.raises(InputError, match="VGG19 weights file not found"):
        find_vgg19_weights(str(tmp_path / "absent.h5"))
    os.makedirs(tmp_path / "models")
    (tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    assert find_vgg19_weights().endswith("notop.h5")


def test_a_gan_step_updates_both_networks():
    keras.utils.set_random_seed(0)
    upscaler = build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))
    discriminator = build_vgg_style_discriminator(32, 8)
    gan = RelativisticSRGAN(upscaler, discriminator)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    low = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    high = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    before_g = [np.array(w) for w in upscaler.trainable_weights]
    before_d = [np.array(w) for w in discriminator.trainable_weights]
    logs = gan.train_on_batch(low, high, return_dict=True)
    assert {"g_loss", "d_loss", "pixel", "gan", "d_real", "d_fake"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not np.array_equal(a, np.array(b))
               for a, b in zip(before_g, upscaler.trainable_weights))
    assert any(not np.array_equal(a, np.array(b))
               for a, b in zip(before_d, discriminator.trainable_weights))


def test_a_gan_step_with_a_perceptual_loss_runs_under_mixed_precision():
    # The feature network computes in bfloat16, the other loss terms in
    # float32: summed unconverted, TensorFlow refused to add them.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        upscaler = build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))
        discriminator = build_vgg_style_discriminator(32, 8)
        features = keras.Sequential([keras.Input((None, None, 3)),
                                     keras.layers.Conv2D(4, 3, name="features")])
        features.trainable = False
        assert features(np.zeros((1, 8, 8, 3), "float32")).dtype == "bfloat16"
        gan = RelativisticSRGAN(upscaler, discriminator, features)
        gan.compile(g_optimizer=keras.optimizers.Adam(1e-3),
                    d_optimizer=keras.optimizers.Adam(1e-3))
        rng = np.random.default_rng(0)
        logs = gan.train_on_batch(rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32"),
                                  rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32"),
                                  return_dict=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert logs["perceptual"] > 0 and all(np.isfinite(v) for v in logs.values())
