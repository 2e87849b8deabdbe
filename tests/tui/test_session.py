"""LiveSession's progress arithmetic, fed with the events a mixed tournament emits (no thread)."""

from __future__ import annotations

from types import SimpleNamespace

from arena.engine.events import TournamentStarted, TrialsFinished
from arena.engine.records import TrialResult, TrialSpec
from arena.tui.session import LiveSession
from conftest import FakeClock


def _result(seq: int, row: str, col: str) -> TrialResult:
    return TrialResult(TrialSpec(seq, "prisoners_dilemma", row, col, 0.5, 3, None, 0, seq), [],
                       "cooperate", "cooperate", 3.0, 3.0, True)


def test_eta_counts_llm_trials_only_when_the_tournament_has_llm_programs():
    clock = FakeClock(0.0)
    session = LiveSession(store=None, clock=clock)
    session.runner = SimpleNamespace(programs={"fairbot": SimpleNamespace(kind="builtin"),
                                               "fair-llm": SimpleNamespace(kind="llm")}, paused=False)
    session.on_event(TournamentStarted(1, 12, 0, {}))
    # the 4 built-in trials finish at once; then one LLM trial every 2 s
    session.on_event(TrialsFinished(1, [_result(i, "fairbot", "fairbot") for i in range(4)], 4, 12))
    for k in range(1, 5):
        clock.advance(2.0)
        session.on_event(TrialsFinished(1, [_result(3 + k, "fair-llm", "fairbot")], 4 + k, 12))
    p = session.progress()
    assert session.paces_llm
    assert (p.done, p.total, p.rate, p.eta_s) == (8, 12, 0.5, 8.0)  # 4 LLM trials in 8 s; 4 left → 8 s


def test_builtin_only_tournament_paces_every_trial():
    clock = FakeClock(0.0)
    session = LiveSession(store=None, clock=clock)
    session.runner = SimpleNamespace(programs={"fairbot": SimpleNamespace(kind="builtin")}, paused=False)
    session.on_event(TournamentStarted(1, 3000, 0, {}))
    clock.advance(0.5)
    session.on_event(TrialsFinished(1, [_result(i, "fairbot", "fairbot") for i in range(1000)], 1000, 3000))
    p = session.progress()
    assert not session.paces_llm
    assert (p.rate, p.eta_s) == (2000.0, 1.0)


def test_paused_only_once_the_runner_says_it_has_stopped():
    """Space asks; the session says "pausing" until the runner's "paused" (it has stored the batch under
    way and starts nothing more), and goes back to "running" if resumed before it stopped."""
    from arena.engine.events import Notice

    asked = []
    session = LiveSession(store=None, clock=FakeClock(0.0))
    session.runner = SimpleNamespace(programs={"fairbot": SimpleNamespace(kind="builtin")}, paused=False,
                                     pause=lambda: asked.append("pause"), unpause=lambda: asked.append("unpause"))
    session.on_event(TournamentStarted(1, 3000, 0, {}))
    session.toggle_pause()
    assert (asked, session.status) == (["pause"], "pausing")
    session.on_event(TrialsFinished(1, [_result(i, "fairbot", "fairbot") for i in range(1000)], 1000, 3000))
    assert session.status == "pausing"  # the batch under way, stored after the key
    session.on_event(Notice("paused", "info"))
    assert session.status == "paused"
    session.toggle_pause()
    session.on_event(Notice("resumed", "info"))
    assert (asked, session.status) == (["pause", "unpause"], "running")
    session.toggle_pause()
    session.toggle_pause()  # resumed before the runner stopped: it just goes on
    assert (asked[2:], session.status) == (["pause", "unpause"], "running")
