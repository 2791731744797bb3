"""``xtal simulate``: crystal structures -> powder patterns + symmetry labels (patterns/1 HDF5)."""

from __future__ import annotations

import threading
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
    "Example: xtal simulate --builtin mp-sample -j 2 -o patterns.h5  |  "
    "xtal simulate structures/*.cif data.csv.gz --wavelength MoKa1 --profile "
    "--caglioti 0.01,-0.005,0.01 --ka2 --noise 5000 -o patterns.h5  |  "
    "xtal simulate --random 10000 --seed 1 -o random.h5"
)


def simulate(
    sources: list[str] = typer.Argument(
        None,
        help="CIF files, folders, glob patterns, CSV/CSV.GZ with a 'cif' column, pymatgen JSON.",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Patterns HDF5 file to write."),
    builtin: list[str] = typer.Option(
        [], "--builtin", help="Built-in structure set (mp-sample: 2,500 Materials Project entries)."
    ),
    random_n: int = typer.Option(
        0, "--random", help="Add N random crystals over all 230 space groups (pyxtal)."
    ),
    wavelength: str = typer.Option(
        "CuKa1", "--wavelength", "-w", help="Line name (CuKa, CuKa1, MoKa1, ...) or Å."
    ),
    two_theta_min: float = typer.Option(0.0, "--two-theta-min", help="Lowest 2θ (deg)."),
    two_theta_max: float = typer.Option(90.0, "--two-theta-max", help="Highest 2θ (deg)."),
    engine: str = typer.Option(
        None, "--engine", help="Pattern engine (default: the fastest validated one)."
    ),
    symprec: float = typer.Option(0.1, "--symprec", help="spglib tolerance (Å) for the labels."),
    profile: bool = typer.Option(
        False, "--profile", help="Also draw a profile on a regular 2θ grid."
    ),
    step: float = typer.Option(0.02, "--step", help="Profile grid step (deg)."),
    fwhm: float = typer.Option(
        0.1, "--fwhm", help="Fixed peak FWHM (deg), unless --caglioti is given."
    ),
    caglioti: str = typer.Option(
        None, "--caglioti", help="U,V,W in deg² for FWHM² = U tan²θ + V tanθ + W."
    ),
    eta: float = typer.Option(0.5, "--eta", help="Lorentzian fraction of the pseudo-Voigt (0-1)."),
    ka2: bool = typer.Option(False, "--ka2", help="Add the Kα2 line (needs a Kα wavelength name)."),
    noise: float = typer.Option(
        None, "--noise", help="Poisson noise: counts at the strongest peak."
    ),
    background: float = typer.Option(
        0.0, "--background", help="Flat background, fraction of the maximum."
    ),
    augment: bool = typer.Option(
        False,
        "--augment",
        help="Profiles with random per-pattern instrument/sample effects (widths, crystallite "
        "size, strain, Kα2, shifts, background, noise, texture, impurities, 2θ window); draws "
        "stored in extra/augment.",
    ),
    limit: int = typer.Option(None, "--limit", help="Only the first N structures."),
    seed: int = typer.Option(0, "--seed", help="Seed for random crystals and noise."),
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
    """Simulate powder XRD patterns and spglib symmetry labels for crystal structures."""
    from xtal_cli.api import simulate as simulate_structures
    from xtal_cli.errors import XtalError
    from xtal_cli.io.structures import count_items, iter_items, sources_key
    from xtal_cli.xrd.lineshape import kalpha_pair
    from xtal_cli.xrd.profile import ProfileSettings
    from xtal_cli.xrd.units import resolve_wavelength

    _, label = resolve_wavelength(wavelength)
    jobs = worker_count(jobs)
    profile_settings = None
    if profile or ka2 or noise or caglioti or augment:
        cag = None
        if caglioti:
            try:
                cag = tuple(float(v) for v in caglioti.split(","))
            except ValueError:
                cag = caglioti  # not numbers: ProfileSettings names it
        pair = None
        if ka2:
            pair = kalpha_pair(label)
            if pair is None:
                raise XtalError(
                    f"--ka2 needs a Kα wavelength name such as CuKa1, not {wavelength!r}"
                )
        profile_settings = ProfileSettings(  # checks step, fwhm, eta, caglioti, noise ...
            two_theta_min=max(two_theta_min, step),
            two_theta_max=two_theta_max,
            step=step,
            fwhm=fwhm,
            caglioti=cag,
            eta=eta,
            ka2=pair,
            noise_counts=noise,
            background=background,
        )
    # a stream: CSV rows and CIF files are read as the workers need them (bounded memory)
    items = iter_items(sources or [], builtin, random_n, seed, limit)
    key = sources_key(sources or [], builtin, random_n, seed, limit)
    sources_attr = ";".join([f"builtin:{b}" for b in builtin] + list(sources or []))
    with progress_bar(quiet) as bar:
        task = bar.add_task("simulate", total=None)
        if not quiet:  # the total, counted beside the run (a pass over the CSVs)

            def count() -> None:
                try:
                    bar.update(task, total=count_items(sources or [], builtin, random_n, limit))
                except Exception:  # an unreadable input: the run itself says so, once
                    pass

            threading.Thread(target=count, daemon=True).start()
        result = simulate_structures(  # checks the 2θ range, engine and symprec
            items,
            wavelength=wavelength,
            two_theta_range=(two_theta_min, two_theta_max),
            engine=engine,
            symprec=symprec,
            profile=profile_settings,
            augment=augment,
            seed=seed,
            jobs=jobs,
            output=output,
            resume=resume,
            chunk_size=chunk_size,
            backend=backend,
            scheduler=scheduler,
            on_progress=lambda n: bar.advance(task, n),
            extra_attrs={"sources": sources_attr, "random": random_n},
            items_key=key,
        )
    if not quiet:
        n_fail = len(result.failures)
        err_console.print(
            f"wrote {output}: {len(result)} patterns, {n_fail} failures "
            f"(λ = {result.attrs['wavelength']:g} Å, 2θ {two_theta_min:g}-{two_theta_max:g}°, "
            f"engine {result.attrs['engine']})",
            highlight=False,
        )
        if result.fallbacks:
            err_console.print(
                f"{len(result.fallbacks)} CIFs read by pymatgen instead of the fast reader "
                f"(listed in {output}:reader_fallbacks)",
                highlight=False,
            )
        print_failures(result.failures, output)
    if len(result) == 0:
        fail(no_pattern_message(result.failures, len(result.failures)), code=1)


def no_pattern_message(failures: list[tuple[str, str, str]], n_items: int) -> str:
    """Why a batch gave nothing: the count and the first reasons, so ``-q`` runs say it too."""
    if not failures:
        return "no pattern could be simulated: no structures were given"
    shown = "; ".join(f"{i} ({stage}): {reason}" for i, stage, reason in failures[:3])
    more = f"; ... {len(failures) - 3} more" if len(failures) > 3 else ""
    which = "the one structure" if n_items == 1 else f"all {n_items} structures"
    return f"no pattern could be simulated: {which} failed: {shown}{more}"


# duplicates: every command registers itself with this shape (deliberate)
def register(app: typer.Typer) -> None:
    app.command(
        "simulate",
        help="Simulate powder XRD patterns (sticks, optional profiles) and spglib labels.",
        epilog=EXAMPLE,
    )(handle_errors(simulate, {"noise_counts": "--noise"}))
