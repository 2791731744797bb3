"""``xtal embed``: a trained model + structures or patterns -> embeddings HDF5."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import err_console, handle_errors, progress_bar

EXAMPLE = (
    "Example: xtal embed embed-model patterns.h5 -o embeddings.h5  |  "
    "xtal embed embed-model structures/*.cif -o cif-emb.h5  |  "
    "xtal embed embed-model scan.xy --modality xrd -o scan-emb.h5"
)


def embed(
    model: Path = typer.Argument(..., help="Model folder or model.pt from xtal train-embed."),
    inputs: list[str] = typer.Argument(
        ..., help="Patterns HDF5, CIF/CSV/JSON structure files or measured scans (xrd)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Embeddings HDF5 to write."),
    modality: str = typer.Option(
        "structure", "--modality", "-m", help="structure (CGCNN) or xrd (1D CNN) encoder."
    ),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(512, "--batch-size", help="Items per forward pass."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or summary."),
) -> None:
    """Embed structures or patterns with a trained model; ids, labels and metadata are kept."""
    from xtal_cli.embed.infer import embed_inputs, load_model
    from xtal_cli.embed.store import write_embeddings

    embedder = load_model(model, device)
    with progress_bar(quiet, transient=True) as bar:
        task = bar.add_task(f"embed ({modality})", total=None)
        es = embed_inputs(
            embedder,
            inputs,
            modality,
            batch_size,
            on_progress=lambda n: bar.advance(task, n),
        )
    write_embeddings(output, es)
    if not quiet:
        err_console.print(
            f"wrote {output}: {len(es)} {modality} embeddings of dimension "
            f"{es.embedding.shape[1]}, {len(es.failures)} failures"
        )
        for id_, stage, reason in es.failures[:5]:
            err_console.print(f"  {stage} failed for {id_}: {reason}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(
        "embed",
        help="Embed structures or XRD patterns with a train-embed model.",
        epilog=EXAMPLE,
    )(handle_errors(embed))
