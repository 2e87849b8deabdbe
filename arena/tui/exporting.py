"""The export hook of the Results screen.

Exports belong to core (`arena/core/export.py`, from the analysis work): when it exists, its formats
and writer are used. Until then the one format offered is the pair table as CSV, written from
`analysis.pair_rows` exactly as the Results screen shows it (no numbers are computed here).
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path

FALLBACK = ("csv",)


def _core_export():
    try:
        return importlib.import_module("arena.core.export")
    except ImportError:
        return None


def formats() -> list[str]:
    mod = _core_export()
    if mod is not None and hasattr(mod, "FORMATS"):
        return list(mod.FORMATS)
    return list(FALLBACK)


def default_path(tid: int, fmt: str) -> Path:
    ext = {"markdown": "md", "latex": "tex"}.get(fmt, fmt)
    return Path(f"arena-tournament-{tid}.{ext}")


def export(store, tid: int, fmt: str, path: Path) -> Path:
    """Write tournament `tid` in format `fmt` to `path`; returns the path written."""
    mod = _core_export()
    if mod is not None and hasattr(mod, "export"):
        out = mod.export(store, tid, fmt, Path(path))
        return Path(out) if out is not None else Path(path)
    if fmt != "csv":
        raise ValueError(f"format {fmt!r} needs arena.core.export; available: {', '.join(FALLBACK)}")
    from ..core.analysis import pair_rows

    rows = pair_rows(store, tid)
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        fields = list(rows[0].model_dump()) if rows else ["game"]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow(r.model_dump())
    return path
