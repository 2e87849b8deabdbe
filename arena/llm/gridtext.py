"""What an LLM program is told of a grid world's step (Level-Based Foraging, engine/lbf.py): the field drawn as
a small text grid, the parsed lists (agents with pos/level/me, foods with pos/level, field size, step and
horizon), the six actions by name with what each does and which are valid now, and the last steps shown (joint
actions and rewards). Everything comes from the round's `Play` and the seat, so a replay rebuilds the same
text from the stored state.
"""

from __future__ import annotations

import json

from arena.engine.lbf import grid_text
from arena.engine.records import Play
from arena.library.games import Game

ACTION_MEANINGS = {"none": "stay where you are", "north": "move up (row - 1)", "south": "move down (row + 1)",
                   "west": "move left (column - 1)", "east": "move right (column + 1)",
                   "load": "collect a food in a cell next to you (up, down, left or right)"}


def rewards_text(game: Game) -> str:
    """The grid world's outcomes, in place of a payoff table: rewards come from the environment each step."""
    text = ("there is no payoff table: each step the environment moves both agents and pays a reward when a food "
            "is collected (the game's description above gives the rules). Your payoff is the sum of your rewards "
            "over the episode.")
    c = getattr(game, "terminal_penalty", None)
    if c:
        text += (f" At the episode's last step each agent loses {c:g} x (steps taken / {game.horizon}): "
                 "collecting all the food quickly is best.")
    return text


def _parsed(view: dict) -> str:
    data = {"agents": view["agents"], "foods": view["foods"], "field_size": view["field_size"],
            "step": view["step"], "max_steps": view["max_steps"]}
    return json.dumps(data, separators=(", ", ": "))


def step_text(play: Play, side: str) -> str:
    """A grid world's step for one seat: where it is in the episode, the field as a grid, the parsed state, the
    actions (meanings, the valid ones), and the last steps it is shown (steps numbered from 1)."""
    view = play.state[0] if side == "row" else play.state[1]
    t = play.round + 1
    lines = [f"This is step {t} of at most {view['max_steps']} (the episode ends earlier when all the food is "
             "collected). The field now, row 0 at the top and column 0 at the left ('.' empty, a digit a food "
             "of that level, A you, B the other agent):",
             grid_text(view),
             f"The same state as data (positions are [row, column]): {_parsed(view)}",
             "Actions: " + "; ".join(f"{a}: {m}" for a, m in ACTION_MEANINGS.items()) + ".",
             "Valid for you now: " + ", ".join(view["valid_actions"]) + " (an invalid action does nothing)."]
    seen = play.seen(side)
    if not seen:
        lines.append("No earlier step is shown to you." if play.round else "It is the first step.")
        return "\n".join(lines)
    first = play.round - len(seen) + 1
    lines += [f"The last {len(seen)} step(s), oldest first (actions as played):",
              "step | you | other agent | your reward | other's reward"]
    lines += [f"{first + i} | {r['me']} | {r['opponent']} | {r['my_payoff']:g} | {r['opponent_payoff']:g}"
              for i, r in enumerate(seen)]
    return "\n".join(lines)
