"""Helpers shared by every subcommand: consoles, error handling, progress bars, table output."""

from __future__ import annotations

import csv
import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.jsonable import json_default  # noqa: F401 (re-exported)
from xtal_cli.parallel import available_cores, worker_count  # noqa: F401 (re-exported)

# Data goes to stdout; messages, progress and errors to stderr, so that commands pipe.
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one ``error:`` line to stderr and exit with *code*."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable, flags: Mapping[str, str] | None = None) -> Callable:
    """Turn :class:`XtalError` into one line on stderr and exit status 2 (no traceback).

    A :class:`ParameterError` names a library parameter; it is printed with the command's flag
    for it instead (:func:`cli_flags`, plus *flags* where the names differ, e.g.
    ``{"workers": "--jobs"}``). Unexpected exceptions keep their traceback: they are bugs to
    fix, not user errors.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ParameterError as exc:
            flag = {**cli_flags(fn), **(flags or {})}.get(exc.parameter)
            fail(exc.with_flag(flag) if flag else str(exc))
        except XtalError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted; finished work is kept (rerun with --resume where offered)", 130)
        except BrokenPipeError:  # e.g. `xtal ... --format csv | head`
            sys.stderr.close()
            raise typer.Exit(0) from None

    return wrapper


def print_failures(failures: list[tuple[str, str, str]], output, shown: int = 5) -> None:
    """The first per-item failures of a batch on stderr, and where the rest are recorded."""
    for ident, stage, reason in failures[:shown]:
        err_console.print(f"  failed {ident} ({stage}): {reason}", highlight=False)
    if len(failures) > shown:
        err_console.print(
            f"  ... {len(failures) - shown} more in {output}:/failures", highlight=False
        )


def cli_flags(command: Callable) -> dict[str, str]:
    """Python parameter name -> long flag of a Typer command, read from its signature
    (``two_theta_min`` -> ``--two-theta-min``), so library errors can be shown with flags."""
    import inspect

    from typer.models import OptionInfo

    flags = {}
    for name, param in inspect.signature(command).parameters.items():
        if isinstance(param.default, OptionInfo):
            decls = [d.split("/")[0] for d in param.default.param_decls or () if d[:2] == "--"]
            flags[name] = decls[0] if decls else "--" + name.replace("_", "-")
    return flags


@contextmanager
def progress_bar(quiet: bool = False, transient: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr (disabled with ``--quiet`` or when stderr is not a tty)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=transient,
    )
    with progress:
        yield progress


def emit_records(records: Iterable[dict], fmt: str, columns: list[str] | None = None) -> None:
    """Write records to stdout as ``json`` (one array), ``jsonl`` or ``csv``."""
    records = list(records)
    out = sys.stdout
    if fmt == "json":
        json.dump(records, out, indent=2, default=json_default)
        out.write("\n")
    elif fmt == "jsonl":
        for rec in records:
            out.write(json.dumps(rec, default=json_default) + "\n")
    elif fmt == "csv":
        cols = columns or (list(records[0].keys()) if records else [])
        writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: _csv_value(rec.get(k)) for k in cols})
    else:
        raise XtalError(f"unknown output format {fmt!r}; use table, json, jsonl or csv")
    out.flush()


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value
