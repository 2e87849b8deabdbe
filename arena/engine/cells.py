"""What a live display counts per cell of a running tournament: one definition for the runner, which sums
its built-in batches before sending them (runner/stream.py), and the app's tally, which adds trials one by
one or merges those sums (analysis/tally.py).

A cell is (game, epsilon, max_depth, temperature, row, col), its game carrying a match's rules and a
disclosure level ("prisoners_dilemma (10 rounds)", as the analysis names conditions); a match counts the share of its
rounds that were cooperative.
"""

from __future__ import annotations

from collections.abc import Iterable

from arena.engine.records import ERROR, OK, ONE_SHOT, REFUSED, TrialResult, TrialSpec

CELL_SUMS = ("trials", "valid", "cooperative", "refused", "errors", "row_payoff", "col_payoff", "calls")


def condition_game(game: str, rounds: int = 1, continuation: float | None = None, noise: float = 0.0,
                   recall: int | None = None, disclosure: str | None = "full") -> str:
    """The game of a condition: the game's id, with its match rules when they are not the one-shot game's and
    its disclosure level when not `full` (e.g. 'prisoners_dilemma (10 rounds, noise 0.1, disclosure none)')."""
    from arena.engine.records import MatchRules

    label = ", ".join(x for x in (MatchRules(rounds, continuation, noise or 0.0, recall).label(),
                                  "" if disclosure in (None, "full") else f"disclosure {disclosure}") if x)
    return f"{game} ({label})" if label else game


def cell_key(spec: TrialSpec) -> tuple:
    m, level = spec.match, spec.disclosure.level
    plain = (m is ONE_SHOT or m.coordinates == ONE_SHOT.coordinates) and level == "full"
    game = spec.game if plain else condition_game(spec.game, *m.coordinates, level)
    return (game, spec.epsilon, spec.max_depth, spec.temperature, spec.row, spec.col)


def add_sums(cells: dict[tuple, list[float]], results: Iterable[TrialResult]) -> None:
    """Add `results` to `cells` (cell_key -> the CELL_SUMS numbers)."""
    n = len(CELL_SUMS)
    for r in results:
        key = cell_key(r.spec)
        c = cells.get(key)
        if c is None:
            c = cells[key] = [0.0] * n
        c[0] += 1
        if r.status == OK:
            c[1] += 1
            c[2] += r.cooperative  # (a match: the share of its cooperative rounds)
            c[5] += r.row_payoff
            c[6] += r.col_payoff
        elif r.status == REFUSED:
            c[3] += 1
        elif r.status == ERROR:
            c[4] += 1
        c[7] += r.n_calls


def cell_sums(results: Iterable[TrialResult]) -> dict[tuple, list[float]]:
    """cell_key -> CELL_SUMS of `results`."""
    cells: dict[tuple, list[float]] = {}
    add_sums(cells, results)
    return cells
