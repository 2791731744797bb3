"""Batch description: structures -> descriptors/1, in resumable chunks (xtal_cli.io.chunks).

A structure that cannot be parsed, or for which one descriptor family fails (a disordered
structure for CrystalNN, an element without Magpie data ...), is recorded in ``failures`` with
the family as its stage; every other structure is described.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from xtal_cli.describe.descriptors import Describer, DescriptorError, DescriptorSettings
from xtal_cli.describe.store import DescriptorSet, write_descriptors
from xtal_cli.errors import ParameterError
from xtal_cli.io.chunks import ChunkFolder, compute_chunks, ids_digest, resumable_chunks
from xtal_cli.io.structures import StructureItem, load_structure, meta_array, meta_columns

_DESCRIBERS: dict[DescriptorSettings, Describer] = {}


def cached_describer(settings: DescriptorSettings) -> Describer:
    """One Describer per process and settings (matminer reads its element tables once)."""
    if settings not in _DESCRIBERS:
        _DESCRIBERS[settings] = Describer(settings)
    return _DESCRIBERS[settings]


def describe_item(item: StructureItem, settings: DescriptorSettings) -> dict:
    """One structure's descriptors, or the stage and reason it failed."""
    record = {"id": item.id, "meta": item.meta, "failed": True}
    try:
        structure = load_structure(item)
    except ValueError as exc:
        return {**record, "stage": "parse", "reason": str(exc)}
    with warnings.catch_warnings():  # formulas are ordered by electronegativity (none for He)
        warnings.simplefilter("ignore")
        composition = structure.composition.reduced_composition
        record["formula"] = composition.reduced_formula
        record["elements"] = " ".join(el.symbol for el in composition.elements)
    try:
        values = cached_describer(settings).describe(structure)
    except DescriptorError as exc:
        return {**record, "stage": exc.stage, "reason": exc.reason}
    return {**record, "failed": False, "values": values}


def _describe_chunk(items, start: int, settings: DescriptorSettings) -> dict[str, np.ndarray]:
    """A chunk's results as npz-ready arrays: ``values`` of the described items and one JSON
    string with every record (so resuming unpickles nothing)."""
    results = [describe_item(item, settings) for item in items]
    ok = [r.pop("values") for r in results if not r["failed"]]
    width = len(cached_describer(settings).names)
    values = np.array(ok, dtype=np.float64).reshape(len(ok), width)
    return {"values": values, "records": np.array(json.dumps(results))}


def run_description(
    items: list[StructureItem],
    settings: DescriptorSettings | None = None,
    output: str | Path | None = None,
    *,
    jobs: int = 1,
    resume: bool = False,
    chunk_size: int = 64,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    extra_attrs: dict | None = None,
) -> DescriptorSet:
    """Describe *items*; with *output*, write descriptors/1 there, saving finished chunks on
    the way so that ``resume=True`` continues an interrupted run."""
    settings = settings or DescriptorSettings()
    if chunk_size < 1:
        raise ParameterError("chunk_size", chunk_size, "must be at least 1")
    if resume and output is None:
        raise ParameterError("resume", resume, "needs an output file to resume")
    starts = list(range(0, len(items), chunk_size))
    args = (_describe_chunk, items)
    if output is None:
        chunks = {}
        for start, arrays in compute_chunks(*args, starts, chunk_size, jobs, backend, scheduler,
                                            settings):  # fmt: skip
            chunks[start] = arrays
            if on_progress:
                on_progress(min(chunk_size, len(items) - start))
        return _assemble([chunks[s] for s in starts], items, settings, extra_attrs or {})

    key = json.dumps(
        {"settings": asdict(settings), "ids": ids_digest(items), "n": len(items),
         "chunk": chunk_size}
    )  # fmt: skip
    parts = ChunkFolder(output, key)
    chunks = resumable_chunks(*args, parts, resume, chunk_size, jobs, backend, scheduler,
                              settings, on_progress=on_progress)  # fmt: skip
    result = _assemble(chunks, items, settings, extra_attrs or {})
    write_descriptors(output, result)
    parts.remove()
    return result


def _assemble(chunks, items, settings: DescriptorSettings, extra_attrs: dict) -> DescriptorSet:
    describer = cached_describer(settings)
    records = [r for c in chunks for r in json.loads(str(c["records"]))]
    ok = [r for r in records if not r["failed"]]
    values = [c["values"] for c in chunks]
    width = len(describer.names)
    cols = meta_columns(items)
    attrs = {**asdict(settings), "families": ",".join(settings.families), **extra_attrs}
    attrs["n_failures"] = len(records) - len(ok)
    return DescriptorSet(
        ids=[r["id"] for r in ok],
        formulas=[r["formula"] for r in ok],
        elements=[r["elements"] for r in ok],
        values=np.concatenate(values) if values else np.zeros((0, width)),
        names=list(describer.names),
        families=list(describer.families),
        meta={c: meta_array([r["meta"].get(c, "") for r in ok]) for c in cols},
        failures=[(r["id"], r["stage"], r["reason"]) for r in records if r["failed"]],
        attrs=attrs,
    )


__all__ = ["cached_describer", "describe_item", "run_description"]
