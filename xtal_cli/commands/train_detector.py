"""``xtal train-detector``: a CNN that tells whether one target phase is in a scan, trained only
on synthetic mixtures of the target with other candidate phases."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import err_console, handle_errors, progress_bar, worker_count

EXAMPLE = (
    "Example: xtal train-detector NiO.cif --others precursors/ --random-peaks -o nio-detector "
    "--epochs 24 -j 1  |  xtal train-detector NiO.cif --others precursors/ -o nio-detector "
    "--epochs 40 --resume  (continue the same run to 40 epochs)"
)


def train_detector(
    target: list[Path] = typer.Argument(
        ...,
        help="The target phase: a CIF; several CIFs (or a folder, a CSV) are structures that "
        "all count as the target (polymorphs, solid-solution end members).",
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Detector folder (detector.json, model.pt, checkpoint.pt ...)."
    ),
    others: list[str] = typer.Option(
        [],
        "--others",
        help="Other phases the mixtures hold: CIF files, folders, or a CSV with a 'cif' column. "
        "Repeatable.",
    ),
    random_peaks: bool = typer.Option(
        False, "--random-peaks", help="Add random peaks (unknown phases) to the mixtures."
    ),
    max_random_peaks: int = typer.Option(
        8, "--max-random-peaks", help="With --random-peaks: at most this many per pattern."
    ),
    wavelength: str = typer.Option(
        "CuKa1", "--wavelength", "-w", help="Kα1 line or Å the scans are measured with."
    ),
    two_theta_range: tuple[float, float] = typer.Option(
        (10.0, 80.0), "--range", help="2θ window LO HI (deg) every scored scan must cover."
    ),
    step: float = typer.Option(0.04, "--step", help="2θ step of the detector's grid (deg)."),
    min_fraction: float = typer.Option(
        0.03, "--min-fraction", help="Lowest target weight fraction in the positives."
    ),
    max_others: int = typer.Option(3, "--max-others", help="Most other phases in one mixture."),
    strain: float = typer.Option(
        0.004, "--strain", help="Largest relative cell-length change (solid solutions)."
    ),
    epochs: int = typer.Option(8, "--epochs", help="Total number of epochs."),
    samples: int = typer.Option(4096, "--samples", help="Fresh mixtures drawn per epoch."),
    batch_size: int = typer.Option(64, "--batch-size", help="Mixtures per batch."),
    lr: float = typer.Option(2e-3, "--lr", help="Adam learning rate."),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine or constant."),
    val_samples: int = typer.Option(
        2000, "--val-samples", help="Held-out mixtures for the recall/precision report."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for weights and mixtures."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    jobs: int = typer.Option(
        1, "-j", "--jobs", help="torch CPU threads (-1: all cores; 1 suits a shared machine)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start again over an existing run."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar or summary."),
) -> None:
    """Train a detector for one target phase on synthetic multiphase mixtures."""
    from xtal_cli.detect.mixtures import MixtureSettings
    from xtal_cli.detect.train import DetectorTrainSettings, DetectorWindow
    from xtal_cli.detect.train import train_detector as train
    from xtal_cli.errors import XtalError
    from xtal_cli.xrd.units import resolve_wavelength

    if resume and force:
        raise XtalError("--resume continues the run and --force starts it again; give one")
    wl, _label = resolve_wavelength(wavelength)
    window = DetectorWindow(
        wavelength=wl,
        two_theta_min=float(two_theta_range[0]),
        two_theta_max=float(two_theta_range[1]),
        step=step,
    )
    mixtures = MixtureSettings(
        min_fraction=min_fraction,
        max_others=max_others,
        strain=strain,
        random_peaks=max_random_peaks if random_peaks else 0,
    )
    settings = DetectorTrainSettings(
        epochs=epochs,
        samples_per_epoch=samples,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        val_samples=val_samples,
        seed=seed,
        device=device,
        threads=worker_count(jobs),
    )
    with progress_bar(quiet) as bar:
        tasks: dict[str, int] = {}

        def report(stage, advance=1, total=None, row=None):
            if row is not None:
                if not quiet:
                    err_console.print(
                        f"epoch {row['epoch']}: loss {row['train_loss']:.4f}, held-out AUC "
                        f"{_num(row['val_auc'])}, recall {_num(row['val_recall'])}, precision "
                        f"{_num(row['val_precision'])} at p > 0.95",
                        highlight=False,
                    )
                return
            if stage not in tasks:
                for t in tasks.values():
                    bar.update(t, visible=False)
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], advance)

        meta = train(
            [str(t) for t in target],
            list(others),
            output,
            settings,
            mixtures=mixtures,
            window=window,
            resume=resume,
            force=force,
            report=report,
        )
    if not quiet:
        ev = meta["evaluation"]
        limit = f"{100 * ev['detection_limit']:.1f} wt %"
        if ev["detection_limit_below_range"]:
            limit = f"below {limit} (the lowest fraction drawn)"
        err_console.print(
            f"wrote {output}: detector for {meta['target']['name']} among "
            f"{len(meta['others'])} other phases; held-out recall {_num(ev['recall'])}, "
            f"precision {_num(ev['precision'])} at p > 0.95, AUC {_num(ev['auc'])}, "
            f"detection limit {limit}; calibration in {Path(output) / 'calibration.png'}",
            highlight=False,
        )


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def register(app: typer.Typer) -> None:
    app.command(
        "train-detector",
        help=(
            "Train a 1D CNN that tells whether one target phase is in a measured scan, on "
            "synthetic mixtures of the target (down to a few wt %) with other phases and random "
            "peaks, every pattern augmented as simulate --augment. Writes a detector folder "
            "for detect-phase, with a held-out recall/precision report and a calibration curve."
        ),
        epilog=EXAMPLE,
    )(
        handle_errors(
            train_detector,
            {
                "two_theta_max": "--range",
                "two_theta_min": "--range",
                "samples_per_epoch": "--samples",
                "random_peaks": "--max-random-peaks",
            },  # fmt: skip
        )
    )
