"""Batch simulation: structures -> sticks (+ optional profiles) + spglib labels -> patterns/1 HDF5.

Work is split into chunks of items. Each finished chunk is saved atomically in a folder beside the
output (``<output>.partial.d/``); a rerun with ``resume=True`` loads the finished chunks and
computes only the rest, so an interrupted run loses at most one chunk per worker. When all chunks
are done they are merged into the output file (temporary name, then rename) and the folder is
removed. Per-item failures are recorded (id, stage, reason) and never stop the batch. Per-item
randomness (noise, random crystals) is seeded from (seed, item index), so resumed and
uninterrupted runs give identical files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.io.chunks import ChunkFolder, compute_chunks
from xtal_cli.io.h5 import PATTERN_COLUMNS, PatternSet, write_patterns
from xtal_cli.io.structures import (
    StructureItem,
    load_structure,
    meta_array,
    meta_columns,
    structure_json,
)
from xtal_cli.xrd.profile import ProfileSettings, render_profile
from xtal_cli.xrd.sticks import DEFAULT_ENGINE, ENGINES, compute_sticks


@dataclass(frozen=True)
class SimulationSettings:
    """What :func:`run_simulation` computes for every structure; checked on construction so a
    bad value fails before any work, with the parameter named."""

    wavelength: float  # Å
    wavelength_label: str
    two_theta_min: float = 0.0
    two_theta_max: float = 90.0
    engine: str = DEFAULT_ENGINE
    symprec: float = 0.1
    seed: int = 0
    profile: ProfileSettings | None = None
    augment: bool = False  # per-pattern instrument/sample effects (xtal_cli.xrd.augment)

    def __post_init__(self):
        if not (np.isfinite(self.wavelength) and self.wavelength > 0):
            raise ParameterError("wavelength", self.wavelength, "must be a positive number of Å")
        if not 0 <= self.two_theta_min < 180:
            raise ParameterError("two_theta_min", self.two_theta_min, "must be within 0-180°")
        if not self.two_theta_min < self.two_theta_max <= 180:
            raise ParameterError(
                "two_theta_max",
                self.two_theta_max,
                f"must be above the lowest 2θ ({self.two_theta_min:g}°) and at most 180°",
            )
        if self.engine not in ENGINES:
            raise ParameterError("engine", self.engine, f"use one of {', '.join(ENGINES)}")
        if not self.symprec > 0:
            raise ParameterError("symprec", self.symprec, "must be a positive tolerance (Å)")
        if self.augment and self.profile is None:
            raise ParameterError("augment", True, "needs profile settings (the 2θ grid)")

    def as_attrs(self) -> dict:
        attrs = {k: v for k, v in asdict(self).items() if k != "profile"}
        if self.profile is not None:
            attrs.update(self.profile.as_attrs())
        return attrs

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


def simulate_item(item: StructureItem, index: int, settings: SimulationSettings) -> dict:
    """Everything about one structure, or a failure record ``{"id", "stage", "reason"}``."""
    from xtal_cli.xrd.labels import symmetry_labels

    stage = "parse"
    try:
        structure = load_structure(item)
        if len(structure) == 0:
            raise ValueError("structure has no atoms")
        stage = "symmetry"
        labels = symmetry_labels(structure, settings.symprec)
        stage = "pattern"
        sticks = compute_sticks(
            structure,
            settings.wavelength,
            (settings.two_theta_min, settings.two_theta_max),
            engine=settings.engine,
        )
        profile = None
        augment = ""
        if settings.profile is not None:
            rng = np.random.default_rng([settings.seed, index])
            if settings.augment:
                from xtal_cli.xrd.augment import augmented_profile, draw_augmentation

                params = draw_augmentation(rng, wavelength=settings.wavelength)
                profile = augmented_profile(
                    sticks,
                    settings.profile.grid(),
                    params,
                    settings.wavelength,
                    lattice=structure.lattice,
                )
                augment = json.dumps(params)
            else:
                profile = render_profile(sticks.two_theta, sticks.intensity, settings.profile, rng)
    except Exception as exc:  # recorded per item; the batch goes on
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"id": item.id, "stage": stage, "reason": text[:300], "failed": True}
    return {
        "id": item.id,
        "failed": False,
        "labels": labels,
        "structure": structure_json(structure),
        "two_theta": sticks.two_theta,
        "intensity": sticks.intensity,
        "hkl": sticks.hkl,
        "profile": profile,
        "augment": augment,
        "meta": item.meta,
    }


def _simulate_chunk(items, start: int, settings: SimulationSettings) -> list[dict]:
    return [simulate_item(item, start + k, settings) for k, item in enumerate(items)]


class _Parts(ChunkFolder):
    """Finished simulation chunks; results encoded as npz arrays ``<k>.<field>`` plus one JSON
    string of everything else, so reading a chunk back (``--resume``) unpickles nothing."""

    def __init__(self, output: Path, settings: SimulationSettings, n_items: int, chunk: int):
        key = json.dumps({"settings": settings.fingerprint(), "n_items": n_items, "chunk": chunk})
        super().__init__(output, key)

    def save_results(self, start: int, results: list[dict]) -> None:
        arrays, records = {}, []
        for k, result in enumerate(results):
            record = {}
            for key, value in result.items():
                if isinstance(value, np.ndarray):
                    arrays[f"{k}.{key}"] = value
                elif key == "labels":
                    record[key] = {n: v for n, v in value.items() if n != "lattice"}
                    arrays[f"{k}.lattice"] = value["lattice"]
                else:
                    record[key] = value
            records.append(record)
        arrays["records"] = np.array(json.dumps(records, default=_plain))
        self.save(start, arrays)

    def load_results(self, start: int) -> list[dict]:
        arrays = self.load(start)
        records = json.loads(str(arrays["records"]))
        for name, value in arrays.items():
            k, _, key = name.partition(".")
            if not key:
                continue
            record = records[int(k)]
            if key == "lattice":
                record["labels"]["lattice"] = value
            else:
                record[key] = value
        return records


def _plain(value):
    """numpy scalars in labels and metadata as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def run_simulation(
    items: list[StructureItem],
    settings: SimulationSettings,
    output: str | Path | None = None,
    *,
    jobs: int = 1,
    resume: bool = False,
    chunk_size: int = 64,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    extra_attrs: dict | None = None,
) -> PatternSet:
    """Simulate *items* and return the patterns; with *output*, also write them there
    (patterns/1), saving finished chunks on the way so that ``resume=True`` continues an
    interrupted run. Without *output* everything stays in memory (nothing to resume)."""
    if chunk_size < 1:
        raise ParameterError("chunk_size", chunk_size, "must be at least 1")
    starts = list(range(0, len(items), chunk_size))
    if output is None:
        if resume:
            raise ParameterError("resume", resume, "needs an output file to resume")
        results: list[dict] = []
        for _, chunk in _compute(items, starts, settings, chunk_size, jobs, backend, scheduler):
            results.extend(chunk)
            if on_progress:
                on_progress(len(chunk))
        return _assemble(results, items, settings, extra_attrs or {})

    output = Path(output)
    parts = _Parts(output, settings, len(items), chunk_size)
    finished = parts.open(resume)
    todo = [s for s in starts if s not in finished]
    if on_progress and finished:
        on_progress(sum(min(chunk_size, len(items) - s) for s in starts if s in finished))
    for start, chunk in _compute(items, todo, settings, chunk_size, jobs, backend, scheduler):
        parts.save_results(start, chunk)
        if on_progress:
            on_progress(len(chunk))

    results = [r for s in starts for r in parts.load_results(s)]
    pattern_set = _assemble(results, items, settings, extra_attrs or {})
    write_patterns(output, pattern_set)
    parts.remove()
    return pattern_set


def _compute(items, starts, settings, chunk_size, jobs, backend, scheduler):
    """(start, results) of the chunks beginning at *starts*, in order, from *jobs* workers."""
    return compute_chunks(
        _simulate_chunk, items, starts, chunk_size, jobs, backend, scheduler, settings
    )


def _assemble(results, items, settings: SimulationSettings, extra_attrs: dict) -> PatternSet:
    ok = [r for r in results if not r["failed"]]
    failures = [(r["id"], r["stage"], r["reason"]) for r in results if r["failed"]]
    cols = meta_columns(items)
    meta = {c: meta_array([r["meta"].get(c, "") for r in ok]) for c in cols}
    labels = {
        name: np.array([r["labels"][name] for r in ok], dtype=object if name in _TEXT else np.int64)
        for name in PATTERN_COLUMNS
    }
    profiles = None
    grid = None
    if settings.profile is not None:
        grid = settings.profile.grid()
        profiles = (
            np.stack([r["profile"] for r in ok])
            if ok
            else np.zeros((0, grid.size), dtype=np.float32)
        )
    attrs = settings.as_attrs()
    attrs.update(extra_attrs)
    attrs["n_failures"] = len(failures)
    return PatternSet(
        ids=[r["id"] for r in ok],
        labels=labels,
        lattice=np.array([r["labels"]["lattice"] for r in ok]).reshape(-1, 6),
        structures=[r["structure"] for r in ok],
        sticks_two_theta=[r["two_theta"] for r in ok],
        sticks_intensity=[r["intensity"] for r in ok],
        sticks_hkl=[r["hkl"] for r in ok],
        meta=meta,
        profile_grid=grid,
        profiles=profiles,
        failures=failures,
        attrs=attrs,
        extra=(
            {"augment": np.array([r.get("augment", "") for r in ok], dtype=object)}
            if settings.augment
            else {}
        ),
    )


_TEXT = {"formula", "space_group_symbol", "crystal_system"}
