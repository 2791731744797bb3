"""The template folder ``xtal train-templates`` writes (layout templates/1, docs/formats.md).

```
templates/
  library.h5       templates/1: one row per composition (its lowest-energy known structure):
                   id, formula, anonymous (stoichiometry type), spacegroup, n_sites, prototype,
                   prototype_name, energy; structure (JSON of the standard primitive cell);
                   descriptors (N, D) raw Magpie-family values and descriptor/name;
                   fingerprint (N, S) and fingerprint/name; scaler/{mean,scale};
                   volumes/{symbol,volume}; failures; settings as attributes.
  pairs.h5         pair-classifier/1 model file: the CSPML pair classifier (a CompactForest).
  embedding.pt     the joint-space encoders (a torch state dict, loaded with weights_only).
  templates.json   written last: layout, settings, metrics, and the SHA-256 of the files above,
                   so a folder is only used when complete and unaltered.
```
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.io.bundles import file_sha256 as sha256
from xtal_cli.io.h5 import (
    atomic_path,
    open_checked,
    read_attrs,
    read_column,
    read_failures,
    short_reason,
    write_attrs,
    write_column,
    write_dense,
    write_failures,
)

LAYOUT = "templates/1"
LIBRARY, PAIRS, EMBEDDING, MANIFEST = "library.h5", "pairs.h5", "embedding.pt", "templates.json"


@dataclass
class TemplateLibrary:
    """Known structures, one per composition, with what the rankers compare."""

    ids: list[str]
    formulas: list[str]
    anonymous: np.ndarray  # stoichiometry type per row (str)
    spacegroups: np.ndarray
    n_sites: np.ndarray
    prototypes: np.ndarray  # int prototype label per row
    prototype_names: list[str]  # per row: "<type>_<space group>_<first formula>"
    energies: np.ndarray  # energy column (e_above_hull), NaN where not given
    structures: list[str]  # JSON of each template cell
    descriptors: np.ndarray  # (N, D)
    descriptor_names: list[str]
    fingerprints: np.ndarray  # (N, S)
    fingerprint_names: list[str]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    volume_symbols: list[str]
    volume_values: np.ndarray
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def structure(self, i: int):
        from xtal_cli.io.structures import structure_from_json

        return structure_from_json(self.structures[i])

    def standardiser(self):
        from xtal_cli.templates.pairs import Standardiser

        return Standardiser(self.scaler_mean, self.scaler_scale)

    def element_volumes(self):
        from xtal_cli.templates.substitute import ElementVolumes

        return ElementVolumes(self.volume_symbols, self.volume_values)


def write_library(path: str | os.PathLike, lib: TemplateLibrary) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        write_attrs(h5, "templates", lib.attrs)
        h5.attrs["n_items"] = len(lib)
        for name, values in (
            ("id", np.array(lib.ids, dtype=object)),
            ("formula", np.array(lib.formulas, dtype=object)),
            ("anonymous", np.asarray(lib.anonymous, dtype=object)),
            ("spacegroup", np.asarray(lib.spacegroups, np.int16)),
            ("n_sites", np.asarray(lib.n_sites, np.int32)),
            ("prototype", np.asarray(lib.prototypes, np.int64)),
            ("prototype_name", np.array(lib.prototype_names, dtype=object)),
            ("energy", np.asarray(lib.energies, np.float64)),
            ("structure", np.array(lib.structures, dtype=object)),
        ):
            write_column(h5, name, values)
        write_dense(h5, "descriptors", lib.descriptors)
        write_column(h5.create_group("descriptor"), "name", np.array(lib.descriptor_names, object))
        write_dense(h5, "fingerprints", lib.fingerprints)
        write_column(h5.create_group("fingerprint"), "name",
                     np.array(lib.fingerprint_names, object))  # fmt: skip
        grp = h5.create_group("scaler")
        write_column(grp, "mean", np.asarray(lib.scaler_mean, np.float64))
        write_column(grp, "scale", np.asarray(lib.scaler_scale, np.float64))
        grp = h5.create_group("volumes")
        write_column(grp, "symbol", np.array(lib.volume_symbols, dtype=object))
        write_column(grp, "volume", np.asarray(lib.volume_values, np.float64))
        write_failures(h5, lib.failures)


REQUIRED = ("id", "formula", "anonymous", "spacegroup", "prototype", "structure", "descriptors",
            "descriptor/name", "fingerprints", "scaler/mean", "volumes/symbol")  # fmt: skip


def read_library(path: str | os.PathLike) -> TemplateLibrary:
    with open_checked(path, "templates", REQUIRED) as h5:
        try:
            col = {k: read_column(h5[k]) for k in ("id", "formula", "anonymous", "spacegroup",
                   "n_sites", "prototype", "prototype_name", "energy", "structure")}  # fmt: skip
            lib = TemplateLibrary(
                ids=col["id"].tolist(),
                formulas=col["formula"].tolist(),
                anonymous=col["anonymous"],
                spacegroups=col["spacegroup"],
                n_sites=col["n_sites"],
                prototypes=col["prototype"],
                prototype_names=col["prototype_name"].tolist(),
                energies=col["energy"],
                structures=col["structure"].tolist(),
                descriptors=h5["descriptors"][()].astype(np.float64),
                descriptor_names=read_column(h5["descriptor/name"]).tolist(),
                fingerprints=h5["fingerprints"][()].astype(np.float32),
                fingerprint_names=read_column(h5["fingerprint/name"]).tolist(),
                scaler_mean=read_column(h5["scaler/mean"]),
                scaler_scale=read_column(h5["scaler/scale"]),
                volume_symbols=read_column(h5["volumes/symbol"]).tolist(),
                volume_values=read_column(h5["volumes/volume"]),
                failures=read_failures(h5),
                attrs=read_attrs(h5),
            )
        except (OSError, KeyError) as exc:
            raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    n = len(lib.ids)
    if lib.descriptors.shape != (n, len(lib.descriptor_names)) or len(lib.fingerprints) != n:
        raise XtalError(f"{path}: tables of different lengths; train the templates again")
    return lib


def write_manifest(folder: Path, payload: dict) -> None:
    from xtal_cli import __version__
    from xtal_cli.io.jsonable import write_json

    files = {name: sha256(folder / name) for name in (LIBRARY, PAIRS, EMBEDDING)
             if (folder / name).exists()}  # fmt: skip
    write_json(folder / MANIFEST, {"layout": LAYOUT, "xtal_version": __version__,
                                   **payload, "files": files})  # fmt: skip


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a complete, unaltered template folder; one clear sentence otherwise."""
    folder = Path(folder)
    if not folder.exists():
        raise XtalError(f"{folder}: no such folder; make it with xtal train-templates")
    if not folder.is_dir():
        raise XtalError(f"{folder}: not a folder; give the folder xtal train-templates wrote")
    path = folder / MANIFEST
    if not path.exists():
        raise XtalError(f"{folder}: no {MANIFEST} (not a template folder, or training did not "
                        "finish; rerun xtal train-templates with --resume)")  # fmt: skip
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise XtalError(f"{path}: not readable JSON ({short_reason(exc)})") from None
    if not isinstance(meta, dict) or meta.get("layout") != LAYOUT:
        found = meta.get("layout") if isinstance(meta, dict) else None
        raise XtalError(f"{path}: layout {found} is not the {LAYOUT} this xtal reads; "
                        "train the templates again")  # fmt: skip
    for name, digest in (meta.get("files") or {}).items():
        file = folder / name
        if not file.exists():
            raise XtalError(f"{file}: missing from the template folder; train it again")
        if sha256(file) != digest:
            raise XtalError(f"{file}: does not match the checksum in {MANIFEST} (corrupted or "
                            "replaced); train the templates again")  # fmt: skip
    if LIBRARY not in (meta.get("files") or {}):
        raise XtalError(f"{path}: lists no {LIBRARY}; train the templates again")
    return meta


__all__ = ["TemplateLibrary", "read_library", "read_manifest", "write_library", "write_manifest"]
