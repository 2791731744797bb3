"""A fast CIF reader for database-scale simulation: CIF text -> the arrays the engines need.

``Structure.from_str(text, fmt="cif")`` costs about 2.5 ms for a 17-site cell, most of it in
pymatgen's pure-Python tokenizer and in building Site objects that the simulation never uses.
Here gemmi (C++) tokenizes the CIF, and pymatgen's ``CifParser`` rules are reproduced on arrays,
so the cell, sites, species and occupancies are the ones pymatgen would build, in the same order:

* lattice ``Lattice.from_parameters`` (non-VESTA convention), numbers through ``str2float``;
* coordinates within 1e-4 of 1/3 or 2/3 snapped to them (pymatgen's ``frac_tolerance``);
* element from ``_atom_site_type_symbol`` (else the label) by ``CifParser._parse_symbol``'s
  rules, oxidation states from ``_atom_type_oxidation_number``;
* rows on one position (any symmetry image within 1e-4) merged into one disordered site;
* each group of equal compositions expanded by the symmetry operators, wrapped to [0, 1), images
  within 1e-4 dropped; zero-occupancy rows skipped;
* sites sorted as ``Structure.get_sorted_structure`` does (electronegativity, species string).

What the fast path does not handle, it hands back with a reason, and the caller parses that CIF
with pymatgen (the reference): several data blocks, no ``_atom_site_label``, missing or
non-numeric cell or coordinate values, no explicit symmetry operators (a space-group symbol or
number to be looked up), magnetic CIFs, Pauling-file mixed-site symbols, implicit hydrogens,
water/hydroxide pseudo-symbols, dummy species, occupancies summing above 1, cells thinner than
0.01 Å and elements without an electronegativity (their site order is pymatgen's to define).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from functools import cache, cmp_to_key, lru_cache

import numpy as np

SITE_TOLERANCE = 1e-4  # CifParser site_tolerance
FRAC_TOLERANCE = 1e-4  # CifParser frac_tolerance
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(\(\d+\))?$")
_ESD = re.compile(r"\(.+\)*")  # pymatgen str2float
_ROT = re.compile(r"([+-]?)([\d\.]*)/?([\d\.]*)([x-z])")  # pymatgen SymmOp.from_xyz_str
_TRANS = re.compile(r"([+-]?)([\d\.]+)/?([\d\.]*)(?![x-z])")
_SYMOP_TAGS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)
_SPECIAL_SYMBOLS = re.compile("Hw|Ow|Wat|wat|OH|OH2|NO3")  # CifParser._parse_symbol
_MAGNETIC = ("_space_group_magn", "_atom_site_moment", "_parent_space_group")


class Fallback(Exception):
    """The fast reader leaves this CIF to pymatgen; the message says why."""


@dataclass
class CellArrays:
    """A parsed crystal: what simulation, labels and the stored structure JSON need.

    ``site_species[i]`` lists site *i*'s ``(species, occupancy)`` pairs (pymatgen Element or
    Species objects, in pymatgen's order); ``frac`` is (N, 3) in [0, 1).
    """

    matrix: np.ndarray
    frac: np.ndarray
    site_species: list[list[tuple[object, float]]]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def species_strings(self) -> list[str]:
        """pymatgen's ``Site.species_string`` of every site (spglib types are keyed by it)."""
        return [_species_string(tuple(s)) for s in self.site_species]

    def scatterers(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Every (site, species) pair: fractional coords, occupancy, element symbol."""
        frac, occ, symbols = [], [], []
        for fc, species in zip(self.frac, self.site_species):
            for sp, occu in species:
                frac.append(fc)
                occ.append(occu)
                symbols.append(sp.symbol)
        return np.asarray(frac).reshape(-1, 3), np.asarray(occ, dtype=np.float64), symbols

    def element_amounts(self) -> dict:
        """``Structure.composition`` as a species -> amount mapping (summed in site order)."""
        amounts: dict = {}
        for species in self.site_species:
            for sp, occu in species:
                amounts[sp] = amounts.get(sp, 0.0) + occu
        return amounts

    def reduced_formula(self) -> str:
        from pymatgen.core.composition import Composition

        return Composition(self.element_amounts()).reduced_formula

    def as_dict(self) -> dict:
        """pymatgen's ``Structure.as_dict()`` of this cell (``Structure.from_dict`` reads it)."""
        lengths, angles = lattice_parameters(self.matrix)
        cart = self.frac @ self.matrix
        sites = []
        for i, species in enumerate(self.site_species):
            specs = []
            for sp, occu in species:
                d = sp.as_dict()
                d.pop("@module", None)
                d.pop("@class", None)
                d["occu"] = occu
                specs.append(d)
            sites.append(
                {
                    "species": specs,
                    "abc": self.frac[i].tolist(),
                    "properties": {},
                    "label": self.labels[i],
                    "xyz": cart[i].tolist(),
                }
            )
        a, b, c = lengths
        alpha, beta, gamma = angles
        return {
            "@module": "pymatgen.core.structure",
            "@class": "Structure",
            "charge": 0.0,
            "lattice": {
                "matrix": self.matrix.tolist(),
                "pbc": [True, True, True],
                "a": a,
                "b": b,
                "c": c,
                "alpha": alpha,
                "beta": beta,
                "gamma": gamma,
                "volume": _volume(self.matrix),
            },  # fmt: skip
            "properties": {},
            "sites": sites,
        }


# ----------------------------------------------------------------------------- lattice


def lattice_from_parameters(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """pymatgen's ``Lattice.from_parameters`` (vesta=False), operation for operation."""
    angles_r = np.radians([alpha, beta, gamma])
    cos_alpha, cos_beta, cos_gamma = np.cos(angles_r)
    sin_alpha, sin_beta, sin_gamma = np.sin(angles_r)
    val = (cos_alpha * cos_beta - cos_gamma) / (sin_alpha * sin_beta)
    val = np.clip(val, -1, 1)
    gamma_star = np.arccos(val)
    vector_a = [a * sin_beta, 0.0, a * cos_beta]
    vector_b = [
        -b * sin_alpha * np.cos(gamma_star),
        b * sin_alpha * np.sin(gamma_star),
        b * cos_alpha,
    ]
    vector_c = [0.0, 0.0, float(c)]
    return np.array([vector_a, vector_b, vector_c], dtype=np.float64).reshape((3, 3))


def lattice_parameters(matrix) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(a, b, c), (α, β, γ) exactly as pymatgen's ``Lattice.lengths`` and ``Lattice.angles``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    lengths = tuple(np.sqrt(np.sum(matrix**2, axis=1)).tolist())
    angles = np.zeros(3)
    for dim in range(3):
        jj, kk = (dim + 1) % 3, (dim + 2) % 3
        angles[dim] = np.clip(np.dot(matrix[jj], matrix[kk]) / (lengths[jj] * lengths[kk]), -1, 1)
    return lengths, tuple(np.rad2deg(np.arccos(angles)).tolist())


def _volume(m) -> float:
    """``Lattice.volume``: |(a × b) · c|."""
    return float(abs(np.dot(np.cross(m[0], m[1]), m[2])))


# ----------------------------------------------------------------------------- values


def _number(text: str, what: str) -> float:
    """pymatgen's ``str2float`` for a plain number (with an optional esd); else Fallback."""
    if not _NUMBER.match(text):
        raise Fallback(f"{what} is not a number ({text!r})")
    return float(_ESD.sub("", text))


def parse_symop(xyz: str) -> np.ndarray:
    """4×4 affine matrix of an ``x, y, z`` operator, parsed as ``SymmOp.from_xyz_str`` does."""
    rot = np.zeros((3, 3))
    trans = np.zeros(3)
    tokens = xyz.strip().replace(" ", "").lower().split(",")
    if len(tokens) != 3:
        raise Fallback(f"symmetry operator {xyz!r} does not have three parts")
    for idx, tok in enumerate(tokens):
        for m in _ROT.finditer(tok):
            factor = -1.0 if m[1] == "-" else 1.0
            if m[2] != "":
                factor *= float(m[2]) / float(m[3]) if m[3] != "" else float(m[2])
            rot[idx, ord(m[4]) - 120] = factor
        for m in _TRANS.finditer(tok):
            factor = -1 if m[1] == "-" else 1
            num = float(m[2]) / float(m[3]) if m[3] != "" else float(m[2])
            trans[idx] = num * factor
    affine = np.eye(4)
    affine[:3, :3] = rot
    affine[:3, 3] = trans
    return affine


# ----------------------------------------------------------------------------- species


@cache
def _valid_symbol(sym: str) -> bool:
    from pymatgen.core.periodic_table import Element

    return Element.is_valid_symbol(sym)


@lru_cache(maxsize=4096)
def parse_symbol(sym: str) -> str:
    """Element of a type symbol or label by ``CifParser._parse_symbol``'s rules."""
    if _SPECIAL_SYMBOLS.match(sym):
        raise Fallback(f"pseudo-symbol {sym!r}")
    if _valid_symbol(sym[:2].title()):
        return sym[:2].title()
    if sym and _valid_symbol(sym[0].upper()):
        return sym[0].upper()
    raise Fallback(f"no element in {sym!r}")


@lru_cache(maxsize=4096)
def _species(symbol: str, oxi: float | None):
    from pymatgen.core.periodic_table import Element, Species

    if oxi is None:
        return Element(symbol)
    return Species(symbol, oxi)


@lru_cache(maxsize=4096)
def _species_string(species: tuple) -> str:
    """``Site.species_string`` of a site holding *species* ((sp, occu), ...)."""
    if len(species) == 1 and species[0][1] == 1:
        return str(species[0][0])
    occ = dict(species)
    return ", ".join(f"{sp}:{occ[sp]:.3}" for sp in sorted(occ))


@lru_cache(maxsize=4096)
def _average_electroneg(species: tuple) -> float:
    """``Composition.average_electroneg`` of a site's species."""
    total = sum(abs(o) for _, o in species)
    with warnings.catch_warnings():  # pymatgen warns before giving NaN for He, Ne, Ar
        warnings.simplefilter("ignore")
        x = sum(sp.X * abs(o) for sp, o in species) / total
    if math.isnan(x):
        raise Fallback("an element without electronegativity (pymatgen orders such sites)")
    return x


def _site_order(keys: list[tuple]) -> list[int]:
    """Indices in ``get_sorted_structure`` order (``PeriodicSite.__lt__``, a stable sort)."""

    def cmp(i, j):
        xi, xj = _average_electroneg(keys[i]), _average_electroneg(keys[j])
        if xi < xj:
            return -1
        if xi > xj:
            return 1
        si, sj = _species_string(keys[i]), _species_string(keys[j])
        return -1 if si < sj else (1 if si > sj else 0)

    return sorted(range(len(keys)), key=cmp_to_key(cmp))


# ----------------------------------------------------------------------------- reader


def _column(block, tag: str) -> list[str] | None:
    values = block.find_values(tag)
    if len(values) == 0:
        return None
    from gemmi import cif

    return [cif.as_string(v) for v in values]


def _oxidation_states(block) -> dict[str, float] | None:
    symbols = _column(block, "_atom_type_symbol")
    numbers = _column(block, "_atom_type_oxidation_number")
    if symbols is None or numbers is None or len(symbols) != len(numbers):
        return None
    try:
        oxi = {s: _number(n, "_atom_type_oxidation_number") for s, n in zip(symbols, numbers)}
        for s, n in zip(symbols, numbers):
            oxi[re.sub(r"\d?[\+,\-]?$", "", s)] = _number(n, "_atom_type_oxidation_number")
    except Fallback:
        return None
    return oxi


def read_cif_arrays(text: str) -> CellArrays:
    """Parse one CIF into :class:`CellArrays` as pymatgen would; raises :class:`Fallback` (with
    the reason) for what the fast path leaves to pymatgen, including CIFs gemmi cannot read."""
    from gemmi import cif

    try:
        doc = cif.read_string(text)
    except Exception as exc:  # a syntax error: pymatgen gives the reference failure
        raise Fallback(f"gemmi cannot read it ({str(exc).splitlines()[0][:80]})") from None
    if len(doc) != 1:
        raise Fallback(f"{len(doc)} data blocks")
    block = doc[0]
    for item in block:
        tags = [item.pair[0]] if item.pair else (item.loop.tags if item.loop else [])
        if any(t.lower().startswith(_MAGNETIC) for t in tags):
            raise Fallback("magnetic CIF")
    if block.find_values("_atom_site_attached_hydrogens"):
        raise Fallback("implicit hydrogens")

    cell = []
    for name in ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"):
        value = block.find_value(f"_cell_{name}")
        if value is None:
            raise Fallback(f"no _cell_{name}")
        cell.append(_number(cif.as_string(value), f"_cell_{name}"))
    matrix = lattice_from_parameters(*cell)
    recip = np.linalg.inv(matrix).T
    if np.any(1.0 / np.sqrt(np.sum(recip**2, axis=1)) < 0.01):
        raise Fallback("cell thinner than 0.01 Å")

    ops = None
    for tag in _SYMOP_TAGS:
        xyz = _column(block, tag)
        if xyz:
            ops = np.array([parse_symop(s) for s in xyz])
            break
    if ops is None:
        raise Fallback("no explicit symmetry operators")

    labels = _column(block, "_atom_site_label")
    if labels is None:
        raise Fallback("no _atom_site_label")
    n = len(labels)
    types = _column(block, "_atom_site_type_symbol")
    occ_col = _column(block, "_atom_site_occupancy")
    xyz_cols = [_column(block, f"_atom_site_fract_{c}") for c in "xyz"]
    if any(col is None or len(col) != n for col in xyz_cols):
        raise Fallback("fractional coordinates missing")
    if types is not None and len(types) != n or occ_col is not None and len(occ_col) != n:
        raise Fallback("atom-site columns of unequal length")
    oxi_states = _oxidation_states(block) if block.find_values("_atom_type_symbol") else None

    # per-row species and occupancy; zero-occupancy rows are skipped (check_occu)
    if occ_col is None:
        occupancy = np.ones(n)
    else:
        try:
            occupancy = np.array([float(v) for v in occ_col])
        except ValueError:  # esds, or pymatgen's 'unreadable counts as 1'
            occupancy = np.array([_occupancy(v) for v in occ_col])
    row_species, row_occu, rows = [], [], []
    for i in range(n):
        raw = types[i] if types is not None else labels[i]
        if types is not None and " + " in raw:
            raise Fallback("Pauling-file mixed-site symbol")
        if raw[:3] in ("Wat", "wat", "O-H"):
            raise Fallback("implicit hydrogens")
        symbol = parse_symbol(raw)
        oxi = None
        if oxi_states is not None:
            oxi = oxi_states.get(symbol, 0)
            if types is not None:
                oxi = oxi_states.get(raw, oxi)
        try:
            sp = _species(symbol, oxi)
        except Exception:
            raise Fallback(f"dummy species {raw!r}") from None
        occu = float(occupancy[i])
        if occu > 0:
            rows.append(i)
            row_species.append(sp)
            row_occu.append(max(occu, 1e-8))
    coords = np.stack([_numbers(col, "fractional coordinate") for col in xyz_cols], axis=1)
    coords = _snap(coords[rows])

    # rows -> positions, merging rows on one position (CifParser._get_structure), then groups
    # of equal composition, each expanded by the operators (CifParser._unique_coords). A
    # database CIF (all sites listed, operator x,y,z, no two rows on one spot) needs neither.
    if len(ops) == 1 and np.array_equal(ops[0], np.eye(4)) and not _any_close(coords):
        frac = list(coords - np.floor(coords))
        keys = [((sp, o),) for sp, o in zip(row_species, row_occu)]
        site_labels = [labels[i] for i in rows]
        groups: dict[tuple, list[int]] = {}
        for k, key in enumerate(keys):
            groups.setdefault(_composition_key(key), []).append(k)
        order = [k for members in groups.values() for k in members]
        frac, keys, site_labels = (
            [frac[k] for k in order],
            [keys[k] for k in order],
            [site_labels[k] for k in order],
        )
    else:
        positions, species_at, label_at = _merge_rows(
            coords, ops, row_species, row_occu, [labels[i] for i in rows]
        )
        groups = {}
        for k, species in enumerate(species_at):
            groups.setdefault(_composition_key(species), []).append(k)
        frac, keys, site_labels = [], [], []
        for members in groups.values():
            for k, c in _unique_images(positions[members], ops, members):
                frac.append(c)
                keys.append(tuple(species_at[k]))
                site_labels.append(label_at[k])
    if not frac:
        raise Fallback("no atoms")
    for species in keys:
        if sum(o for _, o in species) > 1.0:
            raise Fallback("occupancies sum above 1")
    order = _site_order(keys)
    return CellArrays(
        matrix=matrix,
        frac=np.array([frac[i] for i in order]).reshape(-1, 3),
        site_species=[list(keys[i]) for i in order],
        labels=[site_labels[i] for i in order],
    )


def _numbers(column: list[str], what: str) -> np.ndarray:
    """A column of numbers through ``str2float``; Fallback for anything else ('?', 'nan')."""
    try:
        values = np.array([float(v) for v in column])
    except ValueError:
        values = np.array([_number(v, what) for v in column])
    if not np.all(np.isfinite(values)):
        raise Fallback(f"{what} is not a finite number")
    return values


def _occupancy(text: str) -> float:
    try:
        return _number(text, "_atom_site_occupancy")
    except Fallback:
        return 1.0


def _snap(coords: np.ndarray) -> np.ndarray:
    """CifParser._sanitize_data: coordinates near 1/3 or 2/3 become exactly those
    (``math.isclose(v / ideal, 1, abs_tol=1e-4, rel_tol=0)``, element by element)."""
    out = coords.copy()
    for ideal in (1 / 3, 2 / 3):
        out[np.abs(coords / ideal - 1) <= FRAC_TOLERANCE] = float(str(ideal))
    return out


def _pbc_close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) booleans: a_i and b_j within the site tolerance (find_in_coord_list_pbc)."""
    d = b[None, :, :] - a[:, None, :]
    d -= np.round(d)
    return np.all(np.abs(d) < SITE_TOLERANCE, axis=2)


def _any_close(coords: np.ndarray) -> bool:
    """Whether two of *coords* lie within the site tolerance of each other (periodically)."""
    return bool(np.tril(_pbc_close(coords, coords), -1).any())


def _apply(op: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """``SymmOp.operate``: the affine matrix times (x, y, z, 1)."""
    return np.dot(op, np.append(coord, 1.0))[:3]


def _merge_rows(coords, ops, row_species, row_occu, row_labels):
    """Rows on one position (any image of a later row within 1e-4 of an earlier position)
    become one disordered site, as CifParser's ``get_matching_coord`` decides."""
    n = len(coords)
    # images of every row under every operator, against every row: no pair close -> no merge
    images = np.einsum("oij,nj->oni", ops[:, :3, :3], coords) + ops[None, :, :3, 3].transpose(
        1, 0, 2
    )
    close = np.zeros((n, n), dtype=bool)
    for o in range(len(ops)):
        close |= _pbc_close(images[o], coords)  # close[i, j]: an image of row i near row j
    np.fill_diagonal(close, False)
    species_at = [[(sp, o)] for sp, o in zip(row_species, row_occu)]
    if not np.any(np.tril(close)):
        return coords, species_at, list(row_labels)
    positions: list[np.ndarray] = []
    merged: list[list] = []
    labels: list[str] = []
    for i in range(n):
        match = None
        if positions:
            found = np.array(positions)
            for op in ops:
                hit = np.where(_pbc_close(_apply(op, coords[i])[None], found)[0])[0]
                if len(hit):
                    match = int(hit[0])
                    break
        if match is None:
            positions.append(coords[i])
            merged.append([(row_species[i], row_occu[i])])
            labels.append(row_labels[i])
        else:
            _add_species(merged[match], row_species[i], row_occu[i])
            labels[match] = row_labels[i]
    return np.array(positions).reshape(-1, 3), merged, labels


def _unique_images(positions: np.ndarray, ops: np.ndarray, members: list[int]):
    """(member, coordinate) of every distinct image of *positions*, in CifParser's order:
    position by position, operator by operator, wrapped to [0, 1), the first of images within
    1e-4 kept."""
    if len(ops) == 1 and np.array_equal(ops[0], np.eye(4)):
        cand = positions - np.floor(positions)  # x, y, z: the image is the position itself
    else:  # (position, operator) order; equal to SymmOp.operate within rounding
        cand = np.einsum("oij,nj->noi", ops[:, :3, :3], positions) + ops[None, :, :3, 3]
        cand = (cand - np.floor(cand)).reshape(-1, 3)
    owner = np.repeat(members, len(ops)).tolist()
    m = len(cand)
    if m <= 512:
        close = np.tril(_pbc_close(cand, cand), -1)
        if not close.any():
            return list(zip(owner, cand))
    keep: list[int] = []
    for i in range(m):
        if not keep or not _pbc_close(cand[i][None], cand[keep])[0].any():
            keep.append(i)
    return [(owner[i], cand[i]) for i in keep]


def _add_species(species: list, sp, occu: float) -> None:
    for j, (s, o) in enumerate(species):
        if s == sp:
            species[j] = (s, o + occu)
            return
    species.append((sp, occu))


def _composition_key(species) -> tuple:
    return tuple(sorted((str(sp), o) for sp, o in species))


__all__ = ["CellArrays", "Fallback", "lattice_parameters", "read_cif_arrays"]
