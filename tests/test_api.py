"""The public API: what ``help(xtal_cli)`` lists, and the docs/api.md session run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_and_is_documented():
    import xtal_cli

    for name in xtal_cli.__all__:
        value = getattr(xtal_cli, name)
        if name != "__version__":
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"
    with pytest.raises(AttributeError):
        xtal_cli.no_such_name  # noqa: B018
    # a submodule import would replace a same-named attribute of the package
    modules = {p.stem for p in (ROOT / "xtal_cli").iterdir() if p.suffix == ".py" or p.is_dir()}
    assert not modules & set(xtal_cli.__all__)


def test_help_lists_the_api_without_importing_heavy_libraries():
    code = (
        "import sys, pydoc, xtal_cli\n"
        "heavy = [m for m in ('torch', 'sklearn', 'numba', 'pymatgen') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(pydoc.render_doc(xtal_cli, renderer=pydoc.plaintext))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for name in ("SymmetryModel", "read_scan", "simulate", "featurize", "refine_bbo", "find_peaks"):
        assert name in out.stdout


def test_every_api_name_appears_in_docs():
    import xtal_cli

    doc = (ROOT / "docs" / "api.md").read_text()
    missing = [n for n in xtal_cli.__all__ if n != "__version__" and f"`{n}" not in doc]
    missing = [n for n in missing if not re.search(rf"\b{n}\b", doc)]
    assert not missing, f"docs/api.md does not mention {missing}"


@pytest.mark.slow
def test_docs_api_session_runs_as_written(tmp_path):
    """The notebook session in docs/api.md, executed block by block in one namespace."""
    doc = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks, "docs/api.md has no python session"
    code = "\n".join(blocks)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Rwp" in proc.stdout
    assert (tmp_path / "symmetry.h5").exists()
    assert (tmp_path / "y2o3-bbo" / "report.json").exists()


def test_simulate_in_memory_keeps_the_order_of_mixed_inputs():
    """Structures, paths and records come back in the order given (ids and per-index
    augmentation draws follow it), with repeated ids made unique."""
    from pymatgen.core import Lattice, Structure

    import xtal_cli as xtal

    si = Structure(Lattice.cubic(5.43), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]])
    cif = ROOT / "xtal_cli" / "data" / "examples" / "Y2O3" / "Y2O3.cif"
    ps = xtal.simulate([si, cif, si, cif])
    assert ps.ids == ["structure0", "Y2O3", "structure2", "Y2O3#2"]
    assert list(ps.labels["formula"]) == ["Si", "Y2O3", "Si", "Y2O3"]
    assert len(ps.sticks_two_theta[0]) > 3 and ps.failures == []
