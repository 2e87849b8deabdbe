"""The import contract of ARCHITECTURE.md: layers import downwards only, no module imports its importer,
and nothing below the UI loads Textual.

Layers, lowest first (a module may import its own layer and those below it):
arena (the package's face) / errors → library → engine → store → llm → runner → iterate → analysis → tui
→ cli.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ARENA = Path(__file__).resolve().parents[1] / "arena"
LAYERS = ["arena", "arena.errors", "arena.library", "arena.engine", "arena.store", "arena.llm", "arena.runner", "arena.iterate",
          "arena.analysis", "arena.tui", "arena.cli", "arena.__main__"]
UI = ("textual", "textual_plotext", "arena.tui")


def _module(path: Path) -> str:
    parts = path.relative_to(ARENA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth of the file (function-level imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            # `from arena.analysis import export`: the submodule is what is imported, not the package's face
            subs = [f"{mod}.{a.name}" for a in node.names
                    if (ARENA.parent / f"{mod}.{a.name}".replace(".", "/")).with_suffix(".py").exists()]
            names += subs if len(subs) == len(node.names) else [mod, *subs]
    return names


def _layer(module: str) -> int:
    best = -1
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            if prefix != "arena" or module == "arena":
                best = i
    return best


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ARENA.rglob("*.py")}
    return {m: {n for n in _imports(p) if n in files and n != m} for m, p in files.items()}


def test_every_module_belongs_to_a_layer():
    assert [m for m in _graph() if _layer(m) < 0] == []


def test_layers_import_downwards_only():
    offenders = sorted(
        f"{m} (layer {LAYERS[_layer(m)]}) imports {n} (layer {LAYERS[_layer(n)]})"
        for m, deps in _graph().items() for n in deps if _layer(n) > _layer(m)
    )
    assert offenders == []


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # A package's __init__ re-exporting its own submodule is the only tie allowed (none exist today).
    assert cycles == []


def test_below_the_ui_no_source_imports_textual():
    offenders = [
        f"{m} imports {n}"
        for p in sorted(ARENA.rglob("*.py"))
        if _layer(m := _module(p)) < LAYERS.index("arena.tui")
        for n in _imports(p)
        if any(n == f or n.startswith(f + ".") for f in UI)
    ]
    assert offenders == []


def test_importing_everything_below_the_ui_loads_no_textual():
    modules = sorted(m for m in _graph() if 0 < _layer(m) < LAYERS.index("arena.tui"))
    assert "arena.analysis.export" in modules and "arena.runner.tournament" in modules
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'arena.tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
