"""arena/core never imports Textual (or anything from arena.tui): the UI only displays core output."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "arena" / "core"
FORBIDDEN = ("textual", "arena.tui", "textual_plotext")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: resolve against arena.core.<...>
                pkg = ["arena", *path.relative_to(CORE.parent).with_suffix("").parts[:-1]]
                base = pkg[: len(pkg) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            names.append(mod)
    return names


def test_core_sources_never_import_the_ui():
    offenders = [
        f"{p.relative_to(CORE.parent.parent)} imports {name}"
        for p in sorted(CORE.rglob("*.py"))
        for name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offenders == []


def test_importing_all_of_core_loads_no_textual():
    modules = sorted(f"arena.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'arena.tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
