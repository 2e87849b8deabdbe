from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed timestamps for stored tournaments


class FakeClock:
    """A clock that only moves when told (durations, ETAs and log times stay fixed in snapshots)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


@pytest.fixture
def make_app(tmp_path):
    from arena.tui.app import ArenaApp

    def make(db: Path | None = None, **kw):
        kw.setdefault("programs_path", ROOT / "programs")
        kw.setdefault("games_path", ROOT / "games")
        return ArenaApp(db=db or tmp_path / "arena.db", **kw)

    return make


FAIR_LLM = """\
id: fair-llm
kind: llm
model: custom/fake-8b
temperature: 0.7
description: Mirrors what the simulated opponent did.
system_prompt: |
  You are fair: mirror what the simulated opponent did.
"""


def _call(response, action, *, attempt=1, status="ok", latency=812.0, cached=False, purpose="answer", user="") -> object:
    from arena.engine.records import CallRecord

    return CallRecord(
        provider="custom", model="fake-8b",
        messages=[{"role": "system", "content": "You are fair: mirror what the simulated opponent did."},
                  {"role": "user", "content": user or "You are playing the Prisoner's Dilemma as the row player.\n"
                   "In that simulation your opponent chose: defect.\nEnd with a line ACTION: <action>."}],
        response=response, parsed_action=action, attempt=attempt, status=status, latency_ms=latency,
        prompt_tokens=312, completion_tokens=41, cached=cached, params={"temperature": 0.7, "purpose": purpose},
        started_at=T0)


def llm_trial(spec, *, refusal_first: bool = False):
    """A stored-looking LLM trial: fair-llm (row) simulates defectbot, which defects; fair-llm defects."""
    from arena.engine.records import DIRECT, SIMULATED, Node, TrialResult

    row_top = Node(0, None, "row", 0, spec.row, 0.5, SIMULATED, "defect")
    calls = []
    if refusal_first:
        calls.append(_call("I would rather think about cooperation in general.", None, status="unparsed",
                           latency=640.0))
        calls.append(_call("ACTION: defect", "defect", attempt=1, purpose="correction", latency=120.0))
    else:
        calls.append(_call("My simulated opponent defected, so I mirror it.\nACTION: defect", "defect"))
    row_top.calls = calls
    sim = Node(1, 0, "col", 1, spec.col, 0.3, DIRECT, "defect")
    col_top = Node(2, None, "col", 0, spec.col, 0.7, DIRECT, "defect")
    return TrialResult(spec, [row_top, sim, col_top], "defect", "defect", 1.0, 1.0, False, "ok", None, 3.0)


def build_db(path: Path, programs_dir: Path) -> dict:
    """A database with fixed content: a finished built-in tournament (1), an interrupted LLM
    tournament with stored transcripts (2), and a cancelled built-in one that can be resumed (3)."""
    from arena.library.games import load_games
    from arena.engine.grid import TournamentConfig
    from arena.library.programs import load_programs
    from arena.store.database import Store
    from arena.runner.tournament import TournamentRunner, fingerprint
    from arena.engine.simulator import run_trial_sync
    from arena.engine.bots import BotAgent

    games = load_games(ROOT / "games")
    programs = load_programs([programs_dir])
    with Store(path) as store:
        cfg1 = TournamentConfig(name="bots", programs=["cooperatebot", "defectbot", "fairbot", "randombot"],
                                games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10], trials=10, seed=3)
        r1 = TournamentRunner.create(store, cfg1, programs, games)
        asyncio.run(r1.run())

        cfg2 = TournamentConfig(name="llm", programs=["fair-llm", "defectbot"], games=["prisoners_dilemma"],
                                epsilons=[0.5], max_depths=[3], trials=2, seed=5)
        chosen = [programs["fair-llm"], programs["defectbot"]]
        g = [games["prisoners_dilemma"]]
        t2 = store.create_tournament(cfg2, chosen, g, cfg2.total_trials, "test", fingerprint(cfg2, chosen, g))
        specs = [s for s in cfg2.iter_specs() if s.row == "fair-llm" and s.col == "defectbot"]
        store.write_trials(t2, [llm_trial(specs[0], refusal_first=True), llm_trial(specs[1])])

        cfg3 = TournamentConfig(name="to resume", programs=["cooperatebot", "defectbot"], games=["stag_hunt"],
                                epsilons=[0.1], max_depths=[5], trials=5, seed=1)
        chosen3 = [programs["cooperatebot"], programs["defectbot"]]
        g3 = [games["stag_hunt"]]
        t3 = store.create_tournament(cfg3, chosen3, g3, cfg3.total_trials, "test", fingerprint(cfg3, chosen3, g3))
        agents = {p.id: BotAgent(p) for p in chosen3}
        store.write_trials(t3, [run_trial_sync(s, games["stag_hunt"], agents, programs) for s in cfg3.iter_specs()
                                if s.seq < 8])
        store.set_status(t3, "cancelled")
        # fixed times; tournament 2 is 'running' with no live process: shown as interrupted
        for tid in (r1.tournament_id, t2, t3):
            store.conn.execute("UPDATE tournaments SET created_at=?, started_at=?, finished_at=?, runner_pid=NULL "
                               "WHERE id=?", (T0 + 3600 * tid, T0 + 3600 * tid, T0 + 3600 * tid + 60, tid))
        store.conn.execute("UPDATE trials SET finished_at=?, duration_ms=1.0", (T0,))
    return {"bots": r1.tournament_id, "llm": t2, "resume": t3}


@pytest.fixture
def library_dir(tmp_path):
    """The shipped programs plus an LLM program on the 'custom' provider (the loopback fake server)."""
    d = tmp_path / "programs"
    d.mkdir()
    for f in (ROOT / "programs").glob("*.yaml"):
        if f.name in ("cooperatebot.yaml", "defectbot.yaml", "fairbot.yaml", "randombot.yaml", "cliquebot.yaml"):
            (d / f.name).write_text(f.read_text())
    (d / "fair-llm.yaml").write_text(FAIR_LLM)
    return d


@pytest.fixture
def seeded(tmp_path, library_dir):
    db = tmp_path / "seeded.db"
    ids = build_db(db, library_dir)
    return db, ids


@pytest.fixture
def seeded_app(make_app, seeded, library_dir):
    db, ids = seeded

    def make(**kw):
        kw.setdefault("programs_path", library_dir)
        kw.setdefault("clock", FakeClock())
        return make_app(db, **kw)

    return make, ids
