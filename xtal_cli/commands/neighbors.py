"""``xtal neighbors``: nearest materials in an embedding space, maps and intrinsic dimension."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from xtal_cli.commands._common import console, emit_records, err_console, handle_errors

EXAMPLE = (
    "Example: xtal neighbors embeddings.h5 mp-22526 -k 10  |  "
    "xtal neighbors embeddings.h5 LiCoO2 --format json  |  "
    "xtal neighbors embeddings.h5 scan.xy --model embed-model  |  "
    "xtal neighbors embeddings.h5 --map map.png --color-by band_gap "
    "--element-map elements.png --intrinsic-dim"
)


# duplicates: a Typer command signature, the shape of every command's (deliberate)
def neighbors(
    embeddings: Path = typer.Argument(..., help="Embeddings HDF5 from xtal embed."),
    query: str = typer.Argument(
        None, help="Material id, formula, CIF file or measured pattern (needs --model)."
    ),
    k: int = typer.Option(10, "-k", help="Number of neighbours."),
    model: Path = typer.Option(
        None, "--model", help="train-embed model, to embed a CIF or pattern query."
    ),
    index: str = typer.Option(
        "auto", "--index", help="exact, hnsw (saved beside the file) or auto (by size)."
    ),
    metric: str = typer.Option(
        "euclidean",
        "--metric",
        help="euclidean (the trained space) or whitened (PCA-whitened, 128 components: "
        "neighbours closer in properties).",
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, jsonl or csv."),
    map_path: Path = typer.Option(None, "--map", help="Write a t-SNE map PNG."),
    # duplicates: Typer option declarations share one shape (deliberate)
    color_by: str = typer.Option(
        "crystal_system",
        "--color-by",
        help="Map colour: a property column, crystal_system, space_group or element:SYMBOL.",
    ),
    element_map: Path = typer.Option(
        None, "--element-map", help="Write a periodic-table grid of per-element maps PNG."
    ),
    intrinsic_dim: bool = typer.Option(
        False, "--intrinsic-dim", help="Global and local (k=25) PCA intrinsic dimension."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for t-SNE and the local-ID sample."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No messages on stderr."),
) -> None:
    """Find the nearest materials to a query, draw maps of the space, measure its dimension."""
    import numpy as np

    from xtal_cli.embed.search import Whitening, open_index
    from xtal_cli.embed.store import read_embeddings
    from xtal_cli.errors import XtalError

    if fmt not in ("table", "json", "jsonl", "csv"):
        raise XtalError(f"--format {fmt}: use table, json, jsonl or csv")
    if index not in ("auto", "exact", "hnsw"):
        raise XtalError(f"--index {index}: use auto, exact or hnsw")
    if metric not in ("euclidean", "whitened"):
        raise XtalError(f"--metric {metric}: use euclidean or whitened")
    if k < 1:
        raise XtalError("-k must be at least 1")
    if query is None and not (map_path or element_map or intrinsic_dim):
        raise XtalError("give a QUERY, or --map / --element-map / --intrinsic-dim")
    es = read_embeddings(embeddings)
    if len(es) == 0:
        raise XtalError(f"{embeddings}: holds no embeddings")
    say = (lambda *a: None) if quiet else (lambda msg: err_console.print(msg, highlight=False))
    formulas = es.labels.get("formula", np.array([""] * len(es)))

    if query is not None:
        vec, exclude, described = _resolve_query(query, es, model, formulas)
        space = es.embedding
        if metric == "whitened":
            try:
                whitening = Whitening().fit(space)
            except ValueError as exc:
                raise XtalError(f"{embeddings}: {exc}") from None
            space, vec = whitening.transform(space), whitening.transform(vec)
        idx = open_index(space, index, embeddings, variant="" if metric == "euclidean" else metric)
        t0 = time.perf_counter()
        found, dist = idx.query(vec, k + (1 if exclude is not None else 0))
        elapsed = (time.perf_counter() - t0) * 1000
        records = []
        for i, d in zip(found[0], dist[0]):
            if exclude is not None and i == exclude:
                continue
            records.append({"rank": len(records) + 1, "distance": float(d), **es.record(int(i))})
        records = records[:k]
        say(f"{described}: {len(records)} nearest of {len(es)} ({idx.kind}, {elapsed:.1f} ms)")
        if fmt == "table":
            _print_table(records, described)
        else:
            emit_records(records, fmt)

    if map_path or element_map:
        from xtal_cli.embed.maps import plot_element_grid, plot_map, tsne_2d

        colour = _colour(color_by, es, formulas) if map_path else {}
        say(f"t-SNE of {len(es)} embeddings (seed {seed}) ...")
        try:
            xy = tsne_2d(es.embedding, seed=seed)
        except ValueError as exc:
            raise XtalError(f"{embeddings}: {exc}") from None
        if map_path:
            plot_map(xy, map_path, color_by=color_by, formulas=formulas, **colour)
            say(f"wrote {map_path}")
        if element_map:
            drawn = plot_element_grid(xy, formulas, element_map)
            say(f"wrote {element_map} ({len(drawn)} elements)")

    if intrinsic_dim:
        from xtal_cli.embed.maps import intrinsic_dimension

        try:
            result = intrinsic_dimension(es.embedding, k=25, seed=seed)
        except ValueError as exc:
            raise XtalError(f"{embeddings}: {exc}") from None
        if fmt == "table":
            console.print(
                f"intrinsic dimension (PCA, {result['variance_threshold']:.0%} variance): "
                f"global {result['global']}, local (k={result['k']}) mean "
                f"{result['local_mean']:.1f}, median {result['local_median']:.0f} "
                f"in {result['dim']}-d, {result['n_points']} points"
            )
        else:
            emit_records([{"intrinsic_dimension": result}], fmt if fmt != "csv" else "jsonl")


def _resolve_query(query: str, es, model, formulas):
    """(vector, row to leave out, description) for an id, a formula or a file."""
    import numpy as np

    from xtal_cli.errors import XtalError

    if query in es.ids:
        row = es.ids.index(query)
        return es.embedding[row], row, f"{query} ({formulas[row]})"
    path = Path(query)
    if path.exists():
        if model is None:
            raise XtalError(f"{query}: a file query needs --model to embed it")
        from xtal_cli.embed.infer import embed_query_file, load_model

        vec, modality = embed_query_file(load_model(model), path)
        space = es.attrs.get("modality", "?")
        if vec.shape[0] != es.embedding.shape[1]:
            raise XtalError(
                f"{model}: embeds into {vec.shape[0]} dimensions, the embeddings file has "
                f"{es.embedding.shape[1]}; use the model that wrote it"
            )
        return vec, None, f"{path.name} ({modality} query in {space} space)"
    try:
        from pymatgen.core import Composition

        reduced = Composition(query).reduced_formula
    except Exception:  # noqa: BLE001 - not a formula either
        reduced = None
    if reduced:
        rows = [i for i, f in enumerate(formulas) if f == reduced]
        if rows:
            row = rows[0]
            extra = f", first of {len(rows)} entries" if len(rows) > 1 else ""
            return es.embedding[row], row, f"{es.ids[row]} ({reduced}{extra})"
    sample = ", ".join(np.asarray(es.ids[:3]).tolist())
    raise XtalError(
        f"{query}: not an id (e.g. {sample}), formula or file found in this embeddings set"
    )


def _colour(color_by: str, es, formulas) -> dict:
    from xtal_cli.errors import XtalError

    if color_by.startswith("element:"):
        return {"element": color_by.split(":", 1)[1]}
    if color_by in es.labels:
        return {"values": es.labels[color_by]}
    if color_by in es.meta:
        return {"values": es.meta[color_by]}
    known = ", ".join(list(es.labels) + list(es.meta))
    raise XtalError(f"--color-by {color_by}: no such column; use one of {known} or element:Li")


# always shown, in this order, under these headers; every other column is added while the
# terminal has room
TABLE_CORE = {
    "rank": "#",
    "distance": "distance",
    "id": "id",
    "formula": "formula",
    "space_group_symbol": "space group",
    "crystal_system": "system",
}


def _print_table(records: list[dict], title: str) -> None:
    """The neighbours as a rich table that fits the terminal: the core columns, then as many
    property columns as fit unwrapped; the rest are named on stderr (``--format csv`` has all)."""
    from rich.table import Table

    if not records:
        console.print(f"neighbours of {title}: none")
        return
    cells = {c: [_cell(r.get(c)) for r in records] for c in records[0] if c != "source"}
    if "space_group_symbol" in cells and "space_group" in cells:  # "R-3m (166)"
        numbers = cells.pop("space_group")
        cells["space_group_symbol"] = [
            f"{sym} ({num})" if sym and num else sym or num
            for sym, num in zip(cells["space_group_symbol"], numbers)
        ]
    # empty columns and copies of the id (material_id) say nothing
    cells = {c: v for c, v in cells.items() if any(v) and (c == "id" or v != cells.get("id"))}
    order = [c for c in TABLE_CORE if c in cells] + [c for c in cells if c not in TABLE_CORE]
    room = console.width - 1
    shown, omitted = [], []
    for c in order:
        need = max(len(TABLE_CORE.get(c, c)), *map(len, cells[c])) + 3  # padding, column rule
        if c in TABLE_CORE or need <= room:
            shown.append(c)
            room -= need
        else:
            omitted.append(c)
    table = Table(title=f"neighbours of {title}", title_justify="left")
    for c in shown:
        justify = "right" if c in ("rank", "distance") else "left"
        table.add_column(TABLE_CORE.get(c, c), justify=justify, no_wrap=True)
    for i in range(len(records)):
        table.add_row(*[cells[c][i] for c in shown])
    console.print(table)
    if omitted:
        err_console.print(
            f"({len(omitted)} more columns: {', '.join(omitted)}; --format csv or json has all)",
            highlight=False,
        )


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:  # space group 166.0 -> 166
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# duplicates: every command registers itself with this shape (deliberate)
def register(app: typer.Typer) -> None:
    app.command(
        "neighbors",
        help="Nearest materials to a query in an embedding space; t-SNE maps; intrinsic dimension.",
        epilog=EXAMPLE,
    )(handle_errors(neighbors))
