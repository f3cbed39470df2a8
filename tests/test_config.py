"""`config.json` is validated field by field: a wrong type, a size out of
range, an image size the generator's stride does not divide, a window in
the wrong order or an unknown key is one line naming the field, not a Keras
or Python error when the networks are built."""

import copy
import json
import os

import numpy as np
import pytest

from tests.harness import assert_one_line_error, infer, tiny_model_config, write_image
from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError
from vaecyclegan.training.presets import PRESETS

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "weights_v0_1_0")


def _tiny():
    """The smoke preset's config as `config.json` holds it."""
    return json.loads(json.dumps(tiny_model_config().to_dict()))


def _with(path, value):
    """The tiny config with `path` ("generator.filters") set to `value`."""
    data = _tiny()
    *sections, key = path.split(".")
    target = data
    for section in sections:
        target = target[section]
    target[key] = value
    return data


def _refused(data, message):
    with pytest.raises(ValueError) as error:
        ModelConfig.from_dict(data)
    assert str(error.value) == message
    return error


# Every preset's config, built as the tests' harness builds the smoke one,
# and the config that version 0.1.0 wrote, pass.

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_config_passes(name):
    preset = copy.deepcopy(PRESETS[name])
    config = ModelConfig(image_size=preset.image_size, generator=preset.generator,
                         discriminator=preset.discriminator, rrdbnet=preset.rrdbnet)
    assert config.validate() is config
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config


def test_the_0_1_0_fixture_and_the_defaults_pass():
    config = ModelConfig.load(FIXTURE)
    assert config.generator.filters == 8 and config.intensity.ct_window_hu == (-1000.0, 2000.0)
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
    # Keys left out take their defaults, as before.
    assert ModelConfig.from_dict({"format_version": 1}) == ModelConfig()


# Types: ints are ints (not true, not 8.0, not "8"), floats finite numbers.

@pytest.mark.parametrize("value,shown", [
    (-8, "-8"), (0, "0"), ("eight", '"eight"'), ("8", '"8"'), (8.0, "8.0"), (True, "true"),
    (None, "null"), ([8], "[8]")])
def test_generator_filters_must_be_a_positive_integer(value, shown):
    _refused(_with("generator.filters", value),
             f"generator.filters must be a positive integer, not {shown}")


@pytest.mark.parametrize("path", [
    "image_size", "channels",
    "generator.filters", "generator.max_filters", "generator.latent_channels",
    "generator.norm_groups",
    "discriminator.filters", "discriminator.max_filters", "discriminator.num_layers",
    "discriminator.num_scales", "discriminator.norm_groups",
    "rrdbnet.num_feat", "rrdbnet.num_block", "rrdbnet.num_grow_ch"])
@pytest.mark.parametrize("value,shown", [(0, "0"), (-1, "-1"), (2.5, "2.5"), (False, "false")])
def test_every_size_must_be_a_positive_integer(path, value, shown):
    _refused(_with(path, value), f"{path} must be a positive integer, not {shown}")


@pytest.mark.parametrize("path", ["generator.num_downsamples", "generator.num_res_blocks"])
def test_level_and_block_counts_may_be_zero_not_negative(path):
    data = _with(path, 0)
    data["image_size"] = 32
    assert getattr(ModelConfig.from_dict(data).generator, path.split(".")[1]) == 0
    _refused(_with(path, -1), f"{path} must be an integer >= 0, not -1")
    _refused(_with(path, "2"), f'{path} must be an integer >= 0, not "2"')


def test_levels_without_skip_run_from_0_to_the_generators_levels():
    # The smoke generator has 2 levels; a config without the key (0.1.0's)
    # keeps every skip, as its weights were trained.
    assert ModelConfig.from_dict(_with("generator.levels_without_skip", 2)).generator \
        .levels_without_skip == 2
    assert ModelConfig.load(FIXTURE).generator.levels_without_skip == 0
    _refused(_with("generator.levels_without_skip", 3), "generator.levels_without_skip 3 is "
             "more than the generator's 2 levels (generator.num_downsamples)")
    _refused(_with("generator.levels_without_skip", -1),
             "generator.levels_without_skip must be an integer >= 0, not -1")
    _refused(_with("generator.levels_without_skip", True),
             "generator.levels_without_skip must be an integer >= 0, not true")


@pytest.mark.parametrize("value,shown", [("0", '"0"'), (1.5, "1.5"), (2**63, str(2**63))])
def test_the_seed_must_be_a_64_bit_integer(value, shown):
    _refused(_with("generator.seed", value),
             f"generator.seed must be an integer (a 64-bit seed), not {shown}")
    assert ModelConfig.from_dict(_with("generator.seed", -3)).generator.seed == -3


@pytest.mark.parametrize("value,shown", [(3, "3"), (1, "1"), (8, "8"), ("4", '"4"'), (4.0, "4.0")])
def test_the_upscaler_scale_is_2_or_4(value, shown):
    _refused(_with("rrdbnet.scale", value), f"rrdbnet.scale must be 2 or 4, not {shown}")
    assert ModelConfig.from_dict(_with("rrdbnet.scale", 2)).rrdbnet.scale == 2


def test_the_image_size_must_be_a_multiple_of_the_generator_stride():
    # The smoke generator has 2 levels: stride 4.
    _refused(_with("image_size", 34), "image_size 34 is not a multiple of the generator's "
             "stride 4 (2 ** generator.num_downsamples = 2 ** 2)")
    data = _with("generator.num_downsamples", 6)  # stride 64 > 32
    _refused(data, "image_size 32 is not a multiple of the generator's stride 64 "
             "(2 ** generator.num_downsamples = 2 ** 6)")
    assert ModelConfig.from_dict(_with("image_size", 36)).image_size == 36


@pytest.mark.parametrize("value,shown", [
    ([2000, -1000], "[2000, -1000]"), ([0, 0], "[0, 0]")])
def test_the_ct_window_must_run_low_to_high(value, shown):
    _refused(_with("intensity.ct_window_hu", value),
             f"intensity.ct_window_hu must be [low, high] with low < high, not {shown}")


@pytest.mark.parametrize("value,shown", [
    ([-1, 99], "[-1, 99]"), ([1, 101], "[1, 101]"), ([99.5, 0.5], "[99.5, 0.5]"),
    ([50, 50], "[50, 50]")])
def test_the_mri_percentiles_must_run_low_to_high_within_0_to_100(value, shown):
    _refused(_with("intensity.mri_percentiles", value),
             f"intensity.mri_percentiles must be [low, high] with 0 <= low < high <= 100, "
             f"not {shown}")
    assert ModelConfig.from_dict(_with("intensity.mri_percentiles", [0, 100])
                                 ).intensity.mri_percentiles == (0, 100)


@pytest.mark.parametrize("path", ["intensity.ct_window_hu", "intensity.mri_percentiles"])
@pytest.mark.parametrize("value,shown", [
    ([1, 2, 3], "[1, 2, 3]"), ([1], "[1]"), (5, "5"), ("0,100", '"0,100"'),
    (["a", "b"], '["a", "b"]'), ([0, float("nan")], "[0, NaN]"),
    ([float("-inf"), 10], "[-Infinity, 10]"), ([True, 50], "[true, 50]"), ({}, "{}")])
def test_windows_are_two_finite_numbers(path, value, shown):
    _refused(_with(path, value), f"{path} must be two finite numbers [low, high], not {shown}")


def test_windows_come_back_as_tuples():
    config = ModelConfig.from_dict(_with("intensity.ct_window_hu", [-100, 300.5]))
    assert config.intensity.ct_window_hu == (-100, 300.5)
    assert isinstance(config.intensity.mri_percentiles, tuple)


def test_unknown_keys_are_refused_naming_them():
    _refused(_with("generator.filter", 8), "unknown key generator.filter (did you mean "
             "generator.filters?)")
    _refused(_with("imagesize", 32), "unknown key imagesize (did you mean image_size?)")
    _refused(_with("discriminator.colour", 1), "unknown key discriminator.colour (known: "
             "filters, max_filters, num_layers, num_scales, norm_groups)")


@pytest.mark.parametrize("section", ["generator", "discriminator", "rrdbnet", "intensity"])
def test_a_section_must_be_an_object(section):
    with pytest.raises(ValueError, match=rf"^{section} must be an object of .*, not 5$"):
        ModelConfig.from_dict(_with(section, 5))


@pytest.mark.parametrize("value,shown", [
    (["MRI", "CT"], '["MRI", "CT"]'), ({"source": 1}, '{"source": 1}'), ("MRI", '"MRI"')])
def test_domains_are_an_object_of_strings(value, shown):
    _refused(_with("domains", value), 'domains must be an object of strings (e.g. '
             f'{{"source": "MRI", "target": "CT"}}), not {shown}')


def test_training_provenance_is_free_form_but_an_object():
    data = _with("training", {"anything": [1, None, {"x": "y"}]})
    assert ModelConfig.from_dict(data).training["anything"][2] == {"x": "y"}
    _refused(_with("training", "yesterday"), 'training must be an object, not "yesterday"')


def test_the_config_itself_must_be_an_object_of_version_1():
    _refused([1, 2], "the config must be a JSON object, not [1, 2]")
    data = _with("format_version", True)
    with pytest.raises(ValueError, match="format_version True is not supported"):
        ModelConfig.from_dict(data)


def test_a_validated_config_object_is_checked_too():
    config = tiny_model_config()
    config.generator.filters = -8
    with pytest.raises(ValueError, match=r"^generator.filters must be a positive integer, "
                       r"not -8$"):
        config.validate()


# `ModelConfig.load` turns each into an InputError naming config.json;
# command lines print it as one line.

def _weights_dir(tmp_path, data):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_load_names_the_file_and_the_field(tmp_path):
    folder = _weights_dir(tmp_path, _with("generator.filters", -8))
    with pytest.raises(InputError) as error:
        ModelConfig.load(str(folder))
    assert error.value.path == str(folder / "config.json")
    assert str(error.value) == (f"{folder / 'config.json'}: generator.filters must be a "
                                "positive integer, not -8")


def test_load_of_broken_json_still_says_so(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text("{\"format_version\": 1,", encoding="utf-8")
    with pytest.raises(InputError, match="not a vaecyclegan config"):
        ModelConfig.load(str(folder))


def test_infer_with_a_bad_config_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder = _weights_dir(tmp_path, _with("generator.filters", "eight"))
    write_image(tmp_path / "in" / "a.png", np.zeros((32, 32), np.uint8))
    code = infer("--direction", "mri2ct", "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--weights-dir", str(folder))
    assert_one_line_error(capsys, code, f"{folder / 'config.json'}: generator.filters must be "
                          'a positive integer, not "eight"')
    assert not (tmp_path / "out").exists()
