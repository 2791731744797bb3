"""Library errors name the Python parameter; the command line shows the user's flag instead."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from xtal_cli.commands._common import cli_flags, handle_errors
from xtal_cli.errors import ParameterError, XtalError


def _command(
    two_theta_min: float = typer.Option(0.0, "--two-theta-min"),
    jobs: int = typer.Option(1, "-j", "--jobs"),
    amp: bool = typer.Option(True, "--amp/--no-amp"),
) -> None:
    raise ParameterError("workers" if jobs == 0 else "two_theta_min", two_theta_min, "too low")


def test_parameter_error_reads_in_python_terms():
    exc = ParameterError("limits", (90.0, 20.0), "give (low, high) with low < high")
    assert isinstance(exc, XtalError) and isinstance(exc, ValueError)
    assert str(exc) == "limits=(90.0, 20.0): give (low, high) with low < high"
    assert exc.with_flag("--range") == "--range 90 20: give (low, high) with low < high"


def test_flags_come_from_the_command_signature():
    assert cli_flags(_command) == {
        "two_theta_min": "--two-theta-min",
        "jobs": "--jobs",
        "amp": "--amp",
    }


@pytest.mark.parametrize("jobs, expected", [("1", "--two-theta-min -1.5: too low"),
                                            ("0", "--jobs -1.5: too low")])  # fmt: skip
def test_the_cli_prints_the_flag(jobs, expected):
    app = typer.Typer()
    app.command()(handle_errors(_command, {"workers": "--jobs"}))
    r = CliRunner().invoke(app, ["--two-theta-min", "-1.5", "-j", jobs])
    assert r.exit_code == 2 and expected in r.stderr and "Traceback" not in r.output
