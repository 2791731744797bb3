"""Import hygiene of xtal_cli, read from the source (ast), not by importing it.

Each module may import another xtal_cli module at module level or inside a function; both count
as an edge. The rules (docs: house rules of issue #19):

* no cycle between subpackages (xtal_cli.xrd, .symmetry, .refine, .embed, .io, .commands, and
  each top-level module such as .api, .errors, .parallel), and no cycle between the modules of one
  subpackage;
* no private name taken from another module: ``from xtal_cli.x import _name`` or
  ``x._name`` where ``x`` is an imported xtal_cli module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xtal_cli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
    }


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """Absolute name of the module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.Module):
    """(imported module, imported name or None, line) for every xtal_cli import in *tree*."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("xtal_cli"):
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if not source.startswith("xtal_cli"):
                continue
            for alias in node.names:
                # ``from xtal_cli.xrd import sticks`` imports the module xtal_cli.xrd.sticks
                sub = f"{source}.{alias.name}"
                if sub in MODULES:
                    yield sub, None, node.lineno
                else:
                    yield source, alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, tree in MODULES.items():
        for target, _, _ in _imports(module, tree):
            if target in MODULES and target != module:
                edges[module].add(target)
    return edges


def _group(module: str) -> str:
    """The subpackage a module belongs to; a top-level module is a group of its own (the API
    facade ``xtal_cli.api`` sits above the subpackages, ``errors`` and ``parallel`` below)."""
    parts = module.split(".")
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _witnesses(edges: dict[str, set[str]], groups: list[str]) -> list[str]:
    """Module-level edges that connect the subpackages of one cycle, for the failure message."""
    members = set(groups)
    return sorted(
        f"{a} -> {b}"
        for a, targets in edges.items()
        for b in targets
        if _group(a) in members and _group(b) in members and _group(a) != _group(b)
    )


def test_graph_sees_the_package():
    edges = _graph()
    assert "xtal_cli.xrd.simulate" in edges and "xtal_cli.commands._common" in edges
    assert "xtal_cli.xrd.profile" in edges["xtal_cli.xrd.simulate"]


def test_no_cycle_between_subpackages():
    edges = _graph()
    packages: dict[str, set[str]] = {}
    for a, targets in edges.items():
        for b in targets:
            if _group(a) != _group(b):
                packages.setdefault(_group(a), set()).add(_group(b))
    cycles = _cycles(packages)
    assert not cycles, "\n".join(
        f"{' <-> '.join(c)}:\n  " + "\n  ".join(_witnesses(edges, c)) for c in cycles
    )


@pytest.mark.parametrize("group", sorted({_group(m) for m in MODULES}))
def test_no_cycle_within_a_subpackage(group):
    edges = _graph()
    inner = {
        a: {b for b in targets if _group(b) == group}
        for a, targets in edges.items()
        if _group(a) == group
    }
    assert not _cycles(inner)


def _private_uses() -> list[str]:
    found = []
    for module, tree in MODULES.items():
        # names bound to xtal_cli modules: ``import xtal_cli.x as m``, ``from xtal_cli import m``
        bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("xtal_cli") and alias.asname:
                        bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in MODULES:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        for target, name, line in _imports(module, tree):
            if name and name.startswith("_") and not name.startswith("__") and target != module:
                found.append(f"{module}:{line} from {target} import {name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and bound[node.value.id] != module
            ):
                found.append(f"{module}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_no_private_names_across_modules():
    found = _private_uses()
    assert not found, "private names used from another module:\n  " + "\n  ".join(found)
