"""Analysis on small stored tournaments whose trials are written row by row, so that every number is
known by hand: intervals, pair and program tables, ranks, medians, the meta-game and its equilibria."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from arena.analysis import tables as analysis
from arena.analysis.tables import (
    competition_ranks,
    load_outcomes,
    pair_rows,
    pairs,
    programs as program_rows,
    weighted_median,
)
from arena.analysis.stats import mean_ci, wald_ci, wilson_ci
from arena.engine.grid import TournamentConfig
from arena.analysis.metagame import meta_matrices, nash_equilibria, pure_equilibria
from arena.runner.tournament import TournamentRunner
from stored import FDC, C, D, fdc_trial, make_tournament, make_trial


@pytest.fixture
def fdc(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    pd = games["prisoners_dilemma"]
    store.write_trials(tid, [fdc_trial(s, pd) for s in cfg.iter_specs()])
    return tid


# --- intervals ---------------------------------------------------------------------------------------------
def test_wald_and_wilson_for_7_of_10():
    # Wald: 0.7 ± 1.96·√(0.7·0.3/10) = 0.7 ± 0.28403
    p, lo, hi = wald_ci(7, 10)
    assert (p, lo, hi) == pytest.approx((0.7, 0.415974, 0.984026), abs=1e-6)
    # Wilson: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n) = [0.39678, 0.89221] (the textbook value)
    assert wilson_ci(7, 10) == pytest.approx((0.7, 0.396778, 0.892209), abs=1e-6)


def test_intervals_at_the_edges():
    assert wald_ci(0, 10) == (0.0, 0.0, 0.0)  # the Wald interval collapses at 0
    p, lo, hi = wilson_ci(0, 10)
    assert (p, lo) == (0.0, 0.0) and hi == pytest.approx(3.841459 / 13.841459, abs=1e-6)  # z²/(n + z²)
    p, lo, hi = wilson_ci(10, 10)
    assert hi == 1.0 and lo == pytest.approx(1 - 3.841459 / 13.841459, abs=1e-6)
    assert all(x != x for x in wald_ci(0, 0))  # no trials: no interval


def test_mean_interval_uses_the_sample_sd():
    # values 0, 1, 1, 3: mean 1.25, s² = 4.75/3, half width 1.96·s/2 = 1.23312
    assert mean_ci(5.0, 11.0, 4) == pytest.approx((1.25, 0.016883, 2.483117), abs=1e-6)
    assert mean_ci(3.0, 9.0, 1) == (3.0, None, None)
    assert mean_ci(0.0, 0.0, 0) == (None, None, None)


def test_ranks_and_medians():
    assert competition_ranks([2.0, 3.0, 2.0, 1.0, None]) == [2, 1, 2, 4, None]
    assert weighted_median({0.0: 2, 1.0: 18, 3.0: 40}) == 3.0
    assert weighted_median({1.0: 2, 5.0: 2}) == 3.0  # even count: the mean of the middle two
    assert weighted_median({}) is None


# --- pairs ----------------------------------------------------------------------------------------------------
def test_pair_rows_by_hand(store, fdc):
    rows = {(r.row_program, r.col_program): r for r in pair_rows(store, fdc)}
    assert len(rows) == 9
    fd = rows[("fairbot", "defectbot")]
    assert (fd.trials, fd.valid, fd.cooperative, fd.cooperation) == (10, 10, 0, 0.0)
    assert fd.row_actions == {C: pytest.approx(0.1), D: pytest.approx(0.9)} and fd.col_actions == {C: 0.0, D: 1.0}
    # FairBot's payoffs: one 0, nine 1 -> 0.9 ± 1.96·√(0.1/10); DefectBot's: one 5, nine 1 -> 1.4
    assert fd.row_payoff == pytest.approx(0.9) and fd.col_payoff == pytest.approx(1.4)
    assert (fd.row_payoff_low, fd.row_payoff_high) == pytest.approx((0.704004, 1.095996), abs=1e-6)
    assert (fd.row_depth_mean, fd.row_depth_max, fd.col_depth_mean, fd.col_depth_max) == (0.9, 1, 0.0, 0)
    assert (fd.refusal_rate, fd.error_rate, fd.calls_per_trial, fd.calls_max) == (0.0, 0.0, 0.0, 0)
    ff = rows[("fairbot", "fairbot")]
    assert (ff.cooperation, ff.wald_low, ff.wald_high) == (1.0, 1.0, 1.0)
    assert (ff.row_depth_mean, ff.row_depth_max, ff.col_depth_max) == (4.5, 9, 9)
    assert ff.wilson_low == pytest.approx(10 / 13.841459, abs=1e-6)  # n/(n + z²) at k = n
    cc = rows[("cooperatebot", "cooperatebot")]
    assert (cc.row_payoff, cc.row_payoff_low, cc.row_payoff_high) == (3.0, 3.0, 3.0)
    # grid order
    assert [(r.row_program, r.col_program) for r in pair_rows(store, fdc)][:3] == [
        ("fairbot", "fairbot"), ("fairbot", "defectbot"), ("fairbot", "cooperatebot")]


def test_refusals_count_in_rates_not_in_outcomes(store, programs, games):
    tid, cfg = make_tournament(store, programs, games, programs=["fairbot", "defectbot"], trials=4)
    pd = games["prisoners_dilemma"]
    res = []
    for s in cfg.iter_specs():
        if (s.row, s.col) == ("fairbot", "defectbot") and s.index == 3:
            res.append(make_trial(s, pd, None, D, status="refused"))
        else:
            res.append(make_trial(s, pd, D if s.col == "defectbot" or s.row == "defectbot" else C,
                                  D if s.row == "defectbot" or s.col == "defectbot" else C))
    store.write_trials(tid, res)
    fd = next(r for r in pair_rows(store, tid) if (r.row_program, r.col_program) == ("fairbot", "defectbot"))
    assert (fd.trials, fd.valid, fd.refusal_rate, fd.error_rate) == (4, 3, 0.25, 0.0)
    assert fd.row_actions == {C: 0.0, D: 1.0} and fd.row_payoff == 1.0


def test_fast_grouping_matches_the_plain_group_by(store, programs, games):
    """The integer-keyed GROUP BY gives the rows the plain nine-column GROUP BY gives, and trials
    outside the tournament's grid make it fall back to the plain one."""
    tid, cfg = make_tournament(store, programs, games, epsilons=[0.1, 0.5], games=["prisoners_dilemma", "stag_hunt"],
                               temperatures=[None, 0.7], trials=3)
    res = []
    for s in cfg.iter_specs():
        g = games[s.game]
        a = g.actions[(s.index + len(s.row)) % 2]
        b = g.actions[(s.index * 3 + len(s.col)) % 2]
        status = "refused" if (s.index, s.row, s.col) == (1, "defectbot", "fairbot") else "ok"
        res.append(make_trial(s, g, None if status != "ok" else a, b, row_depth=s.index, status=status))
    store.write_trials(tid, res)
    fast, plain = load_outcomes(store, tid), load_outcomes(store, tid, fast=False)
    assert all("code" in r for r in analysis._grouped(store, tid, cfg.model_dump(mode="json"), "count(*) AS n",
                                                      analysis._OUTCOMES_SQL))  # the fast path answered
    assert pairs(fast) == pairs(plain) and len(pairs(fast)) == 2 * 2 * 2 * 9
    assert program_rows(fast) == program_rows(plain)
    assert analysis.depth_histogram(store, tid) == analysis.depth_histogram(store, tid, fast=False)
    # a trial of a program the tournament does not list: the fast key is NULL, the plain query is used
    store.conn.execute("UPDATE trials SET row_program = 'stranger' WHERE id = 1")
    rows = pair_rows(store, tid)
    assert ("stranger", "fairbot") in {(r.row_program, r.col_program) for r in rows}
    assert rows == pairs(load_outcomes(store, tid, fast=False))


# --- programs ---------------------------------------------------------------------------------------------------
def test_program_summary_by_hand(store, fdc):
    rows = {r.program: r for r in analysis.tables(store, fdc, ["programs"])["programs"]}
    f, d, c = rows["fairbot"], rows["defectbot"], rows["cooperatebot"]
    # 60 observations each (both seats of self-play, one seat of each of the other 4 cells, 10 trials each).
    # FairBot: 40 × 3 (vs FairBot, CooperateBot), vs DefectBot 18 × 1 and 2 × 0 -> 138/60
    assert (f.trials, f.valid, f.opponents) == (60, 60, 3)
    assert f.mean_payoff == pytest.approx(2.3) and d.mean_payoff == pytest.approx(148 / 60)
    assert c.mean_payoff == pytest.approx(2.0)
    assert [(r.rank, r.program) for r in rows.values()] == [(1, "defectbot"), (2, "fairbot"), (3, "cooperatebot")]
    assert (f.median_payoff, d.median_payoff, c.median_payoff) == (3.0, 1.0, 3.0)
    assert (f.cooperation_rating, d.cooperation_rating, c.cooperation_rating) == pytest.approx((2 / 3, 0.0, 2 / 3))
    # wins: DefectBot out-scores FairBot (1.4 > 0.9) and CooperateBot (5 > 0) on average; trial wins: 2 + 20
    assert (f.wins, d.wins, c.wins) == (0, 2, 0)
    assert (f.trial_wins, d.trial_wins, c.trial_wins) == (0, 22, 0)
    # own action first: FairBot CC 40, CD 2 (it cooperated, DefectBot defected), DD 18
    assert (f.cc, f.cd, f.dc, f.dd) == pytest.approx((40 / 60, 2 / 60, 0.0, 18 / 60))
    assert (d.cc, d.cd, d.dc, d.dd) == pytest.approx((0.0, 0.0, 22 / 60, 38 / 60))
    assert f.actions == pytest.approx({C: 42 / 60, D: 18 / 60})
    # FairBot did not simulate in 6 of its 60 top-level decisions, and cooperated then; bots never simulate
    assert f.initial_rate == pytest.approx(0.1) and f.initial_actions == {C: 1.0, D: 0.0}
    assert (d.initial_rate, d.initial_actions) == (1.0, {C: 0.0, D: 1.0})


def test_initial_rate_matches_the_nodes(store, fdc):
    """'did not simulate' is read from the trial's chain depth; the stored root nodes say the same."""
    roots = store.query("""SELECT n.program, sum(n.mode != 'simulated') AS top, count(*) AS n FROM nodes n
                           JOIN trials t ON t.id = n.trial_id WHERE n.parent_id IS NULL AND t.tournament_id = ?
                           GROUP BY n.program""", (fdc,))
    rows = {r.program: r for r in analysis.tables(store, fdc, ["programs"])["programs"]}
    for r in roots:
        assert rows[r["program"]].initial_rate == pytest.approx(r["top"] / r["n"])


# --- the meta-game --------------------------------------------------------------------------------------------
def fdc_matrix():
    # FairBot vs DefectBot cooperates with probability ε = 0.1: FairBot gets 0.1·0 + 0.9·1, DefectBot 0.1·5 + 0.9·1
    return [[3.0, 0.9, 3.0],
            [1.4, 1.0, 5.0],
            [3.0, 0.0, 3.0]]


def test_meta_matrix_and_program_equilibria_from_stored_trials(store, fdc):
    t = analysis.tables(store, fdc, ["matrix", "summary", "equilibria"])
    U = {(r.program, r.opponent): r for r in t["matrix"]}
    expected = fdc_matrix()
    for i, a in enumerate(FDC):
        for j, b in enumerate(FDC):
            assert U[(a, b)].payoff == pytest.approx(expected[i][j])
            assert U[(a, b)].opponent_payoff == pytest.approx(expected[j][i])
    assert U[("fairbot", "defectbot")].trials == 20 and U[("fairbot", "fairbot")].trials == 10
    eq = {pair: (r.program_equilibrium, r.margin) for pair, r in U.items()}
    # (FairBot, FairBot): weak, CooperateBot ties; (DefectBot, DefectBot): FairBot would get 0.9 < 1
    assert eq[("fairbot", "fairbot")] == (True, pytest.approx(0.0))
    assert eq[("defectbot", "defectbot")] == (True, pytest.approx(0.1))
    assert eq[("cooperatebot", "cooperatebot")] == (False, pytest.approx(-2.0))  # DefectBot gets 5 > 3
    assert eq[("fairbot", "cooperatebot")] == (False, pytest.approx(-2.0))
    assert [p for p, (ok, _) in eq.items() if ok] == [("fairbot", "fairbot"), ("defectbot", "defectbot")]
    (summary,) = t["summary"]
    assert summary.program_equilibria == ["fairbot/fairbot", "defectbot/defectbot"]
    assert summary.best == ["defectbot"] and summary.degenerate is True and summary.nash_equilibria == 6
    assert summary.cooperation == pytest.approx(4 * 10 / 90) and summary.trials == 90
    assert summary.mean_payoff == pytest.approx((138 + 148 + 120) / 180)


def test_nash_equilibria_of_the_fdc_meta_game():
    """Vertex enumeration lists every extreme equilibrium of this degenerate game, computed by hand:
    the pure (F, F) and (D, D); F against the mix σ = 5/9 F + 4/9 C (against σ, D earns 1.4·5/9 + 5·4/9 = 3,
    as much as F and C) in every combination; and τ = 1/17 F + 16/17 D against itself (F and D then both
    earn 17.4/17)."""
    eqs, method = nash_equilibria(fdc_matrix())
    assert method == "vertex_enumeration"
    found = {(tuple(Fraction(x).limit_denominator(100) for x in e.row),
              tuple(Fraction(x).limit_denominator(100) for x in e.col)) for e in eqs}
    F, Dd = (1, 0, 0), (0, 1, 0)
    sigma = (Fraction(5, 9), 0, Fraction(4, 9))
    tau = (Fraction(1, 17), Fraction(16, 17), 0)
    assert found == {(F, F), (Dd, Dd), (F, sigma), (sigma, F), (sigma, sigma), (tau, tau)}
    by = {(tuple(round(x, 6) for x in e.row), tuple(round(x, 6) for x in e.col)): e for e in eqs}
    t = by[(tuple(round(float(x), 6) for x in tau),) * 2]
    assert t.row_payoff == pytest.approx(17.4 / 17) and t.symmetric and not t.pure
    assert [e.pure for e in eqs][:2] == [True, True]


def test_pure_equilibria_margins_and_single_program():
    rows = {(a, b): (ok, m) for a, b, ok, m in pure_equilibria(FDC, fdc_matrix())}
    # (DefectBot, FairBot): the row player would rather be FairBot against FairBot (3 instead of 1.4)
    assert rows[("defectbot", "fairbot")] == (False, pytest.approx(1.4 - 3.0))
    assert pure_equilibria(["solo"], [[2.0]]) == [("solo", "solo", True, None)]
    # a missing payoff: pairs whose check needs it are undecided
    assert pure_equilibria(["a", "b"], [[1.0, None], [0.0, 2.0]])[:2] == [("a", "a", True, 1.0), ("a", "b", None, None)]


def test_nash_on_a_game_with_negative_payoffs():
    # Climbing-like common payoffs: the pure optimum (a, a) with 11 and the pure (c, c) with 5 are equilibria
    U = [[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]]
    eqs, _ = nash_equilibria(U)
    pure = {(e.row.index(1.0), e.col.index(1.0)) for e in eqs if e.pure}
    assert (0, 0) in pure and all(e.row_payoff >= -30 for e in eqs)


def test_real_tournament_matches_the_analytic_matrix(store, programs, games):
    """A run of the real simulator: the matrix is the analytic one within its intervals, and the same
    pure pairs are program equilibria."""
    cfg = TournamentConfig(programs=FDC, games=["prisoners_dilemma"], epsilons=[0.1], max_depths=[50], trials=1500,
                           seed=7)
    runner = TournamentRunner.create(store, cfg, programs, games)
    asyncio.run(runner.run())
    out = load_outcomes(store, runner.tournament_id)
    (m,) = meta_matrices(out.programs, pairs(out), nash=False).values()
    expected = fdc_matrix()
    for i in range(3):
        for j in range(3):
            assert m.U[i][j] == pytest.approx(expected[i][j], abs=0.05)
    assert [(a, b) for a, b, ok, _ in m.pure if ok] == [("fairbot", "fairbot"), ("defectbot", "defectbot")]


# --- LLM call statistics ---------------------------------------------------------------------------------------
def test_call_rows_from_the_loopback_server(store, games, programs):
    """One LLM program ('mean') on the fake server, one trial per cell, concurrency 1: (defectbot, mean)
    fails after 2 attempts (HTTP 500 twice); (mean, defectbot) answers without an action twice (refused);
    (mean, mean) answers without an action then gives it when corrected, for both decisions."""
    from arena.llm.service import LLMService
    from arena.library.programs import LLMProgram
    from arena.llm.registry import BUILTIN
    from tests.support.fake_llm import FakeLLMServer, Status, Text

    mean = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7, system_prompt="You defect.")

    def responder(req):
        """By cell, whatever order the calls arrive in (trials and decisions run concurrently)."""
        text = req.messages[1]["content"]
        against_bot = "Built-in program, strategy 'defect'" in text
        if against_bot and "You are the column player" in text:  # (defectbot, mean)
            return Status(500)
        if len(req.messages) > 2:  # a corrective retry: the model's answer and the request for the action
            return Text("still no" if against_bot else "ACTION: defect")  # (mean, defectbot) | (mean, mean)
        return Text("I will not play.")

    key = "sk-test-SECRET-0123456789"
    registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(
        backoff_initial=0.01, backoff_max=0.02, timeout=2.0, max_attempts=2, structured="none"))}
    with FakeLLMServer(responder) as srv:
        registry["custom"] = registry["custom"].model_copy(update={"base_url": srv.base_url})
        cfg = TournamentConfig(programs=["defectbot", "mean"], games=["prisoners_dilemma"], epsilons=[1.0],
                               max_depths=[0], trials=1, seed=3, concurrency=1)
        runner = TournamentRunner.create(store, cfg, {"mean": mean, "defectbot": programs["defectbot"]}, games,
                                         backend=LLMService(store, registry, {"LLM_API_KEY": key}))
        asyncio.run(runner.run())
    (row,) = analysis.call_rows(store, runner.tournament_id)
    assert (row.provider, row.model, row.program) == ("custom", "fake-8b", "mean")
    assert (row.calls, row.attempts, row.retries, row.failures) == (7, 8, 1, 1)
    assert (row.refusals, row.unparsed, row.cached) == (1, 3, 0)
    assert row.latency_ms_mean is not None and row.latency_ms_mean > 0
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    cells = {(r.row_program, r.col_program): r for r in pair_rows(store, runner.tournament_id)}
    assert cells[("defectbot", "mean")].error_rate == 1.0 and cells[("mean", "defectbot")].refusal_rate == 1.0
    assert (cells[("mean", "mean")].calls_per_trial, cells[("mean", "mean")].calls_max) == (4.0, 4)
    # the key went to the server, never to the store
    from arena.analysis.export import render

    for fmt in ("csv", "json", "markdown", "latex"):
        for table in (["calls"] if fmt == "csv" else ["all"]):
            assert key not in render(store, runner.tournament_id, fmt, table)
    dump = "\n".join(str(r) for t in ("llm_calls", "trials", "tournaments") for r in store.query(f"SELECT * FROM {t}"))
    assert key not in dump
