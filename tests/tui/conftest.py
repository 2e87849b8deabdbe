from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_app(tmp_path):
    from arena.tui.app import ArenaApp

    def make(db: Path | None = None, **kw):
        kw.setdefault("programs_path", ROOT / "programs")
        kw.setdefault("games_path", ROOT / "games")
        return ArenaApp(db=db or tmp_path / "arena.db", **kw)

    return make
