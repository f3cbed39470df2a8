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
