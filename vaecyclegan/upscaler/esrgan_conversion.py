"""Official ESRGAN / BasicSR RRDB-Net weights (PyTorch) to the Keras HDF5 file.

Three namings of the same network are read:

- ESRGAN's current one (`RRDBNet_arch.py`): `conv_first`,
  `RRDB_trunk.N.RDBk.convj`, `trunk_conv`, `upconv1`, `upconv2`, `HRconv`,
  `conv_last`, the names `rrdbnet.py` uses;
- ESRGAN's pre-2019 one (`RRDB_ESRGAN_x4_old_arch.pth`): `model.0`,
  `model.1.sub.N.RDBk.convj.0`, `model.1.sub.<nb>`, `model.3`, `model.6`,
  `model.8`, `model.10`;
- BasicSR's (`ESRGAN_SRx4_*.pth`, `RealESRGAN_x2plus.pth`): `conv_first`,
  `body.N.rdbk.convj`, `conv_body`, `conv_up1`, `conv_up2`, `conv_hr`,
  `conv_last`, nested under `params_ema` or `params`.

The architecture (channels, `num_feat`, `num_block`, `num_grow_ch`, scale)
is read from the tensor shapes. torch is needed only here, and the pickle
is opened with `weights_only=True`, so a file cannot run code.
"""

import contextlib
import datetime
import os
import re
import tempfile
import warnings

import numpy as np

from vaecyclegan.config import CONFIG_FILENAME, ModelConfig, RRDBNetConfig
from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import nearest_existing
from vaecyclegan.names import WEIGHT_FILES
from vaecyclegan.provenance import UPSCALER_RECORD_KEYS, library_versions
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet

_OLD_TOP = {"model.0": "conv_first", "model.3": "upconv1", "model.6": "upconv2",
            "model.8": "HRconv", "model.10": "conv_last"}
_BASICSR_TOP = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
                "conv_hr": "HRconv"}
_CURRENT_NAME = re.compile(r"(conv_first|trunk_conv|upconv1|upconv2|HRconv|conv_last"
                           r"|RRDB_trunk\.\d+\.RDB[123]\.conv[1-5])\.(weight|bias)$")


def load_state_dict(path):
    """Reads a `.pth` file safely and returns its tensors as numpy arrays.

    Raises:
        InputError: no torch, unreadable file, or a pickle that holds code.
    """
    try:
        import torch
    except ImportError:
        raise InputError(path, "converting PyTorch weights needs torch: "
                         "pip install 'vaecyclegan[convert]'") from None
    if not os.path.isfile(path):
        raise InputError(path, "is a folder, not a weights file" if os.path.isdir(path)
                         else "file not found")
    try:
        with warnings.catch_warnings():
            # torch warns of an unusual pickle protocol on stderr, beside the
            # one line a refused file ends with.
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for bad or unsafe pickles
        raise InputError(path, f"not a safe PyTorch weights file ({_load_problem(error)})"
                         ) from None
    if isinstance(data, dict):
        for key in ("params_ema", "params"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not data:
        raise InputError(path, "holds no state_dict")
    arrays = {}
    for key, value in data.items():
        if not hasattr(value, "detach"):
            # Dropped, it left a file of other things looking empty.
            raise InputError(path, f"entry {key!r} is not a tensor ({type(value).__name__}): "
                             "not a state_dict of weights")
        # Sparse, meta (no data), quantized and complex tensors raised
        # tracebacks or lost their imaginary part; integers are no weights.
        if (value.layout != torch.strided or value.is_meta or not value.is_floating_point()):
            kind = ("meta" if value.is_meta else str(value.layout).replace("torch.", "")
                    if value.layout != torch.strided else str(value.dtype).replace("torch.", ""))
            raise InputError(path, f"entry {key!r} is not a dense floating-point tensor "
                             f"({kind}): not an RRDB-Net's weights")
        # A stride-0 view (torch.zeros(1).expand(4000, 64, 3, 3)) is saved as
        # its one value: a file of a few bytes could pose as any network.
        if value.untyped_storage().nbytes() < value.numel() * value.element_size():
            raise InputError(path, f"entry {key!r} shows more values than it holds (a view "
                             "that repeats them): not an RRDB-Net's weights")
        arrays[key] = value.detach().cpu().float().numpy()
    return arrays


def _load_problem(error):
    """What `torch.load` found wrong, in a few words for one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    if text.startswith("Weights only load failed"):
        # torch's own text goes on for lines about options it leaves to you.
        return ("it holds Python objects besides tensors, such as a whole pickled model or "
                "code, which are not loaded; save the network's state_dict() and convert that")
    return text.splitlines()[0] if text else type(error).__name__


def _checked_tensors(state_dict, path):
    """Refuses what no RRDB-Net holds before anything reads shapes: a name
    that is not `<layer>.weight` or `<layer>.bias`, a kernel that is not
    4-D or a bias that is not 1-D, values that are not finite."""
    for key, value in state_dict.items():
        parameter = key.rsplit(".", 1)[-1] if isinstance(key, str) and "." in key else None
        if parameter not in ("weight", "bias"):
            raise InputError(path, f"unexpected key {key!r}: an RRDB-Net holds convolution "
                             f"weights and biases only")
        dimensions = 4 if parameter == "weight" else 1
        if value.ndim != dimensions:
            raise InputError(path, f"{key} has {value.ndim} dimensions; a convolution's "
                             f"{parameter} has {dimensions}")
        if 0 in value.shape:  # a layer of no filters cannot be built
            raise InputError(path, f"{key} has a dimension of size 0 (shape {value.shape})")
        if not np.isfinite(value).all():
            raise InputError(path, f"{key} holds NaN or infinite values")
    return state_dict


def to_esrgan_names(state_dict, path="weights"):
    """Renames any of the three namings to ESRGAN's current one.

    Returns:
        `{esrgan_key: array}` with `.weight` / `.bias` suffixes kept.
    """
    keys = set(state_dict)
    if "model.0.weight" in keys:
        trunk_blocks = {int(m.group(1)) for k in keys
                        if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
        trunk_conv = f"model.1.sub.{len(trunk_blocks)}"
        renamed = {}
        for key, value in state_dict.items():
            prefix, suffix = key.rsplit(".", 1)
            if prefix in _OLD_TOP:
                name = _OLD_TOP[prefix]
            elif prefix == trunk_conv:
                name = "trunk_conv"
            elif (m := re.match(r"model\.1\.sub\.(\d+)\.(RDB\d)\.(conv\d)\.0$", prefix)):
                name = f"RRDB_trunk.{m.group(1)}.{m.group(2)}.{m.group(3)}"
            else:
                raise InputError(path, f"unexpected key {key!r} for ESRGAN's pre-2019 naming")
            renamed[f"{name}.{suffix}"] = value
        return renamed
    if "conv_body.weight" in keys:
        renamed = {}
        for key, value in state_dict.items():
            prefix, suffix = key.rsplit(".", 1)
            if prefix in _BASICSR_TOP:
                name = _BASICSR_TOP[prefix]
            elif (m := re.match(r"body\.(\d+)\.rdb(\d)\.(conv\d)$", prefix)):
                name = f"RRDB_trunk.{m.group(1)}.RDB{m.group(2)}.{m.group(3)}"
            elif prefix in ("conv_first", "conv_last"):
                name = prefix
            else:
                raise InputError(path, f"unexpected key {key!r} for BasicSR's naming")
            renamed[f"{name}.{suffix}"] = value
        return renamed
    if "trunk_conv.weight" in keys:
        for key in keys:
            if not _CURRENT_NAME.match(key):
                raise InputError(path, f"unexpected key {key!r} for ESRGAN's current naming")
        return dict(state_dict)
    sample = sorted(keys)[:3]
    raise InputError(path, f"not an RRDB-Net state_dict (keys start {sample}); expected ESRGAN "
                     "or BasicSR names")


def infer_rrdbnet_config(esrgan_state_dict, path="weights"):
    """Reads `(RRDBNetConfig, channels)` from the tensor shapes, and
    refuses a state_dict that is not exactly that network's tensors."""
    try:
        first = esrgan_state_dict["conv_first.weight"]
        last = esrgan_state_dict["conv_last.weight"]
        grow = esrgan_state_dict["RRDB_trunk.0.RDB1.conv1.weight"]
    except KeyError as missing:
        raise InputError(path, f"missing {missing.args[0]}") from None
    channels = last.shape[0]
    blocks = {int(k.split(".")[1]) for k in esrgan_state_dict if k.startswith("RRDB_trunk.")}
    if first.shape[1] == channels:
        scale = 4
    elif first.shape[1] == 4 * channels:
        scale = 2  # BasicSR's x2 models see the input pixel-unshuffled by 2
    else:
        raise InputError(path, f"conv_first takes {first.shape[1]} channels for {channels} "
                         "output channels: only x4 and x2 RRDB-Nets are supported")
    config = RRDBNetConfig(scale=scale, num_feat=first.shape[0], num_block=len(blocks),
                           num_grow_ch=grow.shape[0])
    # Checked before the network is built: three small tensors could ask
    # for a network of any size (conv_first of 30,000 filters: terabytes).
    _check_shapes(esrgan_state_dict, config, channels, path)
    return config, channels


def rrdbnet_shapes(config, channels):
    """`{ESRGAN key: PyTorch shape}` of every tensor of
    `build_rrdbnet(config, channels)`, from the config alone (3x3
    convolutions with biases throughout; kernels as (out, in, 3, 3))."""
    f, g = config.num_feat, config.num_grow_ch
    first_inputs = channels * (1 if config.scale == 4 else 4)  # x2: pixel-unshuffled input
    convolutions = {"conv_first": (first_inputs, f)}
    for block in range(config.num_block):
        for dense in (1, 2, 3):
            for index in range(1, 6):
                inputs = f + (index - 1) * g
                outputs = g if index < 5 else f
                convolutions[f"RRDB_trunk.{block}.RDB{dense}.conv{index}"] = (inputs, outputs)
    for name in ("trunk_conv", "upconv1", "upconv2", "HRconv"):
        convolutions[name] = (f, f)
    convolutions["conv_last"] = (f, channels)
    shapes = {}
    for name, (inputs, outputs) in convolutions.items():
        shapes[f"{name}.weight"] = (outputs, inputs, 3, 3)
        shapes[f"{name}.bias"] = (outputs,)
    return shapes


def _check_shapes(esrgan_state_dict, config, channels, path):
    """Refuses a missing, misshapen or extra tensor against the RRDB-Net
    that the shapes read off describe, before that network is built."""
    expected = rrdbnet_shapes(config, channels)
    for key, shape in expected.items():
        if key not in esrgan_state_dict:
            raise InputError(path, f"missing {key}")
        if tuple(esrgan_state_dict[key].shape) != shape:
            raise InputError(path, f"{key} has shape {tuple(esrgan_state_dict[key].shape)}, "
                             f"where an RRDB-Net of {config.num_feat} features, growth "
                             f"{config.num_grow_ch} and {channels} channels has {shape}")
    extra = sorted(set(esrgan_state_dict) - set(expected))
    if extra:
        raise InputError(path, f"unused tensors, e.g. {extra[0]}: not this architecture")


def keras_weights(model, esrgan_state_dict, path="weights"):
    """The state_dict as the Keras model's weight list, checking every shape.

    PyTorch convolution kernels (out, in, kh, kw) become Keras' (kh, kw, in,
    out); biases are unchanged.
    """
    values, used = [], set()
    for variable in model.weights:
        layer, weight = variable.path.rsplit("/", 1)
        key = f"{layer}.{'weight' if weight == 'kernel' else 'bias'}"
        if key not in esrgan_state_dict:
            raise InputError(path, f"missing {key}")
        value = esrgan_state_dict[key]
        if weight == "kernel":
            value = value.transpose(2, 3, 1, 0)
        if tuple(value.shape) != tuple(variable.shape):
            raise InputError(path, f"{key} has shape {value.shape} after transposition, the "
                             f"layer expects {tuple(variable.shape)}")
        values.append(np.ascontiguousarray(value, dtype=np.float32))
        used.add(key)
    extra = sorted(set(esrgan_state_dict) - used)
    if extra:
        raise InputError(path, f"unused tensors, e.g. {extra[0]}: not this architecture")
    return values


def _same_file(a, b):
    """Whether paths `a` and `b` name one file: the same path, a hard link
    or a symbolic link of it (`os.path.samefile` when both exist, the
    resolved paths otherwise)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(pth_path, h5_path):
    """Refuses an output that would overwrite the input, or that cannot be
    written, before anything is read or written.

    The output must not be the input (nor a hard or symbolic link of it),
    nor a folder, nor named `config.json` (written beside it), nor, in a
    folder with a `config.json`, named other than `rrdbnet_weights.h5` (the
    file that config describes); the input must not be that `config.json`
    either. Its folder must exist and be
    writable, or be creatable: its nearest existing ancestor must be a
    writable folder. Writability is probed with a temporary file (removed),
    not read from permission bits, which do not bind root.

    Raises:
        InputError: naming the output (or the folder) and the problem.
    """
    if not h5_path or h5_path.endswith(os.sep):
        # "" failed only after reading and converting; "w/" names a folder.
        raise InputError(h5_path or "output", "name the weights file to write, e.g. "
                         "weights/rrdbnet_weights.h5")
    folder = os.path.dirname(os.path.abspath(h5_path))
    config_path = os.path.join(folder, CONFIG_FILENAME)
    if _same_file(pth_path, h5_path):
        raise InputError(h5_path, f"is the input {pth_path} (or a link to it): converting would "
                         "overwrite it; name another output, e.g. weights/rrdbnet_weights.h5")
    if _same_file(pth_path, config_path):
        raise InputError(pth_path, f"is the {CONFIG_FILENAME} that converting writes beside "
                         f"{h5_path}; rename the input or choose another output folder")
    if os.path.basename(h5_path) == CONFIG_FILENAME:
        raise InputError(h5_path, f"{CONFIG_FILENAME} is written beside the weights; name the "
                         "weights file otherwise, e.g. rrdbnet_weights.h5")
    if os.path.isdir(h5_path):
        raise InputError(h5_path, "is a folder; name the weights file to write, e.g. "
                         f"{os.path.join(h5_path, 'rrdbnet_weights.h5')}")
    upscaler_file = WEIGHT_FILES["rrdbnet"]
    if os.path.isfile(config_path) and os.path.basename(h5_path) != upscaler_file:
        # The folder's config.json describes its own upscaler file: rewritten
        # for another file, it would no longer fit that one.
        raise InputError(h5_path, f"{config_path} describes this folder's {upscaler_file}; name "
                         f"the output {upscaler_file} to replace that upscaler, or write it "
                         "into another folder")
    existing = nearest_existing(folder)
    if not os.path.isdir(existing):
        raise InputError(folder, f"cannot be created: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        where = "" if existing == folder else f" (it would be created in {existing})"
        raise InputError(folder, f"cannot write here{where}: {_reason(error)}") from None


def _reason(error):
    """An OSError in a few words: its strerror, or its message's first line."""
    text = error.strerror or str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# The largest difference a converted upscaler may show from the original's
# PyTorch forward pass on [0, 1] images: float32 rounding through 23 blocks
# stays near 4e-5 (the tests' full ESRGAN), a wrong layer is far above.
CONVERSION_TOLERANCE = 1e-3


def check_conversion(model, esrgan_state_dict, scale, path="weights"):
    """Runs the converted `model` and the state dict's own PyTorch forward
    pass (`esrgan_reference`) on one seeded random 32-px image.

    Returns:
        The largest absolute difference of their outputs.

    Raises:
        InputError: above `CONVERSION_TOLERANCE` (nothing is written then).
    """
    from vaecyclegan.networks import run_network
    from vaecyclegan.upscaler.esrgan_reference import esrgan_forward

    channels = model.inputs[0].shape[-1]
    image = np.random.default_rng(0).random((1, 32, 32, channels), dtype=np.float32)
    converted = np.asarray(run_network(model, image), np.float64)
    difference = float(np.max(np.abs(converted - esrgan_forward(esrgan_state_dict, image,
                                                                 scale))))
    if not difference <= CONVERSION_TOLERANCE:
        raise InputError(path, f"the converted upscaler differs from the file's PyTorch forward "
                         f"pass by up to {difference:.3g} (more than {CONVERSION_TOLERANCE:g}); "
                         "nothing written")
    return difference


def _record_conversion(config, pth_path):
    """config.json's record of the new upscaler: the file it came from, when
    and with which versions, under `upscaler_run` as a `--stage sr` run's;
    the replaced upscaler's training keys go (they described other weights)."""
    for key in UPSCALER_RECORD_KEYS:
        config.training.pop(key, None)
    config.training["rrdbnet_source"] = os.path.basename(pth_path)
    config.training["upscaler_run"] = {
        "converted_from": os.path.basename(pth_path),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def convert_esrgan(pth_path, h5_path):
    """Converts a `.pth` RRDB-Net into `h5_path` and the `config.json` beside it.

    An existing `config.json` keeps its translator settings and gets the
    upscaler's; otherwise a default config with this upscaler is written.
    Name the output `rrdbnet_weights.h5` for `infer.py --upscale` to find it.
    The output is checked first (`check_output`): never the input, and a
    writable place; both files are written atomically.

    Returns:
        `(model, config)`.

    Raises:
        InputError: a bad input, an output that would overwrite it, or one
            that cannot be written.
    """
    from vaecyclegan.io.weight_files import save_weights_h5

    check_output(pth_path, h5_path)
    state_dict = to_esrgan_names(_checked_tensors(load_state_dict(pth_path), pth_path),
                                 pth_path)
    rrdb_config, channels = infer_rrdbnet_config(state_dict, pth_path)
    model = build_rrdbnet(rrdb_config, channels, name="rrdbnet")
    model.set_weights(keras_weights(model, state_dict, pth_path))
    difference = check_conversion(model, state_dict, rrdb_config.scale, pth_path)

    folder = os.path.dirname(os.path.abspath(h5_path))
    if os.path.isfile(os.path.join(folder, CONFIG_FILENAME)):
        config = ModelConfig.load(folder)
        if config.channels != channels:
            raise InputError(pth_path, f"a {channels}-channel upscaler does not fit "
                             f"{folder}/config.json ({config.channels} channels)")
    else:
        config = ModelConfig(channels=channels)
    config.rrdbnet = rrdb_config
    _record_conversion(config, pth_path)
    config.training["upscaler_run"]["max_difference_from_pytorch"] = difference
    existed, had_folder = os.path.lexists(h5_path), os.path.isdir(folder)
    written = h5_path
    try:
        save_weights_h5(model, h5_path)
        written = os.path.join(folder, CONFIG_FILENAME)
        config.save(folder)
    except OSError as error:
        with contextlib.suppress(OSError):  # leave nothing behind that we made
            if written != h5_path and not existed:
                os.remove(h5_path)  # no weights without the config that describes them
            if not had_folder:
                os.rmdir(folder)
        raise InputError(written, f"cannot write it: {_reason(error)}") from None
    return model, config
