"""``train-templates``: structures -> a template folder (:mod:`xtal_cli.templates.library`).

Stages, each resumable: (1) every structure is parsed, symmetry-analysed and described in
chunks saved beside ``library.h5`` (``--resume`` keeps finished chunks); (2) one structure per
reduced formula is kept (lowest value of the energy column, ``e_above_hull`` for Materials
Project data), prototypes are found (:mod:`~xtal_cli.templates.prototypes`) and element volumes
fitted, and ``library.h5`` is written; (3) the pair classifier is trained on pairs of
compositions outside a held-out share, whose pairs give the reported pair accuracy; (4) the
joint embedding is trained. A stage whose file exists from a run with the same inputs is skipped.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.structures import StructureItem, load_structure, meta_is_number
from xtal_cli.templates.embedding import EmbeddingSettings
from xtal_cli.templates.library import (
    EMBEDDING,
    LIBRARY,
    PAIRS,
    TemplateLibrary,
    read_library,
    write_library,
    write_manifest,
)
from xtal_cli.templates.pairs import PairSettings

Progress = Callable[[str, int, int], None]  # (stage, advance, total)


@dataclass(frozen=True)
class TemplateSettings:
    """What train-templates does; checked on construction."""

    symprec: float = 0.1  # Å, spglib tolerance of the space groups (prototype bins)
    energy_column: str = "e_above_hull"
    holdout: float = 0.1  # share of compositions whose pairs measure the pair accuracy
    seed: int = 0
    pairs: PairSettings = field(default_factory=PairSettings)
    embedding: EmbeddingSettings | None = field(default_factory=EmbeddingSettings)

    def __post_init__(self):
        if not 0 < self.symprec < 1:
            raise ParameterError("symprec", self.symprec, "must be between 0 and 1 Å")
        if not 0 <= self.holdout < 0.5:
            raise ParameterError("holdout", self.holdout, "must be in [0, 0.5)")

    def key(self) -> dict:
        out = asdict(self)
        out["embedding"] = None if self.embedding is None else self.embedding.to_dict()
        return out


def _describer():
    """The composition-only Describer, one per process (cached by xtal describe's runner)."""
    from xtal_cli.describe.descriptors import DescriptorSettings
    from xtal_cli.describe.run import cached_describer

    return cached_describer(DescriptorSettings(preset="composition"))


def analyse_item(item: StructureItem, symprec: float) -> dict:
    """One structure's record for the library, or the stage and reason it failed."""
    from xtal_cli.describe.descriptors import DescriptorError
    from xtal_cli.io.structures import structure_json
    from xtal_cli.templates.analysis import analyse_structure

    record = {"id": item.id, "meta": item.meta, "failed": True}
    try:
        structure = load_structure(item)
    except ValueError as exc:
        return {**record, "stage": "parse", "reason": str(exc)}
    try:
        info = analyse_structure(structure, symprec)
    except ValueError as exc:
        return {**record, "stage": "symmetry", "reason": str(exc)}
    try:
        values = _describer().describe_composition(structure.composition)
    except DescriptorError as exc:
        return {**record, "stage": exc.stage, "reason": exc.reason}
    template = info.pop("template")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = template.volume
        amounts = template.composition.get_el_amt_dict()
    return {**record, **info, "failed": False, "values": values, "structure":
            structure_json(template), "volume": volume, "amounts": amounts}  # fmt: skip


def _analyse_chunk(items, start: int, symprec: float) -> dict[str, np.ndarray]:
    results = [analyse_item(item, symprec) for item in items]
    ok = [r for r in results if not r["failed"]]
    values = np.array([r.pop("values") for r in ok], dtype=np.float64)
    prints = np.array([r.pop("fingerprint") for r in ok], dtype=np.float32)
    width = len(_describer().names)
    from xtal_cli.templates.analysis import fingerprint_names

    return {
        "values": values.reshape(len(ok), width),
        "fingerprints": prints.reshape(len(ok), len(fingerprint_names())),
        "records": np.array(json.dumps(results)),
    }


def _energy(meta: dict, column: str) -> float:
    value = meta.get(column, "")
    return float(value) if meta_is_number(value) and str(value).strip() else np.nan


def analyse_items(items, output: Path, settings: TemplateSettings, *, jobs=1, resume=False,
                  chunk_size=128, backend="loky", scheduler=None, progress=None):  # fmt: skip
    """Stage 1: records, descriptors and fingerprints of every item (resumable chunks)."""
    from xtal_cli.io.chunks import ChunkFolder, ids_digest, resumable_chunks

    key = json.dumps({"symprec": settings.symprec, "ids": ids_digest(items), "n": len(items),
                      "chunk": chunk_size, "stage": "analysis"})  # fmt: skip
    parts = ChunkFolder(output / LIBRARY, key)
    chunks = resumable_chunks(
        _analyse_chunk, items, parts, resume, chunk_size, jobs, backend, scheduler,
        settings.symprec, on_progress=(lambda n: progress("analyse", n, len(items)))
        if progress else None,
    )  # fmt: skip
    records = [r for c in chunks for r in json.loads(str(c["records"]))]
    width = len(_describer().names)
    values = np.concatenate([c["values"] for c in chunks]) if chunks else np.zeros((0, width))
    prints = np.concatenate([c["fingerprints"] for c in chunks]) if chunks else None
    return records, values, prints, parts


def build_library(records, values, prints, settings: TemplateSettings, jobs=1,
                  progress=None) -> TemplateLibrary:  # fmt: skip
    """Stage 2: one structure per formula, prototypes, element volumes."""
    from xtal_cli.templates.analysis import fingerprint_names
    from xtal_cli.templates.prototypes import prototype_labels
    from xtal_cli.templates.substitute import ElementVolumes

    ok = [r for r in records if not r["failed"]]
    failures = [(r["id"], r["stage"], r["reason"]) for r in records if r["failed"]]
    best: dict[str, int] = {}
    for i, r in enumerate(ok):
        e = _energy(r["meta"], settings.energy_column)
        r["energy"] = e
        j = best.get(r["formula"])
        if j is None or (np.isfinite(e) and not (ok[j]["energy"] <= e)):
            best[r["formula"]] = i
    keep = sorted(best.values())
    rows = [ok[i] for i in keep]
    if not rows:
        raise XtalError("no structure could be used as a template (see the failures)")
    from xtal_cli.io.structures import structure_from_json

    cells = [structure_from_json(r["structure"]) for r in rows]
    bins = [(r["anonymous"], r["spacegroup"], r["n_sites"]) for r in rows]
    labels = prototype_labels(
        bins, cells, jobs=jobs, symprec=settings.symprec,
        progress=(lambda n: progress("prototypes", n, len(rows))) if progress else None,
    )  # fmt: skip
    first: dict[int, str] = {}
    for r, lab in zip(rows, labels):
        first.setdefault(int(lab), f"{r['anonymous']}_{r['spacegroup']}_{r['formula']}")
    from xtal_cli.templates.pairs import Standardiser

    desc = values[keep]
    scaler = Standardiser.fit(desc)
    volumes = ElementVolumes.fit(
        [r["amounts"] for r in rows], np.array([r["volume"] for r in rows])
    )
    return TemplateLibrary(
        ids=[r["id"] for r in rows],
        formulas=[r["formula"] for r in rows],
        anonymous=np.array([r["anonymous"] for r in rows]),
        spacegroups=np.array([r["spacegroup"] for r in rows]),
        n_sites=np.array([r["n_sites"] for r in rows]),
        prototypes=labels,
        prototype_names=[first[int(lab)] for lab in labels],
        energies=np.array([r["energy"] for r in rows]),
        structures=[r["structure"] for r in rows],
        descriptors=desc,
        descriptor_names=list(_describer().names),
        fingerprints=prints[keep],
        fingerprint_names=fingerprint_names(),
        scaler_mean=scaler.mean,
        scaler_scale=scaler.scale,
        volume_symbols=volumes.symbols,
        volume_values=volumes.volumes,
        failures=failures,
        attrs={
            "n_structures": len(records),
            "n_duplicates": len(ok) - len(rows),
            "n_prototypes": int(labels.max()) + 1,
            "energy_column": settings.energy_column,
            "symprec": settings.symprec,
        },  # fmt: skip
    )


def holdout_mask(formulas: list[str], share: float, seed: int) -> np.ndarray:
    """True for the held-out compositions: a seeded draw by formula (reproducible)."""
    if share <= 0:
        return np.zeros(len(formulas), bool)
    draws = [int(hashlib.sha256(f"{seed}:{f}".encode()).hexdigest()[:8], 16) / 2**32
             for f in formulas]  # fmt: skip
    return np.array(draws) < share


def fit_pairs(lib: TemplateLibrary, settings: TemplateSettings, jobs=1, progress=None):
    """Stage 3: the pair classifier and its held-out pair accuracy."""
    from xtal_cli.templates.pairs import balanced_accuracy, fit_pair_classifier, sample_pairs

    Z = lib.standardiser().transform(lib.descriptors)
    held = holdout_mask(lib.formulas, settings.holdout, settings.seed)
    rng = np.random.default_rng(settings.seed)
    train = np.flatnonzero(~held)
    i, j, same = sample_pairs(lib.anonymous[train], lib.prototypes[train], settings.pairs.n_pairs,
                              rng)  # fmt: skip
    i, j = train[i], train[j]
    if len(np.unique(same)) < 2:  # e.g. two rock salts and nothing else: nothing to contrast
        kind = "no pairs" if len(i) == 0 else "pairs of one kind only"
        return None, {
            "n_train_pairs": int(len(i)),
            "fallback": f"{kind} of compositions of "
            "one stoichiometry type; the pairs ranker uses descriptor distance",
        }
    total = settings.pairs.n_estimators
    forest = fit_pair_classifier(
        Z, i, j, same, settings.pairs, seed=settings.seed, jobs=jobs,
        progress=(lambda n: progress("pairs", n, total)) if progress else None,
    )  # fmt: skip
    metrics = {"n_train_pairs": int(len(i)), "train_positive": float(np.mean(same))}
    test = np.flatnonzero(held)
    ti, tj, tsame = sample_pairs(
        lib.anonymous[test],
        lib.prototypes[test],
        settings.pairs.n_pairs,
        np.random.default_rng(settings.seed + 1),
    )
    if len(ti):
        metrics["heldout_pairs"] = int(len(ti))
        metrics["heldout_pair_accuracy"] = balanced_accuracy(forest, Z, test[ti], test[tj], tsame)
    return forest, metrics


def write_pairs(path: Path, forest, metrics: dict, key: str) -> None:
    from xtal_cli.io.bundles import write_model_file

    arrays, info = forest.to_arrays() if forest is not None else ({}, None)
    write_model_file(path, "pair-classifier", {"forest": info, "metrics": metrics, "key": key},
                     {f"forest/{k}": v for k, v in arrays.items()})  # fmt: skip


def read_pairs(path: Path):
    from xtal_cli.io.bundles import read_model_file
    from xtal_cli.symmetry.forest import CompactForest

    meta, arrays = read_model_file(path, "pair-classifier")
    if meta.get("forest") is None:  # trained without contrasting pairs (see fit_pairs)
        return None, meta
    forest = CompactForest.from_arrays(
        {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("forest/")},
        meta["forest"],
    )
    return forest, meta


def fit_embedding(lib: TemplateLibrary, settings: EmbeddingSettings, seed: int, progress=None):
    """Stage 4: the joint composition/structure space."""
    from xtal_cli.templates.embedding import train_embedding

    Z = lib.standardiser().transform(lib.descriptors)
    model, losses = train_embedding(
        Z, lib.fingerprints, lib.prototypes, settings, seed=seed,
        progress=(lambda n: progress("embedding", n, settings.epochs)) if progress else None,
    )  # fmt: skip
    return model, {"final_loss": losses[-1] if losses else None, "epochs": len(losses)}


def train_templates(
    items: list[StructureItem],
    output: str | Path,
    settings: TemplateSettings | None = None,
    *,
    jobs: int = 1,
    resume: bool = False,
    chunk_size: int = 128,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: Progress | None = None,
    sources: str = "",
) -> dict:
    """All four stages into the folder *output*; returns the manifest written last."""
    import torch

    from xtal_cli.templates.library import MANIFEST

    settings = settings or TemplateSettings()
    if not items:
        raise XtalError("no structures given: the template set is empty")
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise XtalError(f"{output}: exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    (output / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the end
    from xtal_cli.io.chunks import ids_digest

    key = json.dumps(
        {"ids": ids_digest(items), "n": len(items), "settings": settings.key()}, sort_keys=True
    )
    lib_path = output / LIBRARY
    lib = None
    if resume and lib_path.exists():
        old = read_library(lib_path)
        if old.attrs.get("key") == key:
            lib = old
    if lib is None:
        records, values, prints, parts = analyse_items(
            items, output, settings, jobs=jobs, resume=resume, chunk_size=chunk_size,
            backend=backend, scheduler=scheduler, progress=progress,
        )  # fmt: skip
        lib = build_library(records, values, prints, settings, jobs=jobs, progress=progress)
        lib.attrs.update({"key": key, "sources": sources, "seed": settings.seed})
        write_library(lib_path, lib)
        parts.remove()
        for stale in (PAIRS, EMBEDDING):
            (output / stale).unlink(missing_ok=True)
    pairs_path = output / PAIRS
    metrics = None
    if resume and pairs_path.exists():
        try:
            _, meta = read_pairs(pairs_path)
            metrics = meta["metrics"] if meta.get("key") == key else None
        except XtalError:
            metrics = None
    if metrics is None:
        forest, metrics = fit_pairs(lib, settings, jobs=jobs, progress=progress)
        write_pairs(pairs_path, forest, metrics, key)
    embedding = None
    emb_path = output / EMBEDDING
    if settings.embedding is not None:
        from xtal_cli.io.h5 import atomic_path

        model, embedding = fit_embedding(lib, settings.embedding, settings.seed, progress)
        with atomic_path(emb_path) as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    else:
        emb_path.unlink(missing_ok=True)
    manifest = {
        "settings": settings.key(),
        "sources": sources,
        "counts": {
            "structures": int(lib.attrs.get("n_structures", len(lib))),
            "templates": len(lib),
            "prototypes": int(lib.prototypes.max()) + 1,
            "failures": len(lib.failures),
        },  # fmt: skip
        "pairs": metrics,
        "embedding": None
        if settings.embedding is None
        else {
            "format": 1,
            "config": settings.embedding.to_dict(),
            **(embedding or {}),
            "n_composition": len(lib.descriptor_names),
            "n_structure": len(lib.fingerprint_names),
        },  # fmt: skip
    }
    write_manifest(output, manifest)
    return manifest


__all__ = ["TemplateSettings", "analyse_item", "holdout_mask", "read_pairs", "train_templates"]
