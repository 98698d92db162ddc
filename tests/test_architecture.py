"""The layout is the architecture: no import circles, and the layers import downwards only.

Every ``import`` statement counts, also those inside functions (lazy imports hide circles that
bite as soon as the import order changes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "methods")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                # the deepest project module the statement names
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    graph[mod].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(import_graph()) == []


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "methods":
        return "methods"
    if module == "benchmark.__main__":
        return "cli"
    return parts[1] if len(parts) > 1 else "benchmark"


# What each layer may import (besides itself, the leaves benchmark.errors and
# benchmark.progress, and the package root).
ALLOWED = {
    "data": {"features"},  # ground truth measured by `extract ground-truth` is in the pack store
    # mocks from core.check, numpy-only extract helpers, MLL's concept graph (model labels)
    "features": {"data", "core", "extract", "methods"},
    "core": {"data", "features", "methods"},  # the method registry (lazy) and views
    "methods": {"data", "features", "core", "extract"},  # numpy-only extract helpers
    # the leaderboard's rerun builds a measured protocol (minizoo) on demand and records
    # whether it is a ranking task (lazy imports: rendering never needs torch)
    "report": {"data", "features", "core", "methods", "studies", "minizoo"},
    "studies": {"data", "features", "core", "methods"},
    "api": {"data", "features", "core", "methods", "report"},
    "extract": {"data", "features", "core", "methods", "cli"},  # cli.common options only
    "minizoo": {"data", "features", "core", "extract", "cli"},
    "cli": {"data", "features", "core", "methods", "report", "studies", "api", "extract",
            "minizoo"},
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_downwards_only(layer):
    bad = []
    for mod, deps in import_graph().items():
        if _layer(mod) != layer:
            continue
        for dep in deps:
            dl = _layer(dep)
            if dl in {layer, "benchmark", "errors", "progress"} or dl in ALLOWED[layer]:
                continue
            bad.append(f"{mod} -> {dep}")
    assert not bad


def test_library_never_imports_the_command_line_except_its_leaf_helpers():
    bad = [f"{m} -> {d}" for m, deps in import_graph().items() for d in deps
           if d.startswith("benchmark.cli") and d != "benchmark.cli.common"
           and not m.startswith("benchmark.cli") and m != "benchmark.__main__"]
    assert not bad
