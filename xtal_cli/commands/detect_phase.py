"""``xtal detect-phase``: the probability that a detector's target phase is in each scan."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import (
    console,
    emit_records,
    err_console,
    fail,
    handle_errors,
    progress_bar,
)

EXAMPLE = (
    "Example: xtal detect-phase nio-detector/ scans/*.xrdml  |  "
    "find campaign -name '*.xy' | xtal detect-phase nio-detector - --format csv > screen.csv"
)

FORMATS = ("table", "json", "jsonl", "csv")
COLUMNS = ["scan", "target", "probability", "class", "status", "error"]


def detect_phase(
    detector: Path = typer.Argument(..., help="Detector folder written by train-detector."),
    scans: list[str] = typer.Argument(
        ..., help="Measured scans (.xy .xrdml .raw .ras ...), folders, globs, or - for stdin."
    ),
    wavelength: str = typer.Option(
        None,
        "--wavelength",
        "-w",
        help="For scans whose file gives none (default: the detector's is assumed).",
    ),
    fmt: str = typer.Option(
        "table", "--format", help="table, or json, jsonl, csv on stdout (one record per scan)."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar or summary."),
) -> None:
    """Score scans for one target phase: probability and class A/B/C/D, highest first."""
    from xtal_cli.detect.detector import detect_scans, load_detector
    from xtal_cli.errors import XtalError
    from xtal_cli.symmetry.predict import expand_inputs
    from xtal_cli.xrd.units import resolve_wavelength

    if fmt not in FORMATS:
        raise XtalError(f"unknown --format {fmt!r}; use {', '.join(FORMATS)}")
    wl = resolve_wavelength(wavelength)[0] if wavelength is not None else None
    det = load_detector(detector)
    paths = expand_inputs(scans)
    with progress_bar(quiet, transient=True) as bar:
        task = bar.add_task("detect-phase", total=len(paths))
        records = detect_scans(det, paths, wl, on_done=lambda _r: bar.advance(task))
    failed = [r for r in records if r["status"] != "ok"]
    if fmt == "table":
        _print_table(records, det.target)
    else:
        emit_records(records, fmt, COLUMNS if fmt == "csv" else None)
    if not quiet:
        counts = {c: sum(r["class"] == c for r in records) for c in "ABCD"}
        err_console.print(
            f"{len(records) - len(failed)} scans scored for {det.target}: "
            + ", ".join(f"{counts[c]} {c}" for c in "ABCD")
            + (f"; {len(failed)} refused" if failed else ""),
            highlight=False,
        )
        for r in failed[:5]:
            err_console.print(f"  refused: {r['error']}", highlight=False, soft_wrap=True)
    if records and len(failed) == len(records):
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        fail(f"{failed[0]['error']}{more}")


def _print_table(records: list[dict], target: str) -> None:
    from rich.table import Table

    table = Table(title=f"detect-phase: {target}")
    table.add_column("scan")
    table.add_column("p", justify="right")
    table.add_column("class", justify="center")
    for rec in records:
        name = Path(rec["scan"]).name
        if rec["status"] != "ok":
            table.add_row(name, "", f"[red]refused[/]: {rec['error']}")
        else:
            table.add_row(name, f"{rec['probability']:.4f}", rec["class"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(
        "detect-phase",
        help=(
            "Probability that a trained detector's target phase is in each scan, with the "
            "published classes A (p > 0.999), B (0.990-0.999), C (0.950-0.990) and D "
            "(p <= 0.950), sorted highest first; refuses scans of another wavelength or that do "
            "not cover the trained 2θ window."
        ),
        epilog=EXAMPLE,
    )(handle_errors(detect_phase))
