"""ESRGAN's RRDB-Net forward pass in PyTorch, computed straight from a state
dict in ESRGAN's names as `RRDBNet_arch.py` computes it (BasicSR's x2
models: the input pixel-unshuffled first). It shares no code with the Keras
model, so a converted upscaler that matches it is proven equal to the
original."""

import numpy as np


def esrgan_forward(esrgan_state_dict, images, scale):
    """Runs the state dict's RRDB-Net on `images`.

    Args:
        esrgan_state_dict: `{name: array}` in ESRGAN's current names
            (`to_esrgan_names`).
        images: float32 array (n, H, W, channels), channels last.
        scale: 4, or 2 for BasicSR's x2 layout.

    Returns:
        Array (n, H * scale, W * scale, channels), channels last.

    Example:
    >>> import keras
    >>> state = {}  # the Keras `rrdbnet`'s weights in ESRGAN's names
    >>> for variable in rrdbnet.weights:
    ...     layer, weight = variable.path.rsplit("/", 1)
    ...     value = keras.ops.convert_to_numpy(variable)
    ...     if weight == "kernel":  # Keras (kh, kw, in, out) to PyTorch (out, in, kh, kw)
    ...         state[f"{layer}.weight"] = value.transpose(3, 2, 0, 1)
    ...     else:
    ...         state[f"{layer}.bias"] = value
    >>> images = np.random.default_rng(0).random((1, 16, 16, 3), np.float32)
    >>> out = esrgan_forward(state, images, 4)
    >>> out.shape
    (1, 64, 64, 3)
    >>> bool(np.abs(out - keras.ops.convert_to_numpy(rrdbnet(images))).max() < 1e-3)
    True
    """
    import torch
    from torch.nn import functional as F

    weights = {name: torch.from_numpy(np.asarray(value, np.float32))
               for name, value in esrgan_state_dict.items()}

    def conv(name, x):
        return F.conv2d(x, weights[f"{name}.weight"], weights[f"{name}.bias"], padding=1)

    def lrelu(x):
        return F.leaky_relu(x, 0.2)

    def residual_dense_block(prefix, x):
        features = [x]
        for index in range(1, 5):
            features.append(lrelu(conv(f"{prefix}.conv{index}", torch.cat(features, 1))))
        return conv(f"{prefix}.conv5", torch.cat(features, 1)) * 0.2 + x

    blocks = len({name.split(".")[1] for name in weights if name.startswith("RRDB_trunk.")})
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
        if scale == 2:
            x = F.pixel_unshuffle(x, 2)
        features = conv("conv_first", x)
        trunk = features
        for block in range(blocks):
            block_input = trunk
            for dense in (1, 2, 3):
                trunk = residual_dense_block(f"RRDB_trunk.{block}.RDB{dense}", trunk)
            trunk = trunk * 0.2 + block_input
        features = features + conv("trunk_conv", trunk)
        for name in ("upconv1", "upconv2"):
            features = lrelu(conv(name, F.interpolate(features, scale_factor=2, mode="nearest")))
        output = conv("conv_last", lrelu(conv("HRconv", features)))
        return output.permute(0, 2, 3, 1).numpy()
