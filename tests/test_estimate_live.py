"""engine/estimate.py (cost before a run) and analysis/tally.py (running counts during a run)."""

from __future__ import annotations

import asyncio
import math

import pytest

from arena.analysis.tables import pair_rows
from arena.engine.estimate import estimate
from arena.engine.grid import TournamentConfig
from arena.analysis.tally import LiveTally
from arena.library.programs import LLMProgram
from arena.runner.tournament import TournamentRunner
from arena.engine.events import TrialsFinished


def _config(**kw):
    base = dict(programs=["fairbot"], games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[100_000], trials=10)
    return TournamentConfig(**{**base, **kw})


def test_estimate_fairbot_self_play_is_one_over_epsilon(programs):
    e = estimate(_config(), programs)
    assert e.trials == 10 and e.llm_trials == 0 and e.llm_calls == 0
    # two decisions per trial, 1/eps nodes each
    assert e.nodes == pytest.approx(10 * 2 / 0.2)


def test_estimate_counts_llm_nodes_only():
    llm = LLMProgram(id="l", kind="llm", model="local/x", system_prompt="hi")
    from arena.library.programs import program_from_json

    fair = program_from_json({"id": "fairbot", "kind": "builtin", "strategy": "fairbot"})
    progs = {"l": llm, "fairbot": fair}
    cfg = _config(programs=["l", "fairbot"], epsilons=[0.5], max_depths=[1], trials=3)
    e = estimate(cfg, progs)
    # cap 1: a simulating program's chain is at most 2 nodes; P(second node) = 1 - eps = 0.5.
    # (l, l): both decisions all-LLM: 2 * 1.5 nodes; (l, f) and (f, l): per trial, the chain of l has
    # 1 l-node + 0.5 f-node and the chain of f has 1 f-node + 0.5 l-node -> 1.5 LLM calls; (f, f): 0.
    assert e.llm_trials == 3 * 3
    assert e.llm_calls == pytest.approx(3 * (3 + 1.5 + 1.5))
    assert e.nodes == pytest.approx(3 * 4 * 3)
    imagine = estimate(cfg.model_copy(update={"simulation": "imagine"}), progs)
    assert imagine.llm_calls == pytest.approx(3 * (2 + 1.5 + 1.5))


def test_live_tally_matches_pair_rows(store, programs, games):
    cfg = TournamentConfig(programs=["fairbot", "defectbot", "randombot"], games=["prisoners_dilemma", "stag_hunt"],
                           epsilons=[0.2, 0.5], max_depths=[10], trials=15)
    tally = LiveTally()

    def sink(event):
        if isinstance(event, TrialsFinished):
            tally.add(event.results)

    runner = TournamentRunner.create(store, cfg, programs, games, sink=sink, batch_size=50)
    asyncio.run(runner.run())
    stored = pair_rows(store, runner.tournament_id)
    seeded = LiveTally()
    seeded.seed(store, runner.tournament_id)
    for live in (tally.rows(), seeded.rows()):
        assert len(live) == len(stored)
        for a, b in zip(sorted(live, key=_key), sorted(stored, key=_key)):
            for field in ("trials", "valid", "cooperation", "wald_low", "wilson_high", "row_payoff", "col_payoff",
                          "refusal_rate", "calls_per_trial"):
                x, y = getattr(a, field), getattr(b, field)
                assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y), field
    m = tally.matrix(("prisoners_dilemma", 0.2, 10, None))
    assert m[("defectbot", "defectbot")].cooperation == 0 and m[("defectbot", "defectbot")].trials == 15
    assert sum(c.trials for c in tally.matrix().values()) == cfg.total_trials
    assert len(tally.conditions()) == 4


def _key(r):
    return (r.game, r.epsilon, r.max_depth, r.row_program, r.col_program)


def test_pair_rows_cells_in_grid_order_with_none_and_zero_temperature_apart(store, programs, games):
    cfg = TournamentConfig(programs=["cooperatebot", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.5],
                           max_depths=[3], temperatures=[None, 0.0], trials=3)
    runner = TournamentRunner.create(store, cfg, programs, games)
    asyncio.run(runner.run())
    rows = pair_rows(store, runner.tournament_id)
    pairs = [("cooperatebot", "cooperatebot"), ("cooperatebot", "defectbot"), ("defectbot", "cooperatebot"),
             ("defectbot", "defectbot")]
    assert [(r.temperature, r.row_program, r.col_program, r.trials) for r in rows] == (
        [(None, a, b, 3) for a, b in pairs] + [(0.0, a, b, 3) for a, b in pairs])
    assert [r.cooperation for r in rows] == [1.0, 0.0, 0.0, 0.0] * 2
    assert [(r.row_payoff, r.col_payoff) for r in rows[:4]] == [(3, 3), (0, 5), (5, 0), (1, 1)]
    seeded = LiveTally()
    seeded.seed(store, runner.tournament_id)
    assert seeded.conditions() == [("prisoners_dilemma", 0.5, 3, None), ("prisoners_dilemma", 0.5, 3, 0.0)]


def test_duration_spreads_calls_over_providers_by_their_measured_latency():
    from arena.engine.estimate import duration_s

    assert duration_s(100, {}) is None
    assert duration_s(100, {"local": (2000.0, 1)}) == 200.0  # 100 calls × 2 s, one at a time
    assert duration_s(100, {"groq": (500.0, 10)}) == 5.0  # 100 × 0.5 s ÷ 10 in flight
    # two providers, half the calls each: the slower one decides
    assert duration_s(100, {"local": (2000.0, 1), "groq": (500.0, 10)}) == 100.0


def test_store_measures_latency_per_provider_from_answered_uncached_calls(store, programs, games):
    from arena.engine.records import CallRecord

    assert store.call_latencies() == {}
    rows = [(1, 1, 1, 1, "p", CallRecord("local", "m", [], latency_ms=ms, cached=cached, status=status))
            for ms, cached, status in ((1000.0, False, "ok"), (3000.0, False, "ok"), (10.0, True, "ok"),
                                       (9000.0, False, "error"))]
    from arena.store.writes import CALL_INSERT, call_row

    store.conn.executemany(CALL_INSERT, [call_row(i + 1, *r[1:]) for i, r in enumerate(rows)])
    assert store.call_latencies() == {"local": (2000.0, 2)}
