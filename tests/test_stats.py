"""Statistics a referee would accept (issue 16): stratified pooled intervals, the meta-game bootstrap
(margin intervals, verdicts, support frequencies), action-rate bounds, the depths table, and the
evolutionary dynamics — each against a closed form, and coverage over repeated seeds where random."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import numpy as np
import pytest

from arena.analysis import export, tables as analysis
from arena.analysis.bootstrap import (EQUILIBRIUM, NOT, UNCERTAIN, CellOutcomes, margin_arrays, percentile_interval,
                                      verdict)
from arena.analysis.dynamics import fixation, moran_rows, replicator
from arena.analysis.stats import Z95, share_stratum, stratified_ci, values_stratum, wilson_ci
from arena.engine.grid import TournamentConfig
from arena.runner.tournament import TournamentRunner
from stored import FDC, C, D, fdc_trial, make_tournament


def fdc_u(eps: float) -> list[list[float]]:
    """The analytic FairBot / DefectBot / CooperateBot meta-game at ε (FairBot cooperates with DefectBot
    with probability ε: it earns 1 − ε, DefectBot 1 + 4ε)."""
    return [[3, 1 - eps, 3], [1 + 4 * eps, 1, 5], [3, 0, 3]]


# --- stratified intervals ------------------------------------------------------------------------------------
def test_stratified_interval_by_hand():
    mean, lo, hi = stratified_ci([share_stratum(5, 10), share_stratum(6, 30)])
    var = (10 / 40) ** 2 * 0.25 / 10 + (30 / 40) ** 2 * 0.2 * 0.8 / 30
    assert mean == pytest.approx(11 / 40)
    assert (lo, hi) == pytest.approx((11 / 40 - Z95 * math.sqrt(var), 11 / 40 + Z95 * math.sqrt(var)))
    # deterministic cells: no sampling variance at all, whatever the cells' shares
    assert stratified_ci([share_stratum(0, 100), share_stratum(50, 50), share_stratum(0, 7)]) == (50 / 157,) * 3
    assert stratified_ci([]) == (None, None, None)


def test_values_stratum_is_mean_and_variance_of_the_mean():
    # one 5 and nine 1: mean 1.4, s² = (3.6² + 9·0.4²)/9 = 1.6, variance of the mean 0.16
    n, m, v = values_stratum([(5.0, 1), (1.0, 9)])
    assert (n, m, v) == pytest.approx((10, 1.4, 0.16))
    assert values_stratum([(3.0, 1)]) == (1.0, 3.0, 0.0)


def test_stratified_interval_covers_95_percent():
    """Three cells of different sizes and shares: over 2000 seeded repetitions the interval holds the
    true pooled share about 95% of the time."""
    rng = np.random.default_rng(16)
    ps, ns = np.array([0.2, 0.5, 0.9]), np.array([60, 100, 200])
    truth = float((ps * ns).sum() / ns.sum())
    ks = rng.binomial(ns, ps, size=(2000, 3))
    hits = 0
    for row in ks:
        _, lo, hi = stratified_ci([share_stratum(int(k), int(n)) for k, n in zip(row, ns)])
        hits += lo <= truth <= hi
    assert 0.93 <= hits / 2000 <= 0.97


def test_pooled_figures_of_a_hand_made_tournament(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    store.write_trials(tid, [fdc_trial(s, games["prisoners_dilemma"]) for s in cfg.iter_specs()])
    t = analysis.tables(store, tid, ["summary", "programs", "pairs", "depths"], resamples=0)
    (s,) = t["summary"]
    # every cell's cooperation is 0 or 1 (FairBot/FairBot, FairBot/CooperateBot and CooperateBot/CooperateBot
    # always reach (C, C)): 40 of 90, with no sampling variance
    assert (s.cooperation, s.cooperation_low, s.cooperation_high) == (4 / 9, 4 / 9, 4 / 9)
    assert s.wald_high - s.wald_low > 0.2  # the iid interval, for contrast
    progs = {r.program: r for r in t["programs"]}
    assert (progs["cooperatebot"].payoff_low, progs["cooperatebot"].payoff_high) == (2.0, 2.0)
    # FairBot: its cells with DefectBot (one 0, nine 1 in each seat: s² = 0.1) vary; each weighs 10/60
    half = Z95 * math.sqrt(2 * (10 / 60) ** 2 * 0.1 / 10)
    f = progs["fairbot"]
    assert (f.payoff_low, f.payoff_high) == pytest.approx((2.3 - half, 2.3 + half))
    # its own action rate with Wilson bounds: cooperated in 42 of its 60 decisions
    assert (f.actions_low[C], f.actions_high[C]) == pytest.approx(wilson_ci(42, 60)[1:])
    fd = next(r for r in t["pairs"] if (r.row_program, r.col_program) == ("fairbot", "defectbot"))
    assert (fd.row_actions_low[C], fd.row_actions_high[C]) == pytest.approx(wilson_ci(1, 10)[1:])
    assert (fd.col_actions_low[D], fd.col_actions_high[D]) == pytest.approx(wilson_ci(10, 10)[1:])
    # depths: FairBot's row chains reach 0 three times (grounded once in each of its cells), 1 nineteen times
    # (nine times against each bot, once against itself), then 2..9 once (against itself)
    depth = Counter()
    for r in t["depths"]:
        depth[(r.program, r.seat, r.depth)] += r.decisions
    for seat in ("row", "col"):
        assert [depth[("fairbot", seat, k)] for k in range(10)] == [3, 19, 1, 1, 1, 1, 1, 1, 1, 1]
        assert depth[("defectbot", seat, 0)] == depth[("cooperatebot", seat, 0)] == 30
    assert len(t["depths"]) == 40  # per opponent: FairBot 2 seats × (10 depths against itself + 2 + 2), the bots 6
    assert analysis.depth_rows(store, tid, fast=False) == t["depths"]  # the integer-keyed GROUP BY agrees


# --- the meta-game bootstrap ----------------------------------------------------------------------------------
@pytest.mark.parametrize("eps,weak,strict", [(0.1, 0.0, 1.6), (0.5, 0.0, None), (0.8, -1.2, -1.2)])
def test_weak_and_strict_margins_of_fairbot_pair(eps, weak, strict):
    """(FairBot, FairBot): the deviation to CooperateBot ties (0); to DefectBot it gives up 3 − (1 + 4ε)."""
    U = fdc_u(eps)
    w, s = margin_arrays(np.array(U, dtype=float)[None], U)
    assert w[0, 0, 0] == pytest.approx(weak)
    if strict is None:  # at ε = 0.5 every deviation ties: there is no strict margin
        assert s[0, 0, 0] == math.inf
    else:
        assert s[0, 0, 0] == pytest.approx(strict)
    # (DefectBot, DefectBot): its best deviation is FairBot, which earns 1 − ε
    assert w[0, 1, 1] == pytest.approx(eps)


def test_verdicts():
    assert verdict(0.1, 0.3, 0.2, False) == EQUILIBRIUM
    assert verdict(-0.3, -0.1, -0.2, False) == NOT
    assert verdict(-0.1, 0.1, 0.0, False) == UNCERTAIN
    assert verdict(0.0, 0.0, 0.0, True) == EQUILIBRIUM  # exactly on the boundary, no randomness: a weak equilibrium
    assert verdict(-0.04, 0.0, 0.0, False, never_negative=False) == UNCERTAIN
    assert verdict(None, None, None, False) is None


def test_cell_bootstrap_covers_the_mean():
    """Percentile intervals of a resampled cell's mean payoff hold the true mean about 95% of the time."""
    rng = np.random.default_rng(7)
    probs, pays = np.array([0.3, 0.5, 0.2]), np.array([0.0, 1.0, 5.0])
    truth = float(probs @ pays)
    hits = 0
    for _ in range(400):
        counts = rng.multinomial(200, probs)
        cell = CellOutcomes(counts, pays, pays)
        lo, hi = percentile_interval(cell.resample(rng, 400)[0])
        hits += lo <= truth <= hi
    assert 0.91 <= hits / 400 <= 0.98


def test_bootstrap_is_exact_for_deterministic_cells_and_seeded(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    store.write_trials(tid, [fdc_trial(s, games["prisoners_dilemma"]) for s in cfg.iter_specs()])
    t = analysis.tables(store, tid, ["matrix", "equilibria", "supports"], resamples=200)
    m = {(r.program, r.opponent): r for r in t["matrix"]}
    ff, cc = m[("fairbot", "fairbot")], m[("cooperatebot", "cooperatebot")]
    # (F, F): CooperateBot ties in every resample (deterministic cells): a weak equilibrium, margin exactly 0
    assert (ff.margin, ff.margin_low, ff.margin_high, ff.verdict) == (0.0, 0.0, 0.0, EQUILIBRIUM)
    assert ff.strict_margin == pytest.approx(1.6)  # 3 − 1.4, DefectBot's deviation
    # (C, C): DefectBot's deviation earns 5 against CooperateBot, deterministically
    assert (cc.margin, cc.margin_low, cc.margin_high, cc.verdict) == (-2.0, -2.0, -2.0, NOT)
    assert analysis.tables(store, tid, ["matrix"], resamples=200)["matrix"] == t["matrix"]  # seeded
    # pure equilibria appear in every resample
    eqs = t["equilibria"]
    assert [e.support_frequency for e in eqs if e.pure] == [1.0, 1.0]
    assert {(tuple(r.row_support), tuple(r.col_support)) for r in t["supports"] if r.frequency == 1.0} >= {
        (("fairbot",), ("fairbot",)), (("defectbot",), ("defectbot",))}
    assert all(r.estimated for r in t["supports"])
    none = analysis.tables(store, tid, ["matrix"], resamples=0)["matrix"]
    assert none[0].margin_low is None and none[0].verdict == EQUILIBRIUM  # the point estimate's verdict


def test_fdc_tournament_meets_the_issue(store, programs, games):
    """The simulator's FairBot / DefectBot / CooperateBot at ε 0.1, 0.5, 0.8: the pooled cooperation interval
    has zero width, CooperateBot's payoff interval too; the (FairBot, FairBot) margin interval is exactly 0
    at ε 0.1 (an equilibrium), holds 0 at ε 0.5 (uncertain) and lies below 0 at ε 0.8 (not)."""
    cfg = TournamentConfig(programs=FDC, games=["prisoners_dilemma"], epsilons=[0.1, 0.5, 0.8], max_depths=[50],
                           trials=400, seed=3)
    runner = TournamentRunner.create(store, cfg, programs, games)
    asyncio.run(runner.run())
    t = analysis.tables(store, runner.tournament_id, ["summary", "programs", "matrix", "supports", "replicator",
                                                      "moran"], resamples=300)
    for s in t["summary"]:
        assert s.cooperation == pytest.approx(4 / 9) and s.cooperation_low == s.cooperation_high == s.cooperation
    for p in t["programs"]:
        if p.program == "cooperatebot":
            assert p.payoff_low == p.payoff_high == p.mean_payoff == 2.0
    ff = {r.epsilon: r for r in t["matrix"] if r.program == r.opponent == "fairbot"}
    assert (ff[0.1].margin_low, ff[0.1].margin_high, ff[0.1].verdict) == (0.0, 0.0, EQUILIBRIUM)
    assert ff[0.5].margin_low < 0 <= ff[0.5].margin_high and ff[0.5].verdict == UNCERTAIN
    assert ff[0.8].margin_high < 0 and ff[0.8].verdict == NOT
    assert ff[0.8].margin_low < -1.2 < ff[0.8].margin_high  # the analytic 2 − 4ε
    # (FairBot, FairBot) as a pure equilibrium: in every resample at ε 0.1, in some at ε 0.5, in none at ε 0.8;
    # (DefectBot, DefectBot) always. A pure pair's frequency is over all 300 resamples.
    sup = {(r.epsilon, tuple(r.row_support), tuple(r.col_support)): r for r in t["supports"]}
    ffs = {e: sup.get((e, ("fairbot",), ("fairbot",))) for e in (0.1, 0.5, 0.8)}
    assert ffs[0.1].frequency == 1.0 and 0 < ffs[0.5].frequency < 1 and ffs[0.8] is None
    assert ffs[0.5].resamples == 300
    assert {r.resamples for r in t["supports"] if len(r.row_support) + len(r.col_support) > 2} <= {50}  # mixed
    assert all(sup[(e, ("defectbot",), ("defectbot",))].frequency == 1.0 for e in (0.1, 0.5, 0.8))
    rest = {(r.epsilon, r.program): r.share for r in t["replicator"] if r.rest}
    assert rest[(0.8, "defectbot")] == pytest.approx(1.0, abs=1e-6)
    assert len(t["moran"]) == 3 * 6


# --- evolutionary dynamics -----------------------------------------------------------------------------------
def test_moran_closed_forms():
    assert fixation(2, 2, 2, 2, 10) == pytest.approx(0.1)  # neutral drift: 1/N
    # constant fitness advantage s of A (a = b = 1 + s, c = d = 1): ρ = (1 − e^{−s}) / (1 − e^{−Ns})
    for s, N in [(0.5, 10), (-0.3, 7), (2.0, 20)]:
        assert fixation(1 + s, 1 + s, 1, 1, N) == pytest.approx((1 - math.exp(-s)) / (1 - math.exp(-N * s)))
    # N = 2: one A meets one B: f = b, g = c, ρ = 1 / (1 + e^{w(c − b)})
    assert fixation(9, 1, 4, 9, 2, w=0.5) == pytest.approx(1 / (1 + math.exp(0.5 * 3)))
    rows = moran_rows(("g", 0.1, 10, None), ["a", "b"], [[2, 2], [2, 2]], N=5)
    assert [(r.invader, r.resident, r.fixation, r.favoured) for r in rows] == [("a", "b", pytest.approx(0.2), False),
                                                                              ("b", "a", pytest.approx(0.2), False)]
    with pytest.raises(ValueError):
        fixation(1, 1, 1, 1, 1)


def test_replicator_closed_forms():
    U = [[0.0, 4.0], [1.0, 2.0]]  # hawk-dove: the mixed equilibrium 2/3 hawk is stable
    t = replicator(U)
    # one step from (1/2, 1/2) with shift c = 1: f = (2, 1.5), x'_hawk = ½·3 / (1.75 + 1) = 6/11
    assert t.shares[1][0] == pytest.approx(6 / 11)
    assert t.converged and t.shares[-1] == pytest.approx([2 / 3, 1 / 3], abs=1e-8)
    pd = replicator([[3.0, 0.0], [5.0, 1.0]])  # defection dominates
    assert pd.converged and pd.shares[-1][1] == pytest.approx(1.0, abs=1e-8)
    # the FDC meta-game at ε = 0.8: DefectBot takes over
    assert replicator(fdc_u(0.8)).shares[-1][1] == pytest.approx(1.0, abs=1e-8)


# --- statistics that agree (issue 24) ------------------------------------------------------------------------
def tie_trial(spec, game):
    """F/D/C at ε 0.5, 10 trials a cell, written by hand. FairBot cooperates against DefectBot (grounded, depth 0)
    in trials 0-4 of (FairBot, DefectBot) and 0-3 of (DefectBot, FairBot), and copies its defection (depth 1)
    otherwise: U[D][F] = (5·5 + 5·1 + 4·5 + 6·1) / 20 = 2.8 and U[F][D] = 11/20 = 0.55. Every other cell is
    deterministic: U[F][F] = U[F][C] = U[C][F] = U[C][C] = 3, U[D][C] = 5, U[C][D] = 0, U[D][D] = 1.
    DefectBot's deviation from (F, F) is a true tie (1 + 4ε = 3) whose point estimate 2.8 is noise."""
    from stored import make_trial

    fixed = {"defectbot": D, "cooperatebot": C}
    r, c, i = spec.row, spec.col, spec.index
    if r == c == "fairbot":
        return make_trial(spec, game, C, C, row_depth=i % 3, col_depth=(i + 1) % 3)
    if "fairbot" not in (r, c):
        return make_trial(spec, game, fixed[r], fixed[c])
    other = c if r == "fairbot" else r
    grounded = other == "defectbot" and i < (5 if r == "fairbot" else 4)
    fair, depth = (C, 0) if grounded else (fixed[other], 1)
    if r == "fairbot":
        return make_trial(spec, game, fair, fixed[c], row_depth=depth)
    return make_trial(spec, game, fixed[r], fair, col_depth=depth)


@pytest.fixture
def tie(store, programs, games):
    tid, cfg = make_tournament(store, programs, games, epsilons=[0.5])
    store.write_trials(tid, [tie_trial(s, games["prisoners_dilemma"]) for s in cfg.iter_specs()])
    return tid


def test_the_summary_names_the_equilibria_the_bootstrap_finds(store, tie):
    """(F, F) is a weak equilibrium of the point estimate (margin min(3 − 2.8, 3 − 3) = 0) but its bootstrap
    interval holds 0 over random cells: the summary lists it as uncertain, not as an equilibrium. Without a
    bootstrap the summary lists the point estimate's equilibria and says so."""
    t = analysis.tables(store, tie, ["summary", "matrix"], resamples=500)
    (s,) = t["summary"]
    m = {(r.program, r.opponent): r for r in t["matrix"]}
    assert (m[("fairbot", "fairbot")].program_equilibrium, m[("fairbot", "fairbot")].margin) == (True, 0.0)
    assert m[("fairbot", "fairbot")].verdict == UNCERTAIN and m[("defectbot", "defectbot")].verdict == EQUILIBRIUM
    assert (s.program_equilibria, s.uncertain_equilibria, s.equilibria_basis) == (
        ["defectbot/defectbot"], ["fairbot/fairbot"], "bootstrap")
    assert analysis.tables(store, tie, ["summary"], resamples=500)["summary"] == t["summary"]  # summary alone
    (p,) = analysis.tables(store, tie, ["summary"], resamples=0)["summary"]
    assert (p.program_equilibria, p.uncertain_equilibria, p.equilibria_basis) == (
        ["fairbot/fairbot", "defectbot/defectbot"], [], "point estimate")
    # the paper tables say the same: uncertain pairs marked ?, a point estimate said
    assert export.named_equilibria(s) == "defectbot/defectbot, fairbot/fairbot?"
    assert export.named_equilibria(p) == "fairbot/fairbot, defectbot/defectbot (point estimate)"
    headers, (cells,), _ = export.grid("summary", [s])
    assert dict(zip(headers, cells))["program equilibria"] == "defectbot/defectbot, fairbot/fairbot?"


def test_ties_are_decided_by_the_bootstrap(store, tie):
    """Which deviations tie, for the strict margin, is read with the same uncertainty as the verdict: DefectBot's
    deviation from (F, F) (gain 3 − 2.8 = 0.2 in the point estimate, an interval holding 0) ties like
    CooperateBot's, so (F, F) has no strict margin, as in the analytic game at ε 0.5; (D, D)'s deviations
    (gains 1 − 0.55 and 1 − 0, intervals above 0) do not tie: its strict margin is its margin."""
    t = analysis.tables(store, tie, ["matrix"], resamples=500)["matrix"]
    m = {(r.program, r.opponent): r for r in t}
    ff, dd = m[("fairbot", "fairbot")], m[("defectbot", "defectbot")]
    assert (ff.strict_margin, ff.strict_margin_low, ff.strict_margin_high) == (None, None, None)
    assert dd.strict_margin == pytest.approx(0.45) and dd.margin == pytest.approx(0.45)
    assert (dd.strict_margin_low, dd.strict_margin_high) == (dd.margin_low, dd.margin_high)
    # without a bootstrap, ties are the point estimate's (within TOL): DefectBot's deviation does not tie
    (p,) = [r for r in analysis.tables(store, tie, ["matrix"], resamples=0)["matrix"]
            if r.program == r.opponent == "fairbot"]
    assert p.strict_margin == pytest.approx(0.2)


def test_depths_per_opponent_follow_the_closed_form(store, programs, games):
    """The depths table is per opponent: FairBot's chains against a program that does not simulate stop at depth
    1, so only against a simulating opponent (itself) does P(depth = k) = (1−ε)^k·ε hold; pooled over opponents it
    does not. Hand-made trials (fdc_trial): against itself, its row chain reaches depth i in trial i."""
    tid, cfg = make_tournament(store, programs, games)
    store.write_trials(tid, [fdc_trial(s, games["prisoners_dilemma"]) for s in cfg.iter_specs()])
    rows = analysis.tables(store, tid, ["depths"])["depths"]
    fair_row = [(r.opponent, r.depth, r.decisions) for r in rows if (r.program, r.seat) == ("fairbot", "row")]
    assert fair_row == [("fairbot", k, 1) for k in range(10)] + [("defectbot", 0, 1), ("defectbot", 1, 9),
                                                                 ("cooperatebot", 0, 1), ("cooperatebot", 1, 9)]
    assert [(r.opponent, r.depth, r.decisions) for r in rows if (r.program, r.seat) == ("defectbot", "col")] == [
        ("fairbot", 0, 10), ("defectbot", 0, 10), ("cooperatebot", 0, 10)]
    assert analysis.depth_rows(store, tid, fast=False) == rows
