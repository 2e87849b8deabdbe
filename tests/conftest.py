from __future__ import annotations

from pathlib import Path

import pytest

from arena.library.games import load_games
from arena.library.programs import load_programs
from arena.store.database import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def games():
    return load_games(ROOT / "games")


@pytest.fixture(scope="session")
def programs():
    return load_programs([ROOT / "programs"])


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "arena.db")
    yield s
    s.close()
