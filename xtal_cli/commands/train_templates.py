"""``xtal train-templates``: structures -> a template folder for predict-structure."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import (
    err_console,
    handle_errors,
    print_failures,
    progress_bar,
    worker_count,
)

EXAMPLE = (
    "Example: xtal train-templates ../shared/data/mp_structures.csv.gz -j 2 -o templates/  |  "
    "xtal train-templates structures/ -o templates/ --resume"
)


def train_templates(
    sources: list[str] = typer.Argument(
        None, help="CIF files, folders, globs, CSV/CSV.GZ with a 'cif' column, pymatgen JSON."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Template folder to write."),
    builtin: list[str] = typer.Option(
        [], "--builtin", help="Built-in structure set (mp-sample: 2,500 Materials Project entries)."
    ),
    energy_column: str = typer.Option(
        "e_above_hull",
        "--energy-column",
        help="Column that picks one structure per formula (lowest wins); first seen without it.",
    ),
    symprec: float = typer.Option(
        0.1, "--symprec", help="spglib tolerance (Å) of the space groups."
    ),
    holdout: float = typer.Option(
        0.1, "--holdout", help="Share of compositions held out to measure the pair accuracy."
    ),
    pairs: int = typer.Option(6, "--pairs", help="Pairs of each kind per composition."),
    trees: int = typer.Option(100, "--trees", help="Trees of the pair classifier."),
    epochs: int = typer.Option(40, "--epochs", help="Epochs of the joint embedding."),
    no_embedding: bool = typer.Option(
        False, "--no-embedding", help="Train only the pair classifier (no embedding ranker)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the pairs, held-out share and training."),
    limit: int = typer.Option(None, "--limit", help="Only the first N structures."),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Parallel worker processes (-1: all cores)."),
    backend: str = typer.Option("loky", "--backend", help="joblib backend: loky (local) or dask."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="dask scheduler address (with --backend dask)."
    ),
    chunk_size: int = typer.Option(
        128, "--chunk-size", help="Structures per saved chunk (resume granularity)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run, keeping finished stages and chunks."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar or summary."),
) -> None:
    """Learn which compositions share a structure (CSPML pair classifier + a joint embedding)."""
    from xtal_cli.io.structures import collect_items
    from xtal_cli.templates.embedding import EmbeddingSettings
    from xtal_cli.templates.pairs import PairSettings
    from xtal_cli.templates.train import TemplateSettings
    from xtal_cli.templates.train import train_templates as run

    settings = TemplateSettings(
        symprec=symprec,
        energy_column=energy_column,
        holdout=holdout,
        seed=seed,
        pairs=PairSettings(n_pairs=pairs, n_estimators=trees),
        embedding=None if no_embedding else EmbeddingSettings(epochs=epochs),
    )
    items = collect_items(sources or [], builtin, 0, 0, limit)
    sources_attr = ";".join([f"builtin:{b}" for b in builtin] + list(sources or []))
    with progress_bar(quiet) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, n: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], n)

        manifest = run(
            items, output, settings, jobs=worker_count(jobs), resume=resume,
            chunk_size=chunk_size, backend=backend, scheduler=scheduler, progress=progress,
            sources=sources_attr,
        )  # fmt: skip
    if not quiet:
        counts, metrics = manifest["counts"], manifest["pairs"]
        acc = metrics.get("heldout_pair_accuracy")
        shown = f", held-out pair accuracy {acc:.3f}" if acc is not None else ""
        err_console.print(
            f"wrote {output}: {counts['templates']} templates in {counts['prototypes']} "
            f"prototypes from {counts['structures']} structures, {counts['failures']} "
            f"failures{shown}",
            highlight=False,
        )
        from xtal_cli.io.h5 import open_checked, read_failures
        from xtal_cli.templates.library import LIBRARY

        with open_checked(Path(output) / LIBRARY, "templates") as h5:  # the failures only
            print_failures(read_failures(h5), Path(output) / LIBRARY)


def register(app: typer.Typer) -> None:
    app.command(
        "train-templates",
        help="Template library and learned composition similarity for xtal predict-structure.",
        epilog=EXAMPLE,
    )(handle_errors(train_templates, {"n_pairs": "--pairs", "n_estimators": "--trees"}))
