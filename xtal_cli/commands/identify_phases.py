"""``xtal identify-phases``: which candidate phases measured scans hold, and how much of each."""

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
    worker_count,
)

EXAMPLE = (
    "Example: xtal identify-phases scans/*.xrdml -c references/ --elements Li,Mn,Ti,O -j 2 "
    "-o phases/  |  xtal identify-phases mix.xy -c NiO.cif -c mp_structures.csv.gz "
    "--elements Ni,Li,O --wavelength CuKa --require NiO --format json -o out/   "
    "(add --resume to continue a batch)"
)

FORMATS = ("table", "json", "jsonl", "csv")


def identify_phases(
    scans: list[str] = typer.Argument(
        ..., help="Measured scans (.xy .xye .csv .dat .xrdml .raw .ras .gsa ...), folders, globs."
    ),
    candidates: list[str] = typer.Option(
        ...,
        "--candidates",
        "-c",
        help="Candidate phases: CIF files, folders of them, or a CSV/CSV.GZ with a 'cif' "
        "column (e.g. a Materials Project export). Repeatable.",
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Output folder: one subfolder per scan, summary.json."
    ),
    elements: str = typer.Option(
        None, "--elements", help="Keep only candidates made of these elements, e.g. Li,Mn,O."
    ),
    max_phases: int = typer.Option(4, "--max-phases", help="Most phases in one hypothesis."),
    require: list[str] = typer.Option(
        [], "--require", help="A phase (name or formula) every hypothesis must hold. Repeatable."
    ),
    wavelength: str = typer.Option(
        None,
        "--wavelength",
        "-w",
        help="For scans whose file gives none: CuKa (a tube's Kα1+Kα2), CuKa1 (one line), "
        "MoKa ... or Å (one line).",
    ),
    instrument: Path = typer.Option(
        None,
        "--instrument",
        "-i",
        help="GSAS .prm or GSAS-II .instprm instrument file (default: a laboratory "
        "Bragg-Brentano profile, refined, with the scan's wavelengths).",
    ),
    two_theta_range: tuple[float, float] | None = typer.Option(
        None, "--range", help="2θ range LO HI to fit (default: the scan without its edges)."
    ),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Scans answered in parallel (-1: all cores)."),
    backend: str = typer.Option("loky", "--backend", help="joblib backend: loky (local) or dask."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="dask scheduler address (with --backend dask)."
    ),
    fmt: str = typer.Option(
        "table", "--format", help="table, or json, jsonl, csv on stdout (one record per scan)."
    ),
    timeout: float = typer.Option(
        None, "--timeout", help="Seconds per scan; a scan over it is recorded as failed."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Keep the scans already answered in the output folder."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Answer again the scans already answered in the output folder."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar or summary."),
) -> None:
    """Identify and quantify the crystalline phases of measured scans among candidates."""
    import dataclasses
    import uuid

    from xtal_cli import __version__
    from xtal_cli.errors import ParameterError, XtalError
    from xtal_cli.identify.batch import ScanJob, finished_scans, identify_batch
    from xtal_cli.identify.candidates import load_candidates
    from xtal_cli.identify.report import csv_row
    from xtal_cli.identify.search import IdentifySettings
    from xtal_cli.symmetry.predict import expand_inputs
    from xtal_cli.xrd.units import resolve_wavelength

    if fmt not in FORMATS:
        raise XtalError(f"unknown --format {fmt!r}; use {', '.join(FORMATS)}")
    if backend not in ("loky", "dask"):
        raise ParameterError("backend", backend, "use loky or dask")
    if resume and overwrite:
        raise XtalError("--resume keeps finished scans and --overwrite redoes them; give one")
    if timeout is not None and not timeout > 0:
        raise ParameterError("timeout", timeout, "must be a positive number of seconds")
    limits = None
    if two_theta_range and two_theta_range[0] is not None:
        limits = (float(two_theta_range[0]), float(two_theta_range[1]))
        if not 0 <= limits[0] < limits[1] <= 180:
            raise ParameterError("limits", limits, "give LO < HI within 0-180 degrees 2θ")
    if wavelength is not None:
        resolve_wavelength(wavelength)  # a typo is one error now, not one failure per scan
    jobs = worker_count(jobs)
    settings = IdentifySettings(max_phases=max_phases)  # checks max_phases
    inst = None
    if instrument is not None:
        from xtal_cli.refine.instrument import read_instrument

        inst = read_instrument(instrument)
    paths = expand_inputs(scans)
    finished_scans(paths, output, resume=resume, overwrite=overwrite)  # before the slow part
    element_list = [e.strip() for e in (elements or "").split(",") if e.strip()] or None
    if not quiet:
        err_console.print(f"reading candidates from {', '.join(candidates)} ...", highlight=False)
    cands = load_candidates(list(candidates), element_list)  # one error naming a bad file
    run = {
        "xtal_version": __version__,
        "command": "identify-phases",
        "settings": {
            **dataclasses.asdict(settings),
            "require": list(require),
            "limits": list(limits) if limits else None,
            "timeout": timeout,
            "wavelength": wavelength,
            "instrument": str(instrument) if instrument else None,
        },
        "candidates": {
            "sources": list(candidates),
            "elements": element_list,
            "names": [c.name for c in cands],
        },
    }
    job = ScanJob(
        candidates=cands,
        settings=settings,
        wavelength=wavelength,
        instrument=inst,
        require=tuple(require),
        limits=limits,
        timeout=timeout,
        run=run,
        token=uuid.uuid4().hex,
    )
    with progress_bar(quiet) as bar:
        task = bar.add_task("identify-phases", total=len(paths))
        records = identify_batch(
            paths,
            output,
            job,
            jobs=jobs,
            backend=backend,
            scheduler=scheduler,
            resume=resume,
            overwrite=overwrite,
            on_done=lambda _rec: bar.advance(task),
        )
    failed = [r for r in records if r["status"] != "ok"]
    if fmt == "table":
        _print_table(records)
    elif fmt == "csv":
        emit_records([csv_row(r) for r in records], "csv")
    else:
        emit_records(records, fmt)
    if not quiet:
        resumed = sum(bool(r.get("resumed")) for r in records)
        n_ok = len(records) - len(failed)
        err_console.print(
            f"wrote {output}/summary.json: {n_ok} scan{'' if n_ok == 1 else 's'} answered"
            + (f" ({resumed} kept from an earlier run)" if resumed else "")
            + f", {len(failed)} failed ({len(cands)} candidate phases)",
            highlight=False,
        )
        for r in failed[:5]:
            err_console.print(f"  failed: {r['error']}", highlight=False, soft_wrap=True)
        if len(failed) > 5:
            err_console.print(f"  ... {len(failed) - 5} more in summary.json", highlight=False)
    if records and len(failed) == len(records):
        fail(_all_failed_message(failed), code=1)


def _all_failed_message(failed: list[dict]) -> str:
    """The reason itself for one scan (it names the file); the count and the first reasons
    for a batch, so ``-q`` runs say it too."""
    if len(failed) == 1:
        return failed[0]["error"]
    shown = "; ".join(r["error"] for r in failed[:3])
    more = f"; ... {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"no scan could be answered: all {len(failed)} failed: {shown}{more}"


def _print_table(records: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="identify-phases")
    for col, just in (("scan", "left"), ("phase", "left"), ("wt %", "right"),
                      ("a b c (Å) [α β γ (°)]", "left"), ("Rwp %", "right"),
                      ("GOF", "right")):  # fmt: skip
        table.add_column(col, justify=just)
    for rec in records:
        name = Path(rec["scan"]).name
        if rec["status"] != "ok":
            table.add_row(name, f"[red]failed[/]: {rec['error']}", "", "", "", "")
            continue
        if not rec["phases"]:
            table.add_row(name, "no candidate phase found", "", "", "", "")
        for j, p in enumerate(rec["phases"]):
            wt = f"{100 * p['weight_fraction']:.1f} ± {100 * p['weight_fraction_esd']:.1f}"
            table.add_row(
                name if j == 0 else "",
                f"{p['name']}",
                wt,
                _cell_text(p["cell"]),
                f"{rec['rwp']:.2f}" if j == 0 and rec["rwp"] is not None else "",
                f"{rec['gof']:.2f}" if j == 0 and rec["gof"] is not None else "",
            )
        table.add_section()
    console.print(table)


def _cell_text(cell) -> str:
    """a b c, and the angles only where one is not 90°."""
    text = " ".join(f"{v:.4f}" for v in cell[:3])
    if any(abs(v - 90) > 1e-6 for v in cell[3:]):
        text += "  " + " ".join(f"{v:.2f}" for v in cell[3:])
    return text


def register(app: typer.Typer) -> None:
    app.command(
        "identify-phases",
        help=(
            "Which candidate phases a measured scan holds and their weight fractions: line "
            "matching, a pruned search over phase combinations and a multiphase Rietveld "
            "refinement of each surviving hypothesis (ZMV weight fractions with esds). Writes "
            "per scan report.json, rietveld.png and refined CIFs; summary.json per batch."
        ),
        epilog=EXAMPLE,
    )(handle_errors(identify_phases, {"limits": "--range"}))
