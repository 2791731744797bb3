"""The ``xtal`` command: a Typer app whose subcommands live in :mod:`xtal_cli.commands`.

Each subcommand module defines ``register(app)``. Only modules that exist are registered, so a
subcommand appears in ``xtal --help`` once it works; the order below is the order of the pipeline.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

from xtal_cli import __version__

COMMAND_MODULES = (
    "simulate",
    "featurize",
    "train_symmetry",
    "predict_symmetry",
    "refine_bbo",
    "identify_phases",
    "describe",
    "cluster",
    "train_detector",
    "detect_phase",
    "train_embed",
    "embed",
    "neighbors",
    "train_templates",
    "predict_structure",
)

app = typer.Typer(
    name="xtal",
    help=(
        "Powder X-ray diffraction from the command line: crystal structures and measured scans "
        "in, symmetry predictions, refined structures and materials maps out.\n\n"
        "Stages hand data to each other through versioned HDF5 files, so each runs on its own."
    ),
    epilog=(
        "Example: xtal simulate --builtin mp-sample -o patterns.h5 && "
        "xtal featurize patterns.h5 -o features.h5 && "
        "xtal train-symmetry features.h5 -o symmetry.h5 && "
        "xtal predict-symmetry symmetry.h5 scan.xy"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xtal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """xtal: powder X-ray diffraction from the command line."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        module_name = f"xtal_cli.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
