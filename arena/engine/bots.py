"""Built-in bots: pure functions of (game, own program, opponent, a uniform draw, simulated action, and
in a repeated game the rounds so far it is shown: `spec.play.window()`, read from the node's seat).

Each bot is an Agent for the simulator. Bots are synchronous and cheap; the simulator runs them on a
fast path without an event loop.
"""

from __future__ import annotations

from arena.engine.code import ProgramFailed
from arena.engine.disclosure import shown
from arena.library.games import Game
from arena.library.programs import BuiltinProgram, LLMProgram


class BotAgent:
    """The runtime form of a BuiltinProgram."""

    is_async = False
    __slots__ = ("program", "epsilon", "simulates", "ground", "respond", "_action", "_p", "_axelrod", "_h")

    def __init__(self, program: BuiltinProgram):
        self.program = program
        self.epsilon = program.epsilon
        self.simulates = program.strategy == "fairbot"
        self._action = program.params.get("action")
        self._p = program.params.get("p", 0.5)
        self._h = program.params.get("h")
        # The simulator calls these two: ground(game, opp, u, [spec, node]) and
        # respond(game, opp, u, opp_action, [spec, node]), `u` being the node's own uniform draw in [0, 1).
        # They are bound straight to the strategy: a built-in tournament makes ~10^5 calls a second.
        self._axelrod = None
        if program.strategy == "axelrod":  # Axelrod's strategies (the package is imported at the first decision)
            from arena.engine.axelrod_agent import AxelrodStrategy

            self._axelrod = AxelrodStrategy(program)
            self.ground = self._axelrod.ground
        else:
            self.ground = getattr(self, f"_ground_{program.strategy}")
        self.respond = self._respond_copy if self.simulates else self._respond_never

    # --- strategies ----------------------------------------------------------------------------
    def _ground_cooperate(self, game: Game, opp: BuiltinProgram | LLMProgram, u: float, spec=None, node=None) -> str:
        return self._action or game.default_for(_seat(node))

    def _ground_defect(self, game: Game, opp, u: float, *_) -> str:
        return self._action or game.defect_action

    def _ground_random(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        return random_action(game, self._p, u, _seat(node))

    def _ground_fairbot(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        # grounded in a repeated game: the history-aware default (TitForTat's answer)
        return self._ground_titfortat(game, opp, u, spec, node)

    # --- repeated games: the rounds shown to this seat (engine RoundRecords, read from the seat) -------
    def _ground_titfortat(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        w = _window(spec)
        if not w:
            return game.default_for(_seat(node))
        last = w[-1]
        return last.col_action if _seat(node) == "row" else last.row_action

    def _ground_grimtrigger(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        bad = game.defect_action
        w = _window(spec)
        if w:
            if _seat(node) == "row":
                if any(r.col_action == bad for r in w):
                    return bad
            elif any(r.row_action == bad for r in w):
                return bad
        return game.default_for(_seat(node))

    def _ground_pavlov(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        w = _window(spec)
        if not w or w[-1].row_action == w[-1].col_action:
            return game.default_for(_seat(node))
        return game.defect_action

    def _ground_titfortwotats(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        w = _window(spec)
        bad = game.defect_action
        if len(w) >= 2:
            theirs = (w[-1].col_action, w[-2].col_action) if _seat(node) == "row" else (w[-1].row_action, w[-2].row_action)
            if theirs == (bad, bad):
                return bad
        return game.default_for(_seat(node))

    def _ground_alternator(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        w = _window(spec)
        seat = _seat(node)
        default = game.default_for(seat)
        if w:
            last_default = (w[-1].row_action if seat == "row" else w[-1].col_action) == default
        else:  # nothing shown (the first round, or recall 0): by the round's parity
            last_default = spec is not None and spec.seen_play.round % 2 == 1
        return game.defect_action if last_default else default

    def _ground_cliquebot(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        if spec is None or spec.disclosure.full:
            same = opp.kind == "builtin" and opp.source() == self.program.source()
        else:  # what it is shown of the opponent (engine/disclosure.py): its description, when shown
            same = shown(opp, spec.disclosure, spec.seed, for_code=False) == self.program.source()
        return game.default_for(_seat(node)) if same else game.defect_action

    def _ground_uniform(self, game: Game, opp, u: float, *_) -> str:
        acts = game.actions
        return acts[min(int(u * len(acts)), len(acts) - 1)]

    def _ground_lbf_heuristic(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        play = spec.play if spec is not None else None
        if play is None or play.state is None:
            raise ProgramFailed(f"program '{self.program.id}' plays Level-Based Foraging games only")
        return heuristic(self._h, play.state[0 if _seat(node) == "row" else 1], u)

    def _respond_copy(self, game: Game, opp, u: float, opp_action: str, *_) -> str:
        return opp_action

    def _respond_never(self, game: Game, opp, u: float, opp_action: str, *_) -> str:
        raise TypeError(f"program '{self.program.id}' never simulates, so it has nothing to respond to")

    def check_game(self, game: Game) -> str | None:
        """Why this bot cannot play `game`, or None if it can."""
        if self._axelrod is not None:
            return self._axelrod.check_game(game)
        action = self.program.params.get("action")
        if self.program.strategy == "lbf_heuristic" and not game.markov:
            return f"program '{self.program.id}' plays Level-Based Foraging games only, not '{game.id}'"
        if action is not None and action not in game.actions:
            return f"program '{self.program.id}' plays '{action}', which is not an action of game '{game.id}' {game.actions}"
        return None


def _window(spec) -> tuple:
    """The rounds so far shown to the programs (none in a one-shot game), as RoundRecords."""
    if spec is None or spec.play is None:
        return ()
    return spec.play.window()


def _seat(node) -> str:
    """The seat a node plays in (its side of the game), 'row' without a node."""
    return node.side if node is not None else "row"


def random_action(game: Game, p: float, u: float, seat: str = "row") -> str:
    """The seat's default action with probability p, else one of the others uniformly, from one draw u."""
    default = game.default_for(seat)
    if u < p:
        return default
    others = [a for a in game.actions if a != default]
    k = int((u - p) / (1 - p) * len(others)) if p < 1 else 0
    return others[min(k, len(others) - 1)]


# --- Level-Based Foraging: the lbforaging package's heuristic agents H1..H4 ---------------------------
# lbforaging 2.0.0's own agent classes cannot be imported (lbforaging/agents/heuristic_agent.py imports
# `foraging.environment`, a module that does not exist) and draw from the global `random` module; these
# are their step rules, read from a seat's view (engine/lbf.py), the random fallback drawn from the node's u.
def _closest(foods: list[dict], start: tuple[float, float], max_level: int | None) -> tuple[int, int] | None:
    """The food nearest `start` (squared distance; ties: the first in row-major order, as numpy's argmin
    over np.nonzero), among those of level <= max_level when given (the package's `if max_food_level:`)."""
    best, where = None, None
    for f in foods:  # the view's foods are in np.nonzero order
        if max_level and f["level"] > max_level:
            continue
        r, c = f["pos"]
        d = (r - start[0]) ** 2 + (c - start[1]) ** 2
        if best is None or d < best:
            best, where = d, (r, c)
    return where


def heuristic(h: int, view: dict, u: float) -> str:
    """H<h>'s action in a view."""
    valid = view["valid_actions"]
    me = next(a for a in view["agents"] if a["me"])
    y, x = me["pos"]
    if h in (2, 4):
        n = len(view["agents"])
        centre = (round(sum(a["pos"][0] for a in view["agents"]) / n), round(sum(a["pos"][1] for a in view["agents"]) / n))
    target = _closest(view["foods"], (y, x) if h in (1, 3) else centre,
                      me["level"] if h == 3 else sum(a["level"] for a in view["agents"]) if h == 4 else None)
    if target is not None:
        r, c = target
        if abs(r - y) + abs(c - x) == 1:
            return "load"
        if r < y and "north" in valid:
            return "north"
        if r > y and "south" in valid:
            return "south"
        if c > x and "east" in valid:
            return "east"
        if c < x and "west" in valid:
            return "west"
    return valid[min(int(u * len(valid)), len(valid) - 1)]
