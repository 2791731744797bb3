"""``xtal predict-structure``: compositions -> candidate structures (CIFs) from templates."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import console, emit_records, err_console, fail, handle_errors

EXAMPLE = (
    "Example: xtal predict-structure templates/ KBr LiCoS2 -k 5 -o predictions/  |  "
    "xtal predict-structure templates/ --file formulas.txt --format json  |  "
    "xtal predict-structure templates/ --structure NaCl.cif"
)


def _formulas(formulas: list[str], file: Path | None) -> list[str]:
    out = list(formulas or [])
    if file is not None:
        if not file.is_file():
            fail(f"{file}: no such file")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{file}: cannot be read as text ({type(exc).__name__})")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.extend(line.replace(",", " ").split())
    return out


def predict_structure(
    templates: Path = typer.Argument(..., help="Template folder from xtal train-templates."),
    formulas: list[str] = typer.Argument(None, help="Compositions (e.g. KBr LiCoS2)."),
    file: Path = typer.Option(None, "--file", help="Text file of formulas (one or more a line)."),
    k: int = typer.Option(10, "-k", help="Candidates per composition."),
    ranker: str = typer.Option(
        "pairs", "--ranker", help="pairs (CSPML classifier), embedding (joint space) or both."
    ),
    relax: bool = typer.Option(
        False, "--relax", help="Also use templates of other stoichiometries with as many elements."
    ),
    structure: Path = typer.Option(
        None, "--structure", help="Reverse query: compositions likely to take this CIF."
    ),
    output: Path = typer.Option(None, "-o", "--output", help="Folder for the candidate CIFs."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, jsonl or csv."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No messages on stderr."),
) -> None:
    """Predict structures of compositions from known ones (template substitution, CSPML)."""
    from xtal_cli.errors import XtalError
    from xtal_cli.templates.predict import TemplatePredictor

    if fmt not in ("table", "json", "jsonl", "csv"):
        fail(f"--format {fmt}: use table, json, jsonl or csv")
    if ranker not in ("pairs", "embedding", "both"):
        fail(f"--ranker {ranker}: use pairs, embedding or both")
    names = _formulas(formulas, file)
    predictor = TemplatePredictor(templates)
    if structure is not None:
        _reverse(predictor, structure, names, k, fmt)
        return
    if not names:
        fail("no formula given; name compositions (e.g. KBr) or a --file of them")
    rows, failures = [], []
    for name in names:
        try:
            candidates = predictor.predict(name, k=k, ranker=ranker, relax=relax)
        except XtalError as exc:
            failures.append(str(exc))
            continue
        for cand in candidates:
            row = cand.as_dict()
            if output is not None:
                row["cif"] = str(_write_cif(output, cand))
            rows.append(row)
    if fmt == "table":  # what fits a terminal; the CIFs' folder is said below
        columns = ["query", "rank", "score", "prototype", "template_formula"]
    else:
        columns = ["query", "rank", "score", "formula", "exact_stoichiometry", "prototype",
                   "spacegroup", "template_id", "template_formula"]  # fmt: skip
        columns += ["cif"] if output else []
    if rows:
        _emit(rows, fmt, columns)
    for message in failures:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if failures and len(failures) == len(names):
        raise typer.Exit(2)
    if output is not None and not quiet:
        err_console.print(f"wrote {len(rows)} CIFs to {output}", highlight=False)


def _write_cif(folder: Path, cand) -> Path:
    from pymatgen.io.cif import CifWriter

    from xtal_cli.io.h5 import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cand.query}_{cand.rank:02d}_{cand.template_id}.cif"
    with atomic_path(path) as tmp:
        CifWriter(cand.structure, symprec=0.1).write_file(tmp)
    return path


def _reverse(predictor, path: Path, names: list[str], k: int, fmt: str) -> None:
    from xtal_cli.io.structures import collect_items, load_structure

    items = collect_items([str(path)])
    if len(items) != 1:
        fail(f"{path}: give one structure for the reverse query, it holds {len(items)}")
    try:
        structure = load_structure(items[0])
    except ValueError as exc:
        fail(f"{path}: not a readable structure ({exc})")
    rows = predictor.reverse(structure, names or None, k=k)
    _emit(rows, fmt, ["rank", "formula", "score", "known_structure"])


def _emit(rows: list[dict], fmt: str, columns: list[str]) -> None:
    if fmt != "table":
        emit_records(rows, fmt, columns)
        return
    from rich.table import Table

    table = Table(*columns, box=None, header_style="bold")
    for column in table.columns:
        column.no_wrap = True
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.command(
        "predict-structure",
        help="Candidate structures for new compositions from a template folder (CSPML).",
        epilog=EXAMPLE,
    )(handle_errors(predict_structure))
