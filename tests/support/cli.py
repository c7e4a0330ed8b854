"""The `docflow` command line, run in this process."""

from __future__ import annotations

import pytest

from shared.dev import cli


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`docflow ARGV...`: its exit code, stdout and stderr."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
