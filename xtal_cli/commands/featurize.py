"""``xtal featurize``: patterns (simulated sticks or profiles) or measured scans → features/1."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import err_console, handle_errors, progress_bar, worker_count
from xtal_cli.errors import XtalError

HELP = (
    "Turn patterns into peak-position features for symmetry prediction: the positions of the N "
    "lowest-angle peaks and the number of peaks in the window (Suzuki et al. 2020). Reads a "
    "patterns file from xtal simulate (sticks, or --source profile to pick peaks in profiles) "
    "or measured scans (.xy .xye .csv .dat .txt .xrdml; files, folders, globs, - for stdin)."
)
EPILOG = (
    "Example: xtal featurize patterns.h5 --unit q -o features.h5  |  "
    "xtal featurize scans/*.xy --wavelength CuKa -o measured.h5"
)


def featurize(
    inputs: list[str] = typer.Argument(..., help="A patterns .h5 file, or measured scan files."),
    output: Path = typer.Option(..., "-o", "--output", help="Features file to write (.h5)."),
    unit: str = typer.Option(
        "q", "--unit", help="Peak position unit: 2theta, d, inv-d, inv-d2 or q (wavelength-free)."
    ),
    n_peaks: int = typer.Option(10, "--peaks", help="Number of lowest-angle peak positions."),
    min_intensity: float = typer.Option(
        0.0, "--min-intensity", help="Peaks weaker than this % of the strongest are ignored."
    ),
    resolution: float = typer.Option(
        0.001, "--resolution", help="Peaks closer than this (° 2θ) count as one."
    ),
    two_theta_min: float = typer.Option(
        None, "--two-theta-min", help="Window start, 2θ (°) at the reference wavelength."
    ),
    two_theta_max: float = typer.Option(
        None, "--two-theta-max", help="Window end, 2θ (°) at the reference wavelength."
    ),
    # duplicates: Typer option declarations share one shape in every command (deliberate)
    indexing: bool = typer.Option(
        False,
        "--indexing/--no-indexing",
        help="Append how well the peaks index on a cubic, tetragonal, hexagonal cell.",
    ),
    lattices: bool = typer.Option(
        False,
        "--lattices",
        help="Indexing scores per Bravais lattice (cP cI cF tP tI hP hR); implies --indexing.",
    ),
    source: str = typer.Option(
        "auto", "--source", help="For patterns files: sticks (auto) or profile (peak picking)."
    ),
    wavelength: str = typer.Option(
        None,
        "--wavelength",
        help="Scans without one: CuKa (lab Kα1+Kα2, Kα2 stripped), CuKa1, MoKa1 ... or Å.",
    ),
    ka2: str = typer.Option(
        "auto", "--ka2", help="Scans: strip Kα2: auto (when the file or a CuKa name says), yes, no."
    ),
    prominence: float = typer.Option(
        None, "--prominence", help="Scans: absolute peak prominence (default: 4 noise σ)."
    ),
    jobs: int = typer.Option(
        1, "-j", "--jobs", help="Worker processes for a patterns file (-1: all cores)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    from xtal_cli.api import featurize as featurize_data
    from xtal_cli.api import read_scan
    from xtal_cli.io.h5 import layout_kind, read_patterns
    from xtal_cli.symmetry.features import write_features
    from xtal_cli.symmetry.predict import expand_inputs

    jobs = worker_count(jobs)
    options = {
        "unit": unit,
        "n_peaks": n_peaks,
        "min_intensity": min_intensity,
        "resolution": resolution,
        "indexing": indexing,
        "lattices": lattices,
    }
    window = {"two_theta_min": two_theta_min, "two_theta_max": two_theta_max}
    paths = expand_inputs(inputs)
    h5s = [p for p in paths if layout_kind(p) is not None]
    if h5s:
        if len(paths) > 1:
            raise XtalError(f"{h5s[0]}: give one patterns file at a time, without scan files")
        ps = read_patterns(h5s[0], structures=False)
        with progress_bar(quiet) as bar:
            task = bar.add_task("featurize", total=len(ps))
            fs = featurize_data(
                ps, source=source, jobs=jobs, progress=lambda: bar.advance(task),
                **options, **window,
            )  # fmt: skip
        fs.attrs["source_file"] = str(h5s[0])
    else:
        scans = [read_scan(p, wavelength) for p in paths]
        for scan in scans:
            scan.meta.setdefault("id", str(scan.path))
        window = {k: v for k, v in window.items() if v is not None}  # else 0-90° at the scan's λ
        fs = featurize_data(scans, ka2=ka2, prominence=prominence, **options, **window)
    write_features(output, fs)
    if not quiet:
        lo, hi = fs.settings.window
        err_console.print(
            f"wrote {len(fs)} feature rows ({fs.settings.n_peaks} peaks + count, unit "
            f"{fs.settings.unit}, window {lo:.4g}-{hi:.4g}) to {output}"
            + (f"; {len(fs.failures)} failed (recorded in the file)" if fs.failures else ""),
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("featurize", help=HELP, epilog=EPILOG)(handle_errors(featurize))
