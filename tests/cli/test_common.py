"""The command lines' shared ending: every stop is one `error: <file>:
<problem>` line."""

import sys

from vaecyclegan.cli.common import run_cli


def test_an_interrupt_ends_as_one_error_line_naming_the_program(capsys, monkeypatch):
    # It read "error: interrupted", without the `<file>:` part.
    monkeypatch.setattr(sys, "argv", ["/usr/bin/vaecyclegan-infer", "--input", "x"])

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_cli(interrupted, []) == 130
    assert capsys.readouterr().err == "error: vaecyclegan-infer: interrupted\n"


def test_a_subcommands_options_are_printed_against_its_own_defaults(capsys):
    # vaecyclegan-data printed "seed: 0 [default: None]" for a seed left alone.
    from vaecyclegan.cli.common import print_options
    from vaecyclegan.cli.data import build_parser

    parser = build_parser()
    print_options(parser, parser.parse_args(["realistic", "--out", "x", "--size", "64"]))
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert "[default" not in lines["seed"] and "[default" not in lines["style"]
    assert "[default" not in lines["command"]
    assert lines["size"].endswith("[default: 256]")
    # A required option has no default to differ from: infer.py printed
    # "direction: mri2ct [default: None]".
    assert "[default" not in lines["out"]


def test_a_ct_window_of_negative_level_reaches_every_parser_as_written():
    from vaecyclegan.cli.common import attach_negative_windows
    from vaecyclegan.cli.evaluate import build_parser as eval_parser
    from vaecyclegan.cli.train import build_parser as train_parser

    argv = attach_negative_windows(["--ct-window", "-600,1500", "--tissue-thresholds", "-200",
                                    "200"])
    assert argv == ["--ct-window=-600,1500", "--tissue-thresholds", "-200", "200"]
    assert train_parser().parse_args(argv[:1]).ct_window == (-600.0, 1500.0)
    assert eval_parser().parse_args(argv).ct_window == (-600.0, 1500.0)
    # An option after --ct-window is left alone.
    assert attach_negative_windows(["--ct-window", "--help"]) == ["--ct-window", "--help"]
