"""The xtal command itself: version, help with examples, fast start-up."""

import subprocess
import sys

from xtal_cli import __version__
from xtal_cli.cli import app


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_every_subcommand_has_help_with_an_example(invoke):
    import typer.main

    group = typer.main.get_command(app)
    assert "simulate" in group.commands
    for name in group.commands:
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert "Example" in result.stdout, f"{name} --help shows no example"


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from xtal_cli.cli import app; "
        "heavy = [m for m in ('torch', 'pymatgen.core', 'sklearn', 'optuna', 'matplotlib') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
