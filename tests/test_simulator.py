"""The epsilon-grounded recursion against its exact analytic values (ARCHITECTURE.md).

Each test runs many trials from a fixed seed and checks the empirical share against the analytic
probability within 4 binomial standard deviations (deterministic: the seed is fixed).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

import pytest

from arena.engine.bots import BotAgent
from arena.engine.grid import TournamentConfig, expected_nodes
from arena.library.programs import BuiltinProgram
from arena.engine.records import CAPPED, DIRECT, GROUNDED, SIMULATED
from arena.engine.simulator import plan, run_trial_async, run_trial_sync

N = 20_000


def bots(**progs):
    programs = {k: BuiltinProgram(id=k, kind="builtin", **v) for k, v in progs.items()}
    return programs, {k: BotAgent(p) for k, p in programs.items()}


def trials(game, row, col, eps, depth, n=N, seed=1, **progs):
    programs, agents = bots(**progs)
    cfg = TournamentConfig(programs=list(dict.fromkeys([row, col])), games=[game.id], epsilons=[eps],
                           max_depths=[depth], trials=n, seed=seed)
    specs = [s for s in cfg.iter_specs() if s.row == row and s.col == col]
    return [run_trial_sync(s, game, agents, programs) for s in specs]


def within(k, n, p, sds=4.0):
    sd = math.sqrt(p * (1 - p) / n)
    return abs(k / n - p) <= sds * sd + 1e-12


FAIR = {"strategy": "fairbot"}


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.5])
def test_fairbot_vs_itself_always_cooperates(games, eps):
    pd = games["prisoners_dilemma"]
    res = trials(pd, "fair", "fair2", eps, 1000, n=3000, fair=FAIR, fair2=FAIR)
    assert Counter((r.row_action, r.col_action) for r in res) == {("cooperate", "cooperate"): 3000}


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.5])
def test_fairbot_vs_defectbot_cooperates_with_probability_eps(games, eps):
    res = trials(games["prisoners_dilemma"], "fair", "defect", eps, 1000, fair=FAIR, defect={"strategy": "defect"})
    k = sum(r.row_action == "cooperate" for r in res)
    assert within(k, N, eps), k / N
    assert all(r.col_action == "defect" for r in res)


def test_fairbot_vs_cooperatebot_always_cooperates(games):
    res = trials(games["prisoners_dilemma"], "fair", "coop", 0.1, 1000, fair=FAIR, coop={"strategy": "cooperate"})
    assert all(r.row_action == "cooperate" for r in res)


@pytest.mark.parametrize("eps,p", [(0.2, 0.3), (0.1, 0.5), (0.5, 0.9)])
def test_fairbot_vs_randombot(games, eps, p):
    res = trials(games["prisoners_dilemma"], "fair", "rand", eps, 1000, fair=FAIR,
                 rand={"strategy": "random", "params": {"p": p}})
    k = sum(r.row_action == "cooperate" for r in res)
    assert within(k, N, eps + (1 - eps) * p), k / N
    # RandomBot itself: P(C) = p
    assert within(sum(r.col_action == "cooperate" for r in res), N, p)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_depth_distribution_is_geometric(games, eps):
    # FairBot vs FairBot, no effective cap: the row decision's leaf is at depth k w.p. (1-eps)^k eps.
    res = trials(games["prisoners_dilemma"], "fair", "fair2", eps, 100_000, fair=FAIR, fair2=FAIR)
    leaf_depths = Counter(row_chain(r)[-1].depth for r in res)
    for k in range(6):
        p = (1 - eps) ** k * eps
        assert within(leaf_depths[k], N, p), (k, leaf_depths[k] / N, p)


def row_chain(result):
    """The row decision's chain: the nodes before the second root (the column decision's)."""
    second_root = next(n.index for n in result.nodes if n.parent is None and n.index > 0)
    return result.nodes[:second_root]


@pytest.mark.parametrize("eps", [0.1, 0.25])
def test_mean_nodes_per_decision_is_one_over_eps(games, eps):
    res = trials(games["prisoners_dilemma"], "fair", "fair2", eps, 100_000, fair=FAIR, fair2=FAIR)
    sizes = [len(row_chain(r)) for r in res]
    mean = sum(sizes) / N
    sd = math.sqrt(1 - eps) / eps  # geometric on {1,2,...}: Var = (1-eps)/eps^2
    assert abs(mean - 1 / eps) <= 4 * sd / math.sqrt(N), mean


@pytest.mark.parametrize("eps,cap", [(0.2, 3), (0.1, 5), (0.5, 1)])
def test_depth_cap_truncates_with_probability(games, eps, cap):
    res = trials(games["prisoners_dilemma"], "fair", "fair2", eps, cap, fair=FAIR, fair2=FAIR)
    capped = sum(row_chain(r)[-1].mode == CAPPED for r in res)
    assert within(capped, N, (1 - eps) ** cap), capped / N
    assert max(n.depth for r in res for n in r.nodes) == cap


def test_cap_zero_grounds_immediately(games):
    res = trials(games["prisoners_dilemma"], "fair", "defect", 0.5, 0, n=100, fair=FAIR, defect={"strategy": "defect"})
    assert all(r.row_action == "cooperate" and len(r.nodes) == 2 for r in res)
    assert {r.nodes[0].mode for r in res} == {CAPPED}


def test_program_epsilon_overrides_tournament_epsilon(games):
    res = trials(games["prisoners_dilemma"], "fair", "defect", 0.9, 1000, fair={**FAIR, "epsilon": 0.1},
                 defect={"strategy": "defect"})
    assert within(sum(r.row_action == "cooperate" for r in res), N, 0.1)


def test_node_structure_of_one_trial(games):
    pd = games["prisoners_dilemma"]
    res = trials(pd, "fair", "defect", 0.2, 1000, n=200, fair=FAIR, defect={"strategy": "defect"})
    r = next(r for r in res if r.row_action == "defect")  # fairbot simulated: 2 nodes row side + 1 col
    assert [(n.index, n.parent, n.side, n.depth, n.program, n.mode, n.action) for n in r.nodes] == [
        (0, None, "row", 0, "fair", SIMULATED, "defect"),
        (1, 0, "col", 1, "defect", DIRECT, "defect"),
        (2, None, "col", 0, "defect", DIRECT, "defect"),
    ]
    g = next(r for r in res if r.row_action == "cooperate")
    assert [(n.mode, n.action) for n in g.nodes] == [(GROUNDED, "cooperate"), (DIRECT, "defect")]
    assert (g.row_payoff, g.col_payoff, g.cooperative) == (0.0, 5.0, False)


def test_cliquebot_cooperates_only_with_identical_source(games):
    programs, agents = bots(c1={"strategy": "cliquebot"}, c2={"strategy": "cliquebot"}, fair=FAIR)
    pd = games["prisoners_dilemma"]
    a = agents["c1"]
    assert a.ground(pd, programs["c2"], 0.5) == "cooperate"  # different id, same source
    assert a.ground(pd, programs["fair"], 0.5) == "defect"
    eps_variant = BuiltinProgram(id="c3", kind="builtin", strategy="cliquebot", epsilon=0.3)
    assert a.ground(pd, eps_variant, 0.5) == "defect"


def test_same_seed_same_trials_and_order_independent(games):
    pd = games["prisoners_dilemma"]
    programs, agents = bots(fair=FAIR, rand={"strategy": "random"}, defect={"strategy": "defect"})
    cfg = TournamentConfig(programs=list(programs), games=["prisoners_dilemma"], epsilons=[0.3], max_depths=[20],
                           trials=50, seed=42)
    specs = list(cfg.iter_specs())

    def signature(results):
        return {r.spec.seq: [(n.mode, n.action, n.depth) for n in r.nodes] for r in results}

    forward = signature(run_trial_sync(s, pd, agents, programs) for s in specs)
    shuffled = specs[:]
    random.Random(0).shuffle(shuffled)
    assert signature(run_trial_sync(s, pd, agents, programs) for s in shuffled) == forward
    other_seed = TournamentConfig(**{**cfg.model_dump(), "seed": 43})
    assert signature(run_trial_sync(s, pd, agents, programs) for s in other_seed.iter_specs()) != forward


def test_async_path_matches_sync_path(games):
    pd = games["prisoners_dilemma"]
    programs, agents = bots(fair=FAIR, rand={"strategy": "random"})
    cfg = TournamentConfig(programs=list(programs), games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10],
                           trials=30, seed=3)

    async def run_all():
        return [await run_trial_async(s, pd, agents, programs) for s in cfg.iter_specs()]

    a = asyncio.run(run_all())
    s = [run_trial_sync(x, pd, agents, programs) for x in cfg.iter_specs()]
    assert [[(n.mode, n.action) for n in r.nodes] for r in a] == [[(n.mode, n.action) for n in r.nodes] for r in s]


def test_plan_draws_no_program_actions(games):
    programs, agents = bots(fair=FAIR, fair2=FAIR)
    cfg = TournamentConfig(programs=["fair", "fair2"], games=["prisoners_dilemma"], epsilons=[0.3], max_depths=[5], trials=1)
    nodes, row, col = plan(next(cfg.iter_specs()), agents)
    assert all(n.action is None for n in nodes) and row[0].index == 0 and col[0].index == len(row)


@pytest.mark.parametrize("eps,cap", [(0.2, 50), (0.3, 4)])
def test_expected_nodes_formula_matches_simulation(games, eps, cap):
    own, other = expected_nodes((True, True), (eps, eps), cap)
    res = trials(games["prisoners_dilemma"], "fair", "fair2", eps, cap, fair=FAIR, fair2=FAIR)
    sizes = [len(row_chain(r)) for r in res]
    assert abs(sum(sizes) / N - (own + other)) < 0.05 * (own + other)
    assert expected_nodes((True, False), (0.2, 0.2), 10) == (1.0, 0.8)


def test_seat_aware_default_coordinates_on_an_asymmetric_optimum(games):
    """The penalty game with default_action {row: a, col: c}: grounded cooperators play their own seat's
    action, so they meet at the off-diagonal optimum (a, c) instead of the penalty (a, a); simulated
    nodes ground in the seat they are simulated in. Sync and async paths agree."""
    pen = type(games["penalty"]).model_validate({**games["penalty"].model_dump(), "default_action": {"row": "a", "col": "c"}})
    coop = trials(pen, "coop", "coop2", 0.5, 10, n=50, coop={"strategy": "cooperate"}, coop2={"strategy": "cooperate"})
    assert {(r.row_action, r.col_action, r.row_payoff) for r in coop} == {("a", "c", 10.0)}
    grounded = trials(pen, "fair", "fair2", 0.5, 0, n=50, fair=FAIR, fair2=FAIR)  # cap 0: both ground at once
    assert {(r.row_action, r.col_action) for r in grounded} == {("a", "c")}
    # cap 1: every leaf (grounded or capped) plays its own seat's default; a top-level FairBot that simulated
    # copies its opponent grounded in the other seat (row copies c, col copies a)
    capped = trials(pen, "fair", "fair2", 0.01, 1, n=200, fair=FAIR, fair2=FAIR)
    leaves = [n for r in capped for n in r.nodes if n.mode != "simulated"]
    assert {(n.side, n.action) for n in leaves} == {("row", "a"), ("col", "c")}
    assert Counter((r.row_action, r.col_action) for r in capped).most_common(1)[0][0] == ("c", "a")
    rand = trials(pen, "coop", "rand", 0.5, 10, n=50, coop={"strategy": "cooperate"},
                  rand={"strategy": "random", "params": {"p": 1.0}})
    assert {r.col_action for r in rand} == {"c"}
    programs, agents = bots(fair=FAIR, rand={"strategy": "random"})
    cfg = TournamentConfig(programs=list(programs), games=["penalty"], epsilons=[0.3], max_depths=[6], trials=30, seed=5)

    async def run_all():
        return [await run_trial_async(s, pen, agents, programs) for s in cfg.iter_specs()]

    a = asyncio.run(run_all())
    s = [run_trial_sync(x, pen, agents, programs) for x in cfg.iter_specs()]
    assert [[(n.mode, n.action) for n in r.nodes] for r in a] == [[(n.mode, n.action) for n in r.nodes] for r in s]
