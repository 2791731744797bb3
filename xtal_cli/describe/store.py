"""descriptors/1: the HDF5 file ``xtal describe`` writes and ``xtal cluster`` reads.

Layout (docs/formats.md): root attributes (``xtal_layout``, version, preset, symprec, sources);
per-material columns ``id``, ``formula`` (reduced), ``elements`` (space-separated symbols);
``meta/<column>`` carried from the input (numeric columns as float64, NaN where empty);
``values`` (N, D) float32; ``descriptor/name`` and ``descriptor/family`` (D); ``failures``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from xtal_cli.errors import XtalError
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


@dataclass
class DescriptorSet:
    """Descriptors of N materials: ``values[i, j]`` is descriptor ``names[j]`` of ``ids[i]``."""

    ids: list[str]
    formulas: list[str]
    elements: list[str]
    values: np.ndarray  # (N, D)
    names: list[str]
    families: list[str]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> DescriptorSet:
        """The materials where *mask* is true (failures and settings kept)."""
        idx = np.flatnonzero(mask)
        return DescriptorSet(
            ids=[self.ids[i] for i in idx],
            formulas=[self.formulas[i] for i in idx],
            elements=[self.elements[i] for i in idx],
            values=self.values[idx],
            names=list(self.names),
            families=list(self.families),
            meta={k: v[idx] for k, v in self.meta.items()},
            failures=list(self.failures),
            attrs=dict(self.attrs),
        )


def write_descriptors(path: str | os.PathLike, ds: DescriptorSet) -> None:
    """Write *ds* atomically as descriptors/1."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        write_attrs(h5, "descriptors", ds.attrs)
        h5.attrs["n_items"] = len(ds)
        write_column(h5, "id", np.array(ds.ids, dtype=object))
        write_column(h5, "formula", np.array(ds.formulas, dtype=object))
        write_column(h5, "elements", np.array(ds.elements, dtype=object))
        write_dense(h5, "values", np.asarray(ds.values).reshape(len(ds), len(ds.names)))
        grp = h5.create_group("descriptor")
        write_column(grp, "name", np.array(ds.names, dtype=object))
        write_column(grp, "family", np.array(ds.families, dtype=object))
        meta = h5.create_group("meta")
        for name, values in ds.meta.items():
            write_column(meta, name, values)
        write_failures(h5, ds.failures)


def read_descriptors(path: str | os.PathLike) -> DescriptorSet:
    """Read a descriptors/1 file (checked: layout, completeness, shapes)."""
    required = ("id", "formula", "values", "descriptor/name", "descriptor/family")
    with open_checked(path, "descriptors", required) as h5:
        try:
            ds = DescriptorSet(
                ids=read_column(h5["id"]).tolist(),
                formulas=read_column(h5["formula"]).tolist(),
                elements=read_column(h5["elements"]).tolist() if "elements" in h5 else [],
                values=h5["values"][()].astype(np.float64),
                names=read_column(h5["descriptor/name"]).tolist(),
                families=read_column(h5["descriptor/family"]).tolist(),
                meta={k: read_column(v) for k, v in h5["meta"].items()} if "meta" in h5 else {},
                failures=read_failures(h5),
                attrs=read_attrs(h5),
            )
        except (OSError, KeyError) as exc:
            raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    if ds.values.shape != (len(ds.ids), len(ds.names)):
        raise XtalError(
            f"{path}: values are {ds.values.shape}, but there are {len(ds.ids)} materials and "
            f"{len(ds.names)} descriptor names; write it again with xtal describe"
        )
    if not ds.elements:
        ds.elements = [" ".join(_elements(f)) for f in ds.formulas]
    return ds


def _elements(formula: str) -> list[str]:
    from pymatgen.core import Composition

    try:
        return [el.symbol for el in Composition(formula).elements]
    except Exception:
        return []


__all__ = ["DescriptorSet", "read_descriptors", "write_descriptors"]
