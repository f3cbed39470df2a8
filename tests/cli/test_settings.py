"""The command lines build the workflows' typed settings: every option is a
field with the same default, and values out of range end as a usage error
before anything runs."""

import dataclasses

import pytest

from vaecyclegan.cli.evaluate import build_parser as eval_parser
from vaecyclegan.cli.infer import build_parser as infer_parser
from vaecyclegan.cli.train import build_parser as train_parser
from vaecyclegan.cli.train import main as train_main
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.workflows.settings import EvalSettings, InferSettings, TrainSettings
from vaecyclegan.workflows.train import _model_config, resolve_preset

REQUIRED_INFER = ["--direction", "mri2ct", "--input", "in", "--output", "out"]


@pytest.mark.parametrize("parser, settings_class, argv", [
    (train_parser, TrainSettings, []),
    (infer_parser, InferSettings, REQUIRED_INFER),
    (eval_parser, EvalSettings, []),
])
def test_every_option_is_a_field_with_the_same_default(parser, settings_class, argv):
    options = vars(parser().parse_args(argv))
    fields = {f.name for f in dataclasses.fields(settings_class)}
    assert set(options) == fields
    parsed = settings_class(**options)
    if settings_class is InferSettings:
        assert parsed == InferSettings("mri2ct", "in", "out")
    else:
        assert parsed == settings_class()


def test_options_reach_the_settings():
    options = train_parser().parse_args(["--preset", "smoke", "--steps", "7", "--no-resume",
                                         "--sr-degradations", "blur", "--lr", "3e-4"])
    settings = TrainSettings(**vars(options))
    assert (settings.preset, settings.steps, settings.resume) == ("smoke", 7, False)
    assert settings.sr_degradations == ["blur"] and settings.lr == 3e-4


def test_levels_without_skip_reach_the_generators_of_this_run_only():
    options = train_parser().parse_args(["--levels-without-skip", "0"])
    preset = resolve_preset(TrainSettings(**vars(options)))
    assert preset.generator.levels_without_skip == 0
    assert PRESETS["quick"].generator.levels_without_skip == 2  # the preset is left as it was
    assert resolve_preset(TrainSettings()).generator.levels_without_skip == 2
    # and reach the run's config.json.
    settings = TrainSettings(levels_without_skip=1)
    assert _model_config(settings, resolve_preset(settings)).generator.levels_without_skip == 1
    with pytest.raises(ValueError, match="--levels-without-skip"):
        TrainSettings(levels_without_skip=True).validate()


def test_the_augmentation_and_patch_nce_options_reach_the_preset():
    options = train_parser().parse_args(["--augmentation", "flips"])
    assert resolve_preset(TrainSettings(**vars(options))).augmentation == "flips"
    options = train_parser().parse_args(["--lambda-nce", "2"])
    assert resolve_preset(TrainSettings(**vars(options))).lambda_nce == 2.0
    assert resolve_preset(TrainSettings()).augmentation == PRESETS["quick"].augmentation


@pytest.mark.parametrize("changes, option", [
    ({"steps": 0}, "--steps"),
    ({"batch_size": -1}, "--batch-size"),
    ({"lr": 0.0}, "--lr"),
    ({"checkpoint_every": -1}, "--checkpoint-every"),
    ({"sr_gan_steps": -2}, "--sr-gan-steps"),
    ({"preset": "huge"}, "--preset"),
    ({"precision": "float8"}, "--precision"),
    ({"sr_degradations": ["jpeg"]}, "--sr-degradations"),
    ({"best_metric": "dice"}, "--best-metric"),
    ({"image_size": 30}, "--image-size 30 is not a multiple of the quick generator's stride 8"),
    ({"image_size": 18, "preset": "smoke"}, "use 16 or 20"),
    ({"levels_without_skip": 4}, "--levels-without-skip must be 0 to 3 "),
    ({"augmentation": "elastic"}, "--augmentation must be one of affine, flips"),
    ({"levels_without_skip": -1}, "--levels-without-skip must be 0 to 3 "),
    ({"lambda_nce": -1.0}, "--lambda-nce must be 0 or a positive"),
    # Infinite values passed: --lr inf trained into NaN, exit 3.
    ({"lr": float("inf")}, "--lr must be a positive \\(finite\\) number"),
    ({"crop_factor": float("inf")}, "--crop-factor"),
    ({"weight_decay": float("inf")}, "--weight-decay"),
    ({"lambda_identity": float("inf")}, "--lambda-identity"),
    ({"sr_pairs": "pairs", "sr_degradations": ["blur"]}, "give one or the other"),
    # Each was a traceback (Keras' seed check) or weights whose window
    # infer.py refused (an infinite top end).
    ({"seed": -1}, "--seed must be between 0 and 4294967295"),
    ({"seed": 2**32}, "--seed must be between 0 and 4294967295"),
    ({"ct_window": (1e308, 1.7e308)}, "--ct-window"),
    ({"ct_window": (1e17, 1.0)}, "--ct-window"),
    # Finite in float64, not in the float32 intensity mapping: a traceback
    # after training, or all-black CT.
    ({"ct_window": (1e38, 1e38)}, "--ct-window: the window's ends must lie within"),
    ({"ct_window": (0.0, 1e-300)}, "--ct-window: the width must be at least 1 HU"),
])
def test_train_settings_name_the_option_out_of_range(changes, option):
    with pytest.raises(ValueError, match=option):
        dataclasses.replace(TrainSettings(), **changes).validate()
    assert TrainSettings().validate() == TrainSettings()  # the defaults are valid


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "--batch-size"),
    ({"samples": 0}, "--samples"),
    ({"direction": "none"}, "--direction none needs --upscale"),
    # Was a traceback: no translation, no latent samples.
    ({"direction": "none", "upscale": 4, "samples": 3}, "--samples draws latent samples"),
    ({"translate_tile": 16}, "--translate-tile"),
    ({"tile": 1}, "--tile"),
    # Ignored without --upscale, silently.
    ({"tile": 64}, "--tile and --tile-pad apply to --upscale"),
    ({"tile_pad": 8}, "--tile and --tile-pad apply to --upscale"),
    ({"upscale": 3}, "--upscale"),
    ({"axis": "oblique"}, "--axis"),
])
def test_infer_settings_name_the_option_out_of_range(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(InferSettings("mri2ct", "in", "out"), **changes).validate()
    InferSettings("none", "in", "out", upscale=4).validate()


@pytest.mark.parametrize("settings, message", [
    (EvalSettings(), "either --run"),
    (EvalSettings(run="r", predictions="p"), "either --run"),
    (EvalSettings(predictions="p", references="r"), "--inputs"),
    (EvalSettings(predictions="p", references="r", inputs="i"), "--out"),
    (EvalSettings(run="r", samples=0), "--samples"),
])
def test_eval_settings_name_the_problem(settings, message):
    with pytest.raises(ValueError, match=message):
        settings.validate()
    EvalSettings(run="r").validate()


def test_the_command_line_turns_a_bad_value_into_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        train_main(["--steps", "0", "--logdir", str(tmp_path / "run")])
    assert stopped.value.code == 2
    assert "--steps must be a positive (finite) number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, argv, message", [
    ("train", ["--steps", "0"], "error: train.py: --steps must be a positive (finite) number"),
    ("train", ["--precision", "float8"], "error: train.py: argument --precision: invalid choice"),
    ("infer", ["--input", "x", "--output", "y"],
     "error: infer.py: the following arguments are required: --direction"),
    ("evaluate", ["--synthrad", "s"], "error: vaecyclegan-eval: --synthrad needs --out"),
    ("data", ["phantom", "--out", "o", "--size", "big"],
     "error: vaecyclegan-data phantom: argument --size: invalid int value"),
    ("convert", [], "error: vaecyclegan-convert: "),
])
def test_option_errors_are_one_line_like_every_other_bad_input(capsys, module, argv, message):
    # argparse printed its usage block first: three lines or more.
    import importlib

    main = importlib.import_module(f"vaecyclegan.cli.{module}").main
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.count("\n") == 1 and err.startswith(message), err
    prog = message.split(": ")[1]
    assert err.rstrip().endswith(f"(see {prog} --help)")


def test_a_size_the_generator_cannot_take_stops_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        train_main(["--image-size", "30", "--logdir", str(tmp_path / "run"),
                    "--data-root", str(tmp_path / "data")])
    assert stopped.value.code == 2
    assert "--image-size 30 is not a multiple" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # The upscaler alone trains no generator, but config.json records the
    # size as the translators': infer.py refused a folder of size 30.
    with pytest.raises(ValueError, match="--image-size 30 is not a multiple"):
        dataclasses.replace(TrainSettings(), image_size=30, stage="sr").validate()


@pytest.mark.parametrize("option", [{"sr_steps": 5}, {"sr_gan_steps": 0}, {"sr_pairs": "p"},
                                    {"vgg_weights": "v.h5"}, {"sr_degradations": ["blur"]}])
def test_the_upscalers_options_are_refused_where_no_upscaler_trains(option):
    # They were recorded in config.json as applied.
    name = "--" + next(iter(option)).replace("_", "-")
    with pytest.raises(ValueError, match=f"{name} applies to the upscaler's stage"):
        dataclasses.replace(TrainSettings(stage="translate"), **option).validate()
    dataclasses.replace(TrainSettings(stage="all"), **option).validate()


def test_undecodable_paths_print_as_escapes_in_options_and_logs(capsys):
    import logging
    import os

    from vaecyclegan.cli.common import print_options

    name = os.fsdecode(b"/data/caf\xe9")
    print_options(train_parser(), train_parser().parse_args(["--data", name]))
    logging.getLogger("vaecyclegan.test").info(f"Dataset {name}")
    out = capsys.readouterr().out
    assert "/data/caf\\xe9" in out and out.count("/data/caf\\xe9") == 2


def test_options_left_to_the_preset_print_and_save_the_presets_values(tmp_path, capsys):
    # They printed and saved as None, which says nothing of the run.
    import json

    from vaecyclegan.cli.common import parse_settings
    from vaecyclegan.workflows.run_folder import write_options

    settings = parse_settings(train_parser(), TrainSettings, ["--steps", "600"])
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    quick = PRESETS["quick"]
    assert lines["lr"].split()[1] == str(quick.lr) and "[the quick preset's]" in lines["lr"]
    assert lines["lr_decay_start"].split()[1] == "300"  # half the steps given
    assert lines["levels_without_skip"].split()[1] == str(quick.generator.levels_without_skip)
    assert f"[the quick preset's: {quick.steps}]" in lines["steps"]
    assert lines["data"].split()[1] == "phantom"  # not preset-backed: as given
    write_options(str(tmp_path), settings)
    saved = json.loads((tmp_path / "options.json").read_text())
    assert saved["steps"] == 600 and saved["lr"] is None  # as given
    assert saved["from_preset"]["lr"] == quick.lr and "steps" not in saved["from_preset"]
    # Every preset field a setting overrides is resolved the same way.
    resolved = resolve_preset(settings)
    for key, value in settings.preset_values().items():
        if hasattr(resolved, key):
            assert getattr(resolved, key) == value, key
