"""``xtal cluster``: property-dependent clusters of described materials (random-forest leaves)."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import (
    console,
    emit_records,
    err_console,
    handle_errors,
    progress_bar,
    worker_count,
)

EXAMPLE = (
    "Example: xtal cluster descriptors.h5 --property band_gap --clusters 20 "
    '--select "formula~O" -o clusters/  |  xtal cluster descriptors.h5 --property band_gap '
    "--property formation_energy_per_atom -o both/ --format json"
)


def cluster(
    descriptors: Path = typer.Argument(..., help="Descriptors HDF5 from xtal describe."),
    properties: list[str] = typer.Option(
        ..., "--property", "-p", help="Carried property to cluster by (give twice for two)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the report and plots."),
    n_clusters: int = typer.Option(20, "--clusters", "-k", help="Number of clusters."),
    select: list[str] = typer.Option(
        [],
        "--select",
        help='Only materials with COLUMN~TEXT / COLUMN<VALUE ... ("formula~O": oxides; '
        "repeat to combine).",
    ),
    n_estimators: int = typer.Option(200, "--trees", help="Trees in the random forest."),
    min_samples_leaf: int = typer.Option(
        5, "--min-samples-leaf", help="Fewest materials in a leaf of the forest."
    ),
    test_fraction: float = typer.Option(
        0.2, "--test-fraction", help="Share held out to score the clusters (R² of cluster means)."
    ),
    top: int = typer.Option(8, "--top", help="Distinguishing descriptors listed per cluster."),
    map_points: int = typer.Option(
        3000, "--map-points", help="Materials drawn on the t-SNE map of z space (0: no map)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, forest and k-means."),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Cores for the forest (-1: all)."),
    fmt: str = typer.Option("table", "--format", help="table, json, jsonl or csv (stdout)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or summary."),
) -> None:
    """Cluster materials by the paths a random forest on the property takes (Sato et al. 2024)."""
    from xtal_cli.cluster.plots import plot_descriptors, plot_map, plot_property
    from xtal_cli.cluster.run import ClusterSettings, cluster_materials, write_outputs, zspace_map
    from xtal_cli.describe.store import read_descriptors
    from xtal_cli.errors import XtalError

    if fmt not in ("table", "json", "jsonl", "csv"):
        raise XtalError(f"--format {fmt}: use table, json, jsonl or csv")
    settings = ClusterSettings(
        properties=tuple(properties),
        n_clusters=n_clusters,
        n_estimators=n_estimators,
        min_samples_leaf=min_samples_leaf,
        test_fraction=test_fraction,
        select=tuple(select),
        top=top,
        seed=seed,
    )
    ds = read_descriptors(descriptors)
    with progress_bar(quiet or fmt != "table", transient=True) as bar:
        task = bar.add_task("forest, z space, k-means", total=None)
        result = cluster_materials(ds, settings, source=str(descriptors), jobs=worker_count(jobs))
        if map_points > 0:
            bar.update(task, description="t-SNE map of z space")
            result.map_xy = zspace_map(result, map_points)
        bar.update(task, description="outputs and plots")
        paths = write_outputs(result, output)
        plot_property(result, output / "property_per_cluster.png")
        plot_map(result, output / "zspace_map.png")
        plot_descriptors(result, 1, output / "cluster_1_descriptors.png")
    records = [_record(c, settings) for c in result.clusters]
    if fmt != "table":
        emit_records(records, fmt)
    else:
        _table(result, records)
    if not quiet:
        r2 = result.scores
        prop = settings.properties[0]
        err_console.print(
            f"{len(result.ids)} materials, {n_clusters} clusters; held-out R² of {prop} "
            f"(cluster mean as prediction): z space {r2['z_space_clusters'][prop]:.3f}, k-means "
            f"on descriptors {r2['descriptor_kmeans'][prop]:.3f}; forest "
            f"{r2['forest'][prop]:.3f}. Wrote {paths['report']}, {paths['csv'].name}, "
            f"{paths['h5'].name} and plots in {output}",
            highlight=False,
        )


def _record(c: dict, settings) -> dict:
    rec = {"cluster": c["cluster"], "size": c["size"]}
    for name in settings.properties:
        stats = c["property"][name]
        rec[f"{name}_mean"] = stats.get("mean")
        rec[f"{name}_std"] = stats.get("std")
    rec["distinguishing"] = [
        f"{d['descriptor']} ({d['effect_size']:+.2f})" for d in c["distinguishing"]
    ]
    rec["examples"] = [e["formula"] for e in c["examples"]]
    return rec


def _table(result, records: list[dict]) -> None:
    from rich.table import Table

    props = result.settings.properties
    table = Table(title="Property-dependent clusters (1 = highest mean " + props[0] + ")")
    table.add_column("cluster", justify="right")
    table.add_column("n", justify="right")
    for name in props:
        table.add_column(f"{name} mean ± std", justify="right")
    table.add_column("most distinguishing descriptors (effect size)")
    table.add_column("typical materials")
    for rec in records:
        row = [str(rec["cluster"]), str(rec["size"])]
        row += [f"{rec[f'{n}_mean']:.3g} ± {rec[f'{n}_std']:.2g}" for n in props]
        row += ["; ".join(rec["distinguishing"][:3]), ", ".join(rec["examples"][:3])]
        table.add_row(*row)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(
        "cluster",
        help="Property-dependent clusters of materials from xtal describe (random-forest leaf "
        "encoding, Sato et al. 2024), with what distinguishes each.",
        epilog=EXAMPLE,
    )(handle_errors(cluster, {"n_clusters": "--clusters", "n_estimators": "--trees"}))
