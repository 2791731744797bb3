"""``xtal predict-symmetry``: model file + patterns → ranked crystal systems and space groups."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import console, emit_records, err_console, handle_errors
from xtal_cli.errors import XtalError

HELP = (
    "Rank crystal systems and space groups of measured powder patterns (.xy .xye .csv .dat .txt "
    ".xrdml; files, folders, globs, or - to read paths from stdin) or of a features/patterns "
    ".h5 file. Without a model file the built-in model answers (a profile CNN trained on "
    "augmented patterns of 27,248 Materials Project structures, any scan window; see "
    "docs/measured-data.md); a model file from xtal train-symmetry given first is used instead. "
    "The data's wavelength places the pattern in the model's unit, and the scan is checked "
    "against what the model was trained on."
)
EPILOG = (
    "Example: xtal predict-symmetry scan.xy --wavelength CuKa  |  "
    "xtal predict-symmetry symmetry.h5 scan.xy --top 5  |  "
    "ls *.xrdml | xtal predict-symmetry - --format jsonl"
)


def split_model_argument(args: list[str]) -> tuple[Path | None, list[str]]:
    """``(model file, inputs)``: the first argument is the model when it is a file that is
    neither a scan (by suffix) nor a patterns/features .h5 — a model of any kind, an old
    pickle bundle or a broken file, which reading it then names."""
    from xtal_cli.io.h5 import layout_kind
    from xtal_cli.io.scans import READERS

    if args and Path(args[0]).is_file() and Path(args[0]).suffix.lower() not in READERS:
        if layout_kind(args[0]) not in ("patterns", "features"):
            return Path(args[0]), list(args[1:])
    return None, list(args)


def predict_symmetry(
    args: list[str] = typer.Argument(
        ...,
        metavar="[MODEL] INPUTS...",
        help="Optional model file (.h5 from xtal train-symmetry; default: the built-in model), "
        "then pattern files, folders, globs, .h5 patterns/features, or -.",
    ),
    wavelength: str = typer.Option(
        None,
        "--wavelength",
        help="For files that give none: CuKa (lab Kα1+Kα2, Kα2 stripped), CuKa1, MoKa1 ... or Å.",
    ),
    top: int = typer.Option(5, "--top", help="How many candidates to list."),
    fmt: str = typer.Option("table", "--format", help="table, json, jsonl or csv (stdout)."),
    ka2: str = typer.Option(
        "auto", "--ka2", help="Strip Kα2: auto (when the file or a CuKa-type name says), yes, no."
    ),
    # duplicates: Typer option declarations share one shape (deliberate)
    prominence: float = typer.Option(
        None, "--prominence", help="Absolute peak prominence (default: 4 noise σ)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No warnings on stderr."),
) -> None:
    from xtal_cli.symmetry.predict import CSV_COLUMNS, predict_paths
    from xtal_cli.symmetry.profile_model import builtin_model_path, load_symmetry_model
    from xtal_cli.xrd.units import resolve_wavelength

    if fmt not in ("table", "json", "jsonl", "csv"):
        raise XtalError(f"--format {fmt!r}: use table, json, jsonl or csv")
    if ka2 not in ("auto", "yes", "no"):
        raise XtalError(f"--ka2 {ka2!r}: use auto, yes or no")
    if top < 1:
        raise XtalError(f"--top {top}: must be at least 1")
    if wavelength:
        resolve_wavelength(wavelength)  # fail early on a typo
    model, inputs = split_model_argument(args)
    if not inputs:
        raise XtalError(f"{model}: a model file, but no patterns to predict were given")
    fitted = load_symmetry_model(model or builtin_model_path())
    preds = predict_paths(
        fitted, inputs, wavelength=wavelength, top=top, ka2=ka2, prominence=prominence
    )
    errors = [p for p in preds if p.error]
    if errors and len(errors) == len(preds):
        if len(preds) == 1:
            raise XtalError(errors[0].error)
        raise XtalError(f"none of {len(preds)} inputs could be answered; first: {errors[0].error}")
    if not quiet:
        for p in preds:
            if p.error:
                err_console.print(f"[yellow]skipped:[/] {p.error}", highlight=False)
            for w in p.warnings:
                err_console.print(f"[yellow]warning:[/] {p.id}: {w}", highlight=False)
    if fmt == "table":
        _print_tables(preds, fitted)
    elif fmt == "csv":
        emit_records([row for p in preds for row in p.as_rows()], "csv", CSV_COLUMNS)
    else:
        emit_records([p.as_record() for p in preds], fmt)


def _print_tables(preds, fitted) -> None:
    from rich.table import Table

    for p in preds:
        if p.error:
            continue
        what = "peaks in the model's window" if fitted.model != "cnn" else "peaks seen"
        table = Table(title=f"{p.id} · {p.n_peaks} {what}", title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("crystal system")
        table.add_column("p", justify="right")
        table.add_column("space group", justify="right")
        table.add_column("symbol")
        table.add_column("p", justify="right")
        for r in range(max(len(p.crystal_systems), len(p.space_groups))):
            cs = p.crystal_systems[r] if r < len(p.crystal_systems) else ("", None)
            sg = p.space_groups[r] if r < len(p.space_groups) else ("", "", None)
            table.add_row(
                str(r + 1),
                cs[0],
                f"{cs[1]:.3f}" if cs[1] is not None else "",
                str(sg[0]),
                sg[1],
                f"{sg[2]:.3f}" if sg[2] is not None else "",
            )
        console.print(table)
    if fitted.model == "cnn":
        what = f"profiles on a Q grid {fitted.grid_.q_min:g}-{fitted.grid_.q_max:g} 1/Å"
    else:
        what = f"unit {fitted.feature_settings_.unit}"
    console.print(
        f"[dim]model: {fitted.model}, {what}, trained on {fitted.n_train} patterns[/]",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("predict-symmetry", help=HELP, epilog=EPILOG)(handle_errors(predict_symmetry))
