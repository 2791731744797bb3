"""``xtal train-symmetry``: features/1 → a symmetry-model/2 HDF5 model plus held-out metrics."""

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
from xtal_cli.errors import XtalError

HELP = (
    "Train crystal-system and space-group classifiers on peak features (extremely randomised "
    "trees, 500 trees, depth 30, 9 features per split by default, as Suzuki et al. 2020), "
    "evaluate them on held-out patterns (accuracy, precision, recall, F1, top-1/5/10), and "
    "write one model file (HDF5 arrays, nothing executable) plus metrics JSON; --report adds "
    "confusion matrices, importances and the accuracy-vs-peaks curve. --model cnn instead "
    "trains a 1D CNN on the whole profiles of patterns files from xtal simulate --augment "
    "(one or more, e.g. several seeds), on a Q grid with random scan windows, held out by "
    "formula and temperature-calibrated; the same model file and predict-symmetry."
)
EPILOG = (
    "Example: xtal train-symmetry features.h5 --seed 0 -j 2 -o symmetry.h5 "
    "--report report/ --rules cubic  |  xtal train-symmetry aug_s0.h5 aug_s1.h5 --model cnn "
    "--epochs 10 -o symmetry-cnn.h5"
)


def _parse_params(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XtalError(f"--param {item!r}: use NAME=VALUE, e.g. --param min_samples_leaf=2")
        out[key.strip().replace("-", "_")] = _value(value.strip())
    return out


def _value(text: str):
    if text.lower() in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def train_symmetry(
    inputs: list[Path] = typer.Argument(
        ...,
        help="Features file from xtal featurize (with labels); for --model cnn, patterns files "
        "with profiles from xtal simulate --augment.",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (.h5)."),
    model: str = typer.Option(
        "extra-trees",
        "--model",
        help="extra-trees, random-forest, knn, decision-tree, logistic-regression, or cnn.",
    ),
    trees: int = typer.Option(None, "--trees", help="Trees per ensemble (default 500)."),
    max_depth: int = typer.Option(None, "--max-depth", help="Tree depth limit (default 30)."),
    max_features: int = typer.Option(
        None, "--max-features", help="Features tried per split (default 9)."
    ),
    param: list[str] = typer.Option(
        None, "--param", help="Other estimator parameter NAME=VALUE (repeatable)."
    ),
    split: str = typer.Option(
        None, "--split", help="Held-out split: random (default), year or group; cnn: group."
    ),
    test_size: float = typer.Option(0.2, "--test-size", help="Held-out fraction."),
    group_by: str = typer.Option(
        "formula", "--group-by", help="Column for --split group (label or meta column)."
    ),
    year_cutoff: float = typer.Option(
        None, "--year-cutoff", help="--split year: train on year <= this (default: 80 % quantile)."
    ),
    search: int = typer.Option(
        0, "--search", help="Randomised hyper-parameter search with N candidates (3-fold CV)."
    ),
    shap: bool = typer.Option(False, "--shap", help="Also mean |SHAP| (20 trees, 200 rows)."),
    # duplicates: Typer option declarations share one shape in every command (deliberate)
    rules: str = typer.Option(
        None, "--rules", help="Print a shallow tree separating this crystal system (e.g. cubic)."
    ),
    rules_depth: int = typer.Option(3, "--rules-depth", help="Depth of the --rules tree."),
    curve: bool = typer.Option(
        None,
        "--curve/--no-curve",
        help="Accuracy vs number of peaks used (100-tree models; default: on with --report).",
    ),
    report: Path = typer.Option(
        None, "--report", help="Folder for metrics.json, confusion and importance PNGs, curve."
    ),
    metrics: Path = typer.Option(
        None, "--metrics", help="Metrics JSON (default: next to the model, .metrics.json)."
    ),
    compress: int = typer.Option(
        0, "--compress", help="gzip level 0-9 for the model file (smaller file, slower load)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, trees, search)."),
    jobs: int = typer.Option(1, "-j", "--jobs", help="Parallel jobs for fitting (-1: all cores)."),
    fmt: str = typer.Option("table", "--format", help="Summary on stdout: table or json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or messages."),
    epochs: int = typer.Option(None, "--epochs", help="cnn: passes over the data (default 12)."),
    batch_size: int = typer.Option(None, "--batch-size", help="cnn: batch (default 128)."),
    lr: float = typer.Option(None, "--lr", help="cnn: peak learning rate (default 2e-3)."),
    device: str = typer.Option("cpu", "--device", help="cnn: cpu or cuda."),
    resume: bool = typer.Option(
        False, "--resume", help="cnn: continue from <output>.checkpoint.pt after an interruption."
    ),
) -> None:
    from xtal_cli.symmetry.train import write_metrics_json

    if fmt not in ("table", "json"):
        raise XtalError(f"--format {fmt!r}: use table or json")
    if not 0 <= compress <= 9:
        raise XtalError(f"--compress {compress}: use 0-9")
    if model == "cnn":
        if split not in (None, "group") or group_by != "formula":
            raise XtalError("--split: the cnn model always holds out whole formulas (group)")
        _train_cnn(inputs, output, test_size, seed, jobs, epochs, batch_size, lr, device,
                   resume, metrics, fmt, quiet)  # fmt: skip
        return
    cnn_only = {"--epochs": epochs, "--batch-size": batch_size, "--lr": lr,
                "--resume": resume or None}  # fmt: skip
    given = [flag for flag, value in cnn_only.items() if value is not None]
    if given or device != "cpu":
        raise XtalError(f"{(given or ['--device'])[0]}: applies to --model cnn only")
    if len(inputs) != 1:
        raise XtalError(
            f"{len(inputs)} inputs: tree models train on one features file (concatenate with "
            "xtal featurize on several patterns files)"
        )
    from xtal_cli.symmetry.features import read_features
    from xtal_cli.symmetry.train import TrainOptions
    from xtal_cli.symmetry.train import train_symmetry as run

    features = inputs[0]
    split = split or "random"
    params = _parse_params(param)
    for key, value in (("n_estimators", trees), ("max_depth", max_depth)):
        if value is not None:
            params[key] = value
    if max_features is not None:
        params["max_features"] = max_features
    fs = read_features(features)
    # duplicates: flags to settings, keyword by keyword (deliberate; same shape as other calls)
    opts = TrainOptions(
        model=model,
        params=params,
        split=split,
        test_size=test_size,
        seed=seed,
        n_jobs=worker_count(jobs),
        group_by=group_by,
        year_cutoff=year_cutoff,
        search=search,
        shap=shap,
        rules=rules,
        rules_depth=rules_depth,
        curve=(report is not None) if curve is None else curve,
        report_dir=str(report) if report else None,
    )

    def log(msg: str) -> None:
        if not quiet:
            err_console.print(msg, highlight=False)

    with progress_bar(quiet) as bar:

        def progress(target: str, total: int):
            task = bar.add_task(f"fit {target.replace('_', ' ')}", total=total)
            return lambda n=1: bar.advance(task, n)

        fitted, result = run(fs, opts, source=str(features), progress=progress, log=log)
    size = fitted.save(output, compress=compress)
    result["bundle"] = {"path": str(output), "bytes": size, "compress": compress}
    metrics_path = metrics or output.with_name(output.stem + ".metrics.json")
    write_metrics_json(metrics_path, result)
    if fmt == "json":
        _print_json(result)
    else:
        _print_summary(result, output, metrics_path, report)
    if "rules" in result["explain"] and not quiet:
        r = result["explain"]["rules"]
        err_console.print(
            f"\n[bold]rules: {r['target']} vs not[/] (depth {r.get('depth', '')}, training "
            f"accuracy {r.get('training_accuracy', float('nan')):.3f})",
            highlight=False,
        )
        err_console.print(r["text"], highlight=False, markup=False)


def _print_json(result: dict, **extra) -> None:
    """The summary on stdout: bundle, training and held-out metrics without per-class rows."""
    import json

    from xtal_cli.io.jsonable import json_default

    summary = {
        "bundle": result["bundle"],
        "training": result["training"],
        **extra,
        "metrics": {
            t: {k: v for k, v in m.items() if k != "per_class"}
            for t, m in result["metrics"].items()
        },
    }
    typer.echo(json.dumps(summary, indent=2, default=json_default))


def _train_cnn(inputs, output: Path, test_size, seed, jobs, epochs, batch_size, lr, device,
               resume, metrics, fmt, quiet) -> None:  # fmt: skip
    """``--model cnn``: the profile network on patterns files (xtal_cli.symmetry.profile_model)."""
    import shlex

    from xtal_cli.symmetry.profile_model import CNNTrainSettings, train_profile_model
    from xtal_cli.symmetry.train import write_metrics_json

    kw = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr))
          if v is not None}  # fmt: skip
    settings = CNNTrainSettings(test_size=test_size, seed=seed, device=device,
                                threads=worker_count(jobs), **kw)  # fmt: skip
    recipe = " ".join(
        ["xtal train-symmetry", *(shlex.quote(str(p)) for p in inputs), "--model cnn",
         f"--epochs {settings.epochs} --batch-size {settings.batch_size} --lr {settings.lr:g}",
         f"--test-size {settings.test_size:g} --seed {settings.seed} --device {settings.device}",
         f"-o {shlex.quote(str(output))}"]
    )  # fmt: skip

    def log(msg: str) -> None:
        if not quiet:
            err_console.print(msg, highlight=False)

    with progress_bar(quiet) as bar:
        tasks: dict = {}

        def report(stage, advance=1, total=None):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], advance)

        _, result = train_profile_model(inputs, output, settings, recipe=recipe, resume=resume,
                                        report=report, log=log)  # fmt: skip
    metrics_path = metrics or output.with_name(output.stem + ".metrics.json")
    write_metrics_json(metrics_path, result)
    if fmt == "json":
        _print_json(result, temperature=result["temperature"])
        return
    result["training"].setdefault("split", "group by formula")
    result.setdefault("timings", {})
    _print_summary(result, output, metrics_path, None)
    cs, sg = result["metrics"]["crystal_system"], result["metrics"]["space_group"]
    err_console.print(
        f"calibration (held-out, top-1 ECE): crystal system {cs['ece']:.3f}, space group "
        f"{sg['ece']:.3f}; temperatures {result['temperature']['crystal_system']:.2f} / "
        f"{result['temperature']['space_group']:.2f}",
        highlight=False,
    )


def _print_summary(result: dict, output: Path, metrics_path: Path, report: Path | None) -> None:
    from rich.table import Table

    tr = result["training"]
    table = Table(
        title=(
            f"{result['model']} · {tr['split']} split · train {tr['n_train']} / "
            f"held-out {tr['n_test']} · seed {tr['seed']}"
        )
    )
    for col in ("target", "accuracy", "top-2/5", "top-3/10", "F1 macro", "F1 weighted", "fit s"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for target, m in result["metrics"].items():
        table.add_row(
            target.replace("_", " "),
            f"{100 * m['accuracy']:.2f} %",
            f"{100 * m.get('top5', m.get('top2', float('nan'))):.2f} %",
            f"{100 * m.get('top10', m.get('top3', float('nan'))):.2f} %",
            f"{m['f1_macro']:.3f}",
            f"{m['f1_weighted']:.3f}",
            f"{result['timings'].get(f'{target}_fit_s', 0):.1f}",
        )
    console.print(table)
    size_mb = result["bundle"]["bytes"] / 1e6
    lines = [f"model bundle: {output} ({size_mb:.1f} MB)", f"metrics: {metrics_path}"]
    if report:
        lines.append(f"report: {report}/ (confusion, importances, accuracy vs peaks)")
    err_console.print("\n".join(lines), highlight=False)


def register(app: typer.Typer) -> None:
    # TrainOptions and SymmetryModel names that differ from their flags
    flags = {"n_jobs": "--jobs", "params": "--param", "n_estimators": "--trees"}
    app.command("train-symmetry", help=HELP, epilog=EPILOG)(handle_errors(train_symmetry, flags))
