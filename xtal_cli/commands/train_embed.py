"""``xtal train-embed``: a structure/XRD dual encoder, trained self-supervised on patterns."""

from __future__ import annotations

from pathlib import Path

import typer

from xtal_cli.commands._common import err_console, handle_errors, progress_bar, worker_count

EXAMPLE = (
    "Example: xtal simulate --builtin mp-sample --profile --wavelength CuKa "
    "--two-theta-min 10 --two-theta-max 110 -o patterns.h5 && "
    "xtal train-embed patterns.h5 -o embed-model --epochs 30 --seed 0  |  "
    "torchrun --nproc_per_node 4 -m xtal_cli train-embed patterns.h5 -o embed-model --device cuda"
)


def train_embed(
    patterns: Path = typer.Argument(..., help="Patterns HDF5 with profiles."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Folder for model.pt, checkpoint.pt, metrics.jsonl, graphs.h5."
    ),
    epochs: int = typer.Option(50, "--epochs", help="Total number of epochs."),
    batch_size: int = typer.Option(512, "--batch-size", help="Pairs per batch."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    dim: int = typer.Option(1024, "--dim", help="Embedding dimension."),
    margin: float = typer.Option(1.0, "--margin", help="Triplet loss margin."),
    negatives: str = typer.Option(
        "random",
        "--negatives",
        help="In-batch negative among the margin violators: random (published) or hardest.",
    ),
    schedule: str = typer.Option(
        "cosine", "--schedule", help="Learning rate: cosine (warm-up, then decay) or constant."
    ),
    # duplicates: Typer option declarations share one shape (deliberate)
    warmup_steps: int = typer.Option(20, "--warmup-steps", help="Linear warm-up steps."),
    time_budget: float = typer.Option(
        None,
        "--time-budget",
        help="Stop after this many minutes of training (the cosine decay then follows time).",
    ),
    eval_every: int = typer.Option(
        1, "--eval-every", help="Validation retrieval every N epochs (and on the last)."
    ),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", help="Share held out for validation retrieval metrics."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on GPU."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, split and batch order."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start again over an existing run."),
    graph_cache: Path = typer.Option(
        None, "--graph-cache", help="Graph cache HDF5 (default: OUTPUT/graphs.h5)."
    ),
    jobs: int = typer.Option(
        1, "-j", "--jobs", help="Processes for building graphs (-1: all cores)."
    ),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (default: all)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display."),
) -> None:
    """Train the structure and XRD encoders into one space (bidirectional triplet loss)."""
    import torch

    from xtal_cli.embed.train import TrainSettings
    from xtal_cli.embed.train import train_embed as run
    from xtal_cli.errors import XtalError

    jobs = worker_count(jobs)
    if epochs < 1 or batch_size < 2 or dim < 2:
        raise XtalError("--epochs must be >= 1, --batch-size >= 2, --dim >= 2")
    if time_budget is not None and time_budget <= 0:
        raise XtalError("--time-budget must be > 0 minutes")
    if threads:
        torch.set_num_threads(threads)
    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        margin=margin,
        negatives=negatives,
        schedule=schedule,
        warmup_steps=warmup_steps,
        time_budget=time_budget * 60 if time_budget else None,
        eval_every=eval_every,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
        amp=amp,
        workers=jobs,
    )
    with progress_bar(quiet) as bar:
        tasks: dict = {}

        def report(event, **info):
            if event == "graphs":
                if "graphs" not in tasks:
                    tasks["graphs"] = bar.add_task("graphs", total=info["total"])
                bar.advance(tasks["graphs"], info["advance"])
            elif event == "epoch_start":
                if "epoch" in tasks:
                    bar.remove_task(tasks["epoch"])
                tasks["epoch"] = bar.add_task(
                    f"epoch {info['epoch']}/{info['epochs']}", total=info["total"]
                )
            elif event == "batch":
                bar.update(tasks["epoch"], advance=1, description=bar.tasks[-1].description)
            elif event == "epoch_end" and not quiet:
                if info.get("budget_spent"):
                    bar.console.print("time budget spent: stopping after this epoch")
                bar.console.print(_epoch_line(info), highlight=False)
            elif event == "done_already" and not quiet:
                bar.console.print(
                    f"checkpoint is at epoch {info['epoch']}: nothing to do (raise --epochs)"
                )

        summary = run(
            patterns,
            output,
            settings,
            dim=dim,
            resume=resume,
            force=force,
            graph_cache=graph_cache,
            report=report,
        )
    if not quiet and summary["rank"] == 0:
        err_console.print(
            f"wrote {output}/model.pt: {summary['n_train']} train / {summary['n_val']} validation "
            f"pairs, {summary['epochs_run']} epochs this run on {summary['device']}, "
            f"{summary['graph_failures']} structures without a graph (seed {seed})"
        )
        for id_, _, reason in summary["failures"][:5]:
            err_console.print(f"  skipped {id_}: {reason}", highlight=False)


def _epoch_line(r: dict) -> str:
    line = f"epoch {r['epoch']}: loss {r['train_loss']:.4f}"
    if "val_loss" in r:
        line += (
            f", val loss {r['val_loss']:.4f}, XRD→structure top-1/top-10 "
            f"{r['val_xrd_to_structure_top1']:.1%}/{r['val_xrd_to_structure_top10']:.1%}, "
            f"structure→XRD {r['val_structure_to_xrd_top1']:.1%}/"
            f"{r['val_structure_to_xrd_top10']:.1%}"
        )
    return line + f", {r['pairs_per_s']:.0f} pairs/s"


def register(app: typer.Typer) -> None:
    app.command(
        "train-embed",
        help="Train structure and XRD encoders into one embedding space (self-supervised).",
        epilog=EXAMPLE,
    )(handle_errors(train_embed, {"workers": "--jobs"}))
