"""train-templates / predict-structure on small template sets built from real prototypes."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.xdist_group("templates")

ROCKSALT = {"NaCl": 5.64, "MgO": 4.21, "LiF": 4.03, "CaO": 4.81}
CESIUM_CHLORIDE = {"CsCl": 4.12, "CsBr": 4.29, "TlCl": 3.84}
ZINCBLENDE = {"ZnS": 5.41, "GaAs": 5.65, "CdTe": 6.48}


def rocksalt(a: str, b: str, lattice: float):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])  # fmt: skip


def _split(formula: str) -> tuple[str, str]:
    from pymatgen.core import Composition

    els = [el.symbol for el in Composition(formula).elements]
    return els[0], els[1]


def _structures():
    from pymatgen.core import Lattice, Structure

    out = {f: rocksalt(*_split(f), a) for f, a in ROCKSALT.items()}
    for f, a in CESIUM_CHLORIDE.items():
        out[f] = Structure(Lattice.cubic(a), list(_split(f)), [[0, 0, 0], [0.5, 0.5, 0.5]])
    for f, a in ZINCBLENDE.items():
        out[f] = Structure.from_spacegroup("F-43m", Lattice.cubic(a), list(_split(f)),
                                           [[0, 0, 0], [0.25, 0.25, 0.25]])  # fmt: skip
    return out


def _write(folder, structures):
    folder.mkdir(parents=True, exist_ok=True)
    for formula, s in structures.items():
        s.to(filename=str(folder / f"{formula}.cif"))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Templates from NaCl and MgO only (one prototype: the pairs ranker falls back)."""
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    root = tmp_path_factory.mktemp("tiny")
    cifs = _write(root / "cifs", {f: s for f, s in _structures().items() if f in ("NaCl", "MgO")})
    out = root / "templates"
    res = CliRunner().invoke(app, ["train-templates", str(cifs), "-o", str(out), "--trees", "10",
                                   "--epochs", "3", "--holdout", "0", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """Templates of three AB prototypes, ten compositions."""
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    root = tmp_path_factory.mktemp("rich")
    cifs = _write(root / "cifs", _structures())
    out = root / "templates"
    res = CliRunner().invoke(app, ["train-templates", str(cifs), "-o", str(out), "--trees", "20",
                                   "--epochs", "20", "--holdout", "0", "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def _matches(structure, formula_a: str, formula_b: str, a: float) -> bool:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher().fit(structure, rocksalt(formula_a, formula_b, a))


def test_kbr_from_nacl_and_mgo(tiny, invoke, tmp_path):
    from pymatgen.core import Structure

    out = tmp_path / "pred"
    res = invoke("predict-structure", tiny, "KBr", "-k", "2", "-o", out, "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["rank"] == 1 and rows[0]["formula"] == "KBr"
    first = Structure.from_file(rows[0]["cif"])  # the written CIF parses
    assert first.composition.reduced_formula == "KBr"
    assert _matches(first, "K", "Br", 6.60)
    # the volume follows the elements: KBr's cell is larger than NaCl's (true a = 6.60 Å)
    a = (first.volume / first.num_sites * 8) ** (1 / 3)
    assert 5.9 < a < 7.3


def test_rich_set_ranks_rocksalt_first(rich):
    from xtal_cli.templates.predict import TemplatePredictor

    predictor = TemplatePredictor(rich)
    meta = json.loads((rich / "templates.json").read_text())
    assert meta["counts"] == {"structures": 10, "templates": 10, "prototypes": 3, "failures": 0}
    for ranker in ("pairs", "embedding", "both"):
        cands = predictor.predict("KBr", k=3, ranker=ranker)
        assert len({c.prototype for c in cands}) == 3  # one candidate per prototype
        assert cands[0].structure.composition.reduced_formula == "KBr"
    best = predictor.predict("KBr", k=1, ranker="pairs")[0]
    assert _matches(best.structure, "K", "Br", 6.60), best.prototype


def test_reverse_query(rich, invoke, tmp_path):
    cif = tmp_path / "KCl.cif"
    rocksalt("K", "Cl", 6.29).to(filename=str(cif))
    res = invoke("predict-structure", rich, "--structure", cif, "--format", "json", "-k", "4")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 4 and all("known_structure" in r for r in rows)
    res = invoke("predict-structure", rich, "RbBr", "GaP", "--structure", cif, "--format", "csv")
    assert res.exit_code == 0 and res.stdout.splitlines()[0].startswith("rank,formula")


@pytest.mark.parametrize("formula", ["Xx2", "Na(Cl", "12", ""])
def test_bad_formula_one_sentence(tiny, invoke, formula):
    res = invoke("predict-structure", tiny, formula)
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "formula" in lines[0] and "Traceback" not in res.output


def test_no_template_of_the_stoichiometry(tiny, invoke):
    res = invoke("predict-structure", tiny, "LiCoO2")
    assert res.exit_code == 2 and "no template of its stoichiometry type ABC2" in res.stderr
    assert "--relax" in res.stderr
    res = invoke("predict-structure", tiny, "Al2O3", "--relax", "--format", "json")
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert rows and rows[0]["exact_stoichiometry"] is False


def test_formulas_from_a_file(tiny, invoke, tmp_path):
    listing = tmp_path / "formulas.txt"
    listing.write_text("# queries\nKBr, RbI\nCsF\n")
    res = invoke("predict-structure", tiny, "--file", listing, "-k", "1", "--format", "jsonl")
    assert res.exit_code == 0
    assert [json.loads(line)["query"] for line in res.stdout.splitlines()] == ["KBr", "RbI", "CsF"]


def test_empty_template_sets(invoke, tmp_path):
    broken = tmp_path / "broken.cif"
    broken.write_text("data_x\n_cell_length_a 3\n")
    res = invoke("train-templates", broken, "-o", tmp_path / "t", "-q")
    assert res.exit_code == 2 and "no structure could be used as a template" in res.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("material_id,cif\n")
    res = invoke("train-templates", empty, "-o", tmp_path / "t2", "-q")
    assert res.exit_code == 2 and "template set is empty" in res.stderr
    res = invoke("predict-structure", tmp_path / "t", "KBr")
    assert res.exit_code == 2 and "templates.json" in res.stderr


def test_altered_library_is_refused(tiny, invoke, tmp_path):
    import shutil

    copy = tmp_path / "templates"
    shutil.copytree(tiny, copy)
    with open(copy / "library.h5", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\0" * 16)
    res = invoke("predict-structure", copy, "KBr")
    assert res.exit_code == 2 and "checksum" in res.stderr


def test_resume_keeps_finished_stages(tmp_path, invoke):
    cifs = _write(tmp_path / "cifs", {f: s for f, s in _structures().items()
                                      if f in ROCKSALT or f in CESIUM_CHLORIDE})  # fmt: skip
    out = tmp_path / "templates"
    args = ("train-templates", cifs, "-o", out, "--trees", "5", "--no-embedding", "-q",
            "--holdout", "0")  # fmt: skip
    assert invoke(*args).exit_code == 0
    stamp = (out / "library.h5").stat().st_mtime_ns
    first = json.loads((out / "templates.json").read_text())
    assert invoke(*args, "--resume").exit_code == 0
    assert (out / "library.h5").stat().st_mtime_ns == stamp  # stage 1-2 kept
    assert json.loads((out / "templates.json").read_text())["files"] == first["files"]
    res = invoke("predict-structure", out, "KBr", "--ranker", "embedding")
    assert res.exit_code == 2 and "without the embedding" in res.stderr
