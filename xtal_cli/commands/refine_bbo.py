"""``xtal refine-bbo``: automatic Rietveld refinement by black-box optimisation (Optuna TPE)."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import (
    console,
    err_console,
    handle_errors,
    progress_bar,
    worker_count,
)

EXAMPLE = (
    "Example: xtal refine-bbo Y2O3.xy --cif Y2O3.cif --instrument INST_XRY.PRM --range 15 150 "
    "--trials 200 --seed 1024 -j 2 -o y2o3-bbo/   (resume: add --resume)"
)


def refine_bbo(
    pattern: Path = typer.Argument(
        ..., help="Measured pattern (.xy/.csv two-column text, .xrdml, ...)."
    ),
    cif: list[Path] = typer.Option(..., "--cif", help="Starting structure (CIF); one phase."),
    instrument: Path = typer.Option(
        None,
        "--instrument",
        "-i",
        help="GSAS .prm/.PRM or GSAS-II .instprm instrument file (default: a laboratory "
        "Bragg-Brentano Cu Kα1/Kα2 instrument, GSAS-II's defaults, with the wavelengths of the "
        "scan's header when it has them; see docs/refine-bbo.md).",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
    trials: int = typer.Option(200, "--trials", "-n", help="Total trials in the study."),
    seed: int = typer.Option(0, "--seed", help="TPE sampler seed (recorded in report.json)."),
    jobs: int = typer.Option(
        1, "-j", "--jobs", help="Worker processes sharing the study (-1: all cores)."
    ),
    workers: int | None = typer.Option(None, "--workers", hidden=True, help="Old name of --jobs."),
    two_theta_range: tuple[float, float] | None = typer.Option(
        None, "--range", help="Full 2θ range of the final step (default: whole pattern)."
    ),
    space: Path = typer.Option(
        None, "--space", help="Search-space YAML (bounds, cycles, timeout)."
    ),
    storage: str = typer.Option(
        None, "--storage", help="Optuna storage URL (default sqlite:///OUTDIR/study.db)."
    ),
    study_name: str = typer.Option("refine-bbo", "--study-name", help="Study name in the storage."),
    resume: bool = typer.Option(False, "--resume", help="Continue an existing study."),
    deterministic: bool = typer.Option(
        False,
        "--deterministic",
        help="With -j > 1: refine rounds of suggestions from one sampler, so --seed fixes every "
        "trial (a round waits for its slowest refinement).",
    ),
    engine: str = typer.Option("native", "--engine", help="native (default) or gsas2."),
    k_best: int = typer.Option(5, "--k-best", help="Distinct candidate structures to write."),
    fmt: str = typer.Option("table", "--format", help="table, json or jsonl summary on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Find the refinement settings that minimise Rwp, refine, and write the results."""
    from xtal_cli.api import refine_bbo
    from xtal_cli.errors import XtalError
    from xtal_cli.refine.bbo import Space

    if len(cif) != 1:
        raise XtalError("refine-bbo refines one phase; give exactly one --cif")
    if fmt not in ("table", "json", "jsonl"):
        raise XtalError(f"unknown --format {fmt!r}; use table, json or jsonl")
    search = Space.from_yaml(space)
    limits = (
        None
        if not two_theta_range or two_theta_range[0] is None
        else (float(two_theta_range[0]), float(two_theta_range[1]))
    )
    jobs = worker_count(jobs if workers is None else workers)
    with progress_bar(quiet) as progress:
        task = progress.add_task("refine-bbo trials", total=trials)
        doc = refine_bbo(
            pattern,
            cif[0],
            instrument,
            output,
            two_theta_range=limits,
            trials=trials,
            seed=seed,
            jobs=jobs,
            storage=storage,
            study_name=study_name,
            resume=resume,
            engine=engine,
            space=search,
            k_best=k_best,
            on_trial=lambda n: progress.update(task, completed=min(n, trials)),
            log=lambda m: err_console.print(m, soft_wrap=True),
            deterministic=deterministic,
        )
        progress.update(task, completed=trials)
    best, study = doc["best"], doc["study"]
    row = {
        "rwp": best["rwp"],
        "rp": best["rp"],
        "gof": best["gof"],
        "best_trial": study["best_trial"],
        "trials": study["trials"],
        "failed": study["failed"],
        "seconds_per_refinement": study["seconds_per_refinement"],
        "cell": best["cell"],
        "output": str(output),
    }
    if fmt == "table":
        from rich.table import Table

        table = Table(title=f"refine-bbo: {pattern.name}")
        table.add_column("quantity")
        table.add_column("value")
        for k, v in row.items():
            table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
        console.print(table)
    else:
        from xtal_cli.commands._common import emit_records

        emit_records([row], fmt)


def register(app: typer.Typer) -> None:
    app.command(
        "refine-bbo",
        help=(
            "Automatic Rietveld refinement: Optuna TPE searches the refinement settings "
            "(2θ range, background, instrument/sample/profile flags; the published BBO-Rietveld "
            "space), each trial is a staged Rietveld refinement on our GSAS-II-compatible engine. "
            "Writes best.cif, report.json, trials.csv, rietveld.png, history.png and distinct "
            "candidates with an MDS map."
        ),
        epilog=EXAMPLE,
    )(handle_errors(refine_bbo, {"workers": "--jobs", "limits": "--range"}))
