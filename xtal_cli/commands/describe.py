"""``xtal describe``: structures -> composition and structure descriptors (descriptors/1)."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import (
    err_console,
    fail,
    handle_errors,
    print_failures,
    progress_bar,
    worker_count,
)

EXAMPLE = (
    "Example: xtal describe ../shared/data/mp_structures.csv.gz -j 2 -o descriptors.h5  |  "
    "xtal describe structures/*.cif --preset fast -o descriptors.h5"
)


def describe(
    sources: list[str] = typer.Argument(
        None, help="CIF files, folders, globs, CSV/CSV.GZ with a 'cif' column, pymatgen JSON."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Descriptors HDF5 file to write."),
    builtin: list[str] = typer.Option(
        [], "--builtin", help="Built-in structure set (mp-sample: 2,500 Materials Project entries)."
    ),
    preset: str = typer.Option(
        "full",
        "--preset",
        help="full (with CrystalNN local environments, ~0.15 s per structure) or fast "
        "(composition, density, symmetry; ~15 ms).",
    ),
    symprec: float = typer.Option(
        0.01, "--symprec", help="spglib tolerance (Å) for symmetry-equivalent sites."
    ),
    limit: int = typer.Option(None, "--limit", help="Only the first N structures."),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Parallel worker processes (-1: all cores)."),
    backend: str = typer.Option("loky", "--backend", help="joblib backend: loky (local) or dask."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="dask scheduler address (with --backend dask)."
    ),
    chunk_size: int = typer.Option(
        64, "--chunk-size", help="Structures per saved chunk (resume granularity)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run, keeping finished chunks."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar or summary."),
) -> None:
    """Describe structures with matminer descriptors; carried columns (band_gap ...) are kept."""
    from xtal_cli.describe.descriptors import DescriptorSettings
    from xtal_cli.describe.run import run_description
    from xtal_cli.io.structures import collect_items

    settings = DescriptorSettings(preset=preset, symprec=symprec)
    jobs = worker_count(jobs)
    items = collect_items(sources or [], builtin, 0, 0, limit)
    sources_attr = ";".join([f"builtin:{b}" for b in builtin] + list(sources or []))
    with progress_bar(quiet) as bar:
        task = bar.add_task("describe", total=len(items))
        result = run_description(
            items,
            settings,
            output,
            jobs=jobs,
            resume=resume,
            chunk_size=chunk_size,
            backend=backend,
            scheduler=scheduler,
            on_progress=lambda n: bar.advance(task, n),
            extra_attrs={"sources": sources_attr},
        )
    n_fail = len(result.failures)
    if not quiet:
        err_console.print(
            f"wrote {output}: {len(result)} materials x {len(result.names)} descriptors "
            f"(preset {preset}), {n_fail} failures",
            highlight=False,
        )
        print_failures(result.failures, output)
    if len(result) == 0:
        shown = "; ".join(f"{i} ({s}): {r}" for i, s, r in result.failures[:3])
        fail(f"no structure could be described: {shown}", code=1)


def register(app: typer.Typer) -> None:
    app.command(
        "describe",
        help="Composition and structure descriptors (matminer) of structures, for xtal cluster.",
        epilog=EXAMPLE,
    )(handle_errors(describe))
