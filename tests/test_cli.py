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


def test_jobs_mean_the_same_in_every_command(invoke, tmp_path):
    """-j N >= 1 as given, -j -1 every core, anything else one clear error (no traceback)."""
    import pytest

    from xtal_cli.errors import XtalError
    from xtal_cli.parallel import worker_count

    assert worker_count(3) == 3 and worker_count(-1) >= 1
    for bad in (0, -2):
        with pytest.raises(XtalError, match="jobs="):
            worker_count(bad)
    for command in ("simulate", "featurize", "train-embed"):
        r = invoke(command, tmp_path / "missing.h5", "-o", tmp_path / "out", "-j", "0")
        assert r.exit_code == 2 and "--jobs 0" in r.stderr and "Traceback" not in r.output
