"""ESRGAN's perceptual loss: L1 between VGG19 features (conv5_4, before its
ReLU) of the upscaled and the true image.

The ImageNet VGG19 weights cannot be fetched by this project; they are used
only when present locally (`--vgg-weights FILE`, or Keras' own cache
`~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`).
Without them the adversarial stage runs with L1 and GAN losses only, and
says so.
"""

import os

import keras
from keras import layers, ops

from vaecyclegan.errors import InputError

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# ImageNet channel means (BGR) that Keras' VGG19 subtracts from 0..255 input.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def find_vgg19_weights(path=None):
    """The VGG19 weights file to use: `path` if given (it must exist), else
    Keras' cache if it holds the file, else None."""
    if path:
        if not os.path.isfile(path):
            raise InputError(path, "VGG19 weights file not found")
        return path
    cached = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")),
                          "models", VGG19_NOTOP_FILE)
    return cached if os.path.isfile(cached) else None


def check_vgg19_weights(path=None):
    """Loads the VGG19 weights `find_vgg19_weights` gives, if any, and
    drops them: a run refuses a file the adversarial stage could not load
    before training, not after the stages before it (hours, on `paper`).

    Raises:
        InputError: `path` is missing or not VGG19 "notop" weights.
    """
    weights = find_vgg19_weights(path)
    if weights:
        build_vgg_feature_extractor(weights)


@keras.saving.register_keras_serializable(package="vaecyclegan")
class CaffeInput(layers.Layer):
    """[0, 1] RGB to the caffe-style input Keras' VGG19 takes: BGR, 0..255,
    the ImageNet mean removed. In `keras.ops`, so that it builds on every
    backend (a `Lambda` with `t[..., ::-1]` does not: PyTorch has no
    negative-step slice, and Keras runs a Lambda to infer its shape)."""

    def call(self, inputs):
        mean = ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=inputs.dtype)
        return ops.flip(inputs, axis=-1) * 255.0 - mean

    def compute_output_shape(self, input_shape):
        return input_shape


def build_vgg_feature_extractor(weights_path):
    """VGG19 up to conv5_4 before its activation, for [0, 1] RGB input.

    Args:
        weights_path: Keras VGG19 "notop" weights (ImageNet).

    Returns:
        A frozen `keras.Model` from (batch, H, W, 3) in [0, 1] to conv5_4
        features; H and W at least 16.
    """
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights_path)
    except (ValueError, OSError) as error:
        raise InputError(weights_path, f"not VGG19 'notop' weights ({error})") from None
    inputs = keras.Input((None, None, 3), name="rgb_0_1")
    x = CaffeInput(name="caffe_input")(inputs)
    for layer in vgg.layers[1:]:
        if layer.name == "block5_conv4":
            linear = layers.Conv2D(512, 3, padding="same", name="block5_conv4_linear")
            x = linear(x)
            linear.set_weights(layer.get_weights())
            break
        x = layer(x)
    model = keras.Model(inputs, x, name="vgg19_conv5_4")
    model.trainable = False
    return model
