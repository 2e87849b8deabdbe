"""A condition's game with its match rules: 'prisoners_dilemma (10 rounds, noise 0.1)' (a one-shot trial's
condition keeps the game's id). The analysis groups on the rules and names conditions this way; the app
finds a condition's trials back from the name (`condition_where`)."""

from __future__ import annotations

from arena.engine.cells import condition_game  # noqa: F401  (the analysis names conditions so)


def base_game(label: str) -> str:
    """The game id of a condition's game."""
    return label.split(" (", 1)[0]


def split_condition_game(label: str) -> tuple[str, int, float | None, float, int | None]:
    """condition_game's inverse: (game, rounds, continuation, noise, recall)."""
    game, _, rules = label.partition(" (")
    rounds, cont, noise, recall = 1, None, 0.0, None
    for part in rules.rstrip(")").split(", ") if rules else []:
        if part.startswith("P="):
            cont = float(part[2:])
        elif part.endswith(("rounds", "round")):
            rounds = int(part.split()[0])
        elif part.startswith("noise "):
            noise = float(part[6:])
        elif part.startswith("recall "):
            recall = int(part[7:])
    return game, rounds, cont, noise, recall


def condition_where(label: str) -> tuple[str, tuple]:
    """SQL (over trials) selecting a condition's game and match rules, and its parameters."""
    game, rounds, cont, noise, recall = split_condition_game(label)
    return ("game=? AND rounds=? AND coalesce(continuation, -1.0) = coalesce(?, -1.0) AND noise=? "
            "AND coalesce(recall, -1) = coalesce(?, -1)", (game, rounds, cont, noise, recall))
