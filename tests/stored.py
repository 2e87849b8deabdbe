"""Stored tournaments built trial by trial, so that analysis and export tests know every number."""

from __future__ import annotations

from arena.engine.grid import TournamentConfig
from arena.engine.records import DIRECT, GROUNDED, SIMULATED, Node, TrialResult
from arena.runner.tournament import fingerprint

FDC = ["fairbot", "defectbot", "cooperatebot"]
C, D = "cooperate", "defect"


def make_trial(spec, game, row_action, col_action, row_depth=0, col_depth=0, status="ok"):
    """A trial whose row decision simulated down to `row_depth` (0: it did not simulate), and so on."""
    nodes: list[Node] = []

    def chain(side, me, opp, depth, action):
        parent = None
        for d in range(depth + 1):
            who = me if d % 2 == 0 else opp
            where = side if d % 2 == 0 else ("col" if side == "row" else "row")
            mode = SIMULATED if d < depth else (GROUNDED if who == "fairbot" else DIRECT)
            nodes.append(Node(len(nodes), parent, where, d, who, 0.5, mode, action))
            parent = len(nodes) - 1

    chain("row", spec.row, spec.col, row_depth, row_action)
    chain("col", spec.col, spec.row, col_depth, col_action)
    if status != "ok":
        return TrialResult(spec, nodes, row_action, col_action, None, None, None, status, "refused")
    rp, cp = game.payoff(row_action, col_action)
    return TrialResult(spec, nodes, row_action, col_action, rp, cp, game.is_cooperative(row_action, col_action))


def make_tournament(store, program_lib, game_lib, **kw):
    cfg = TournamentConfig(**{"programs": FDC, "games": ["prisoners_dilemma"], "epsilons": [0.1], "max_depths": [10],
                              "trials": 10, "seed": 1, **kw})
    progs = [program_lib[p] for p in cfg.programs]
    gs = [game_lib[g] for g in cfg.games]
    tid = store.create_tournament(cfg, progs, gs, cfg.total_trials, "test", fingerprint(cfg, progs, gs))
    return tid, cfg


def fdc_trial(spec, game):
    """FairBot / DefectBot / CooperateBot at ε = 0.1, with the analytic frequencies exactly: FairBot
    grounds (cooperates, no simulation) in trial 0 of each cell and simulates its opponent otherwise."""
    i = spec.index
    fair_grounded = i == 0

    def fair_vs(opp, other_action):  # FairBot's action and chain depth against `opp`
        if opp == "fairbot":
            return C, i  # vs itself: always cooperates; its chain reaches depth i
        return (C, 0) if fair_grounded else (other_action, 1)

    fixed = {"defectbot": D, "cooperatebot": C}
    r, c = spec.row, spec.col
    if r == c == "fairbot":
        return make_trial(spec, game, C, C, row_depth=i, col_depth=(i + 1) % 10)
    if r == "fairbot":
        a, depth = fair_vs(c, fixed[c])
        return make_trial(spec, game, a, fixed[c], row_depth=depth)
    if c == "fairbot":
        a, depth = fair_vs(r, fixed[r])
        return make_trial(spec, game, fixed[r], a, col_depth=depth)
    return make_trial(spec, game, fixed[r], fixed[c])
