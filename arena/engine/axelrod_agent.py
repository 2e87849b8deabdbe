"""The agent of an Axelrod program (`axelrod:NAME`, library/axelrod_programs.py): Axelrod's strategy NAME
playing a 2-action game, C being the seat's cooperative (default) action and D the game's defect action.

A decision is a pure function of what the node is shown (the rounds `Play.seen(seat)` gives: `recall`
applies), the trial's seed and the seat: a fresh axelrod Player replays the rounds shown as an
`axelrod.Match` would have played them (its `strategy(opponent)` asked each round, its answer dropped,
then both histories updated with the actions as played, noise included), then is asked for this round.
Its random draws come from its own generator, seeded from (trial seed, seat, name): the replay repeats
the draws of the rounds before, so a stochastic strategy has the same internal state it would have in a
real Axelrod match, and answers what a player of that match would. The node's own draw `u` is not used,
and the program never simulates (mode DIRECT).

Replaying from the start makes a match quadratic in its rounds; the player of the last decision is kept
(keyed by everything the decision depends on) and carried one round further when the next decision
extends its history by one round, which gives the same answers in linear time.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from arena.engine.code import ProgramFailed
from arena.engine.records import FIRST_ROUND
from arena.errors import ArenaError
from arena.library.axelrod_programs import axelrod, strategy_class
from arena.library.games import Game
from arena.library.programs import BuiltinProgram

KEEP = 1024  # players kept to carry on (one per match and seat under way: a batch holds up to 500 matches)


def player_seed(trial_seed: int, seat: str, name: str) -> int:
    """The seed of the Axelrod player in one seat of one trial (numpy's generators take 32 bits)."""
    digest = hashlib.blake2b(f"{trial_seed}|axelrod|{seat}|{name}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def payoffs_rpst(game: Game, seat: str, c: str, d: str) -> tuple[float, float, float, float]:
    """The seat's own (R, P, S, T): its payoff for (C, C), (D, D), (C against D), (D against C)."""
    table = game.payoff_table

    def mine(a: str, b: str) -> float:
        return table[(a, b)][0] if seat == "row" else table[(b, a)][1]

    return mine(c, c), mine(d, d), mine(c, d), mine(d, c)


class AxelrodStrategy:
    """Axelrod's strategy `program.params['name']` as the ground() of a BotAgent."""

    __slots__ = ("program", "name", "_players")

    def __init__(self, program: BuiltinProgram):
        self.program = program
        self.name = program.params["name"]
        # (seed, attributes, history shown) -> (player, opponent shell, its answer): the player as it stands
        # after answering that history
        self._players: OrderedDict[tuple, tuple] = OrderedDict()

    def check_game(self, game: Game) -> str | None:
        """Why this program cannot play `game` (not 2 actions; the package or the strategy missing), or None."""
        pid = self.program.id
        if len(game.actions) != 2:
            return (f"program '{pid}' is Axelrod's {self.name}, which plays 2-action games only (C and D): game "
                    f"'{game.id}' has {len(game.actions)} actions {game.actions}")
        for seat in ("row", "col"):
            if game.default_for(seat) == game.defect_action:
                return (f"program '{pid}' is Axelrod's {self.name}, which needs a cooperative action (C) other than "
                        f"the defect action (D): in game '{game.id}' the {seat} seat's default action is its "
                        f"defect action '{game.defect_action}'")
        try:
            strategy_class(self.name)
        except ArenaError as exc:
            return f"program '{pid}': {exc}"
        return None

    def ground(self, game: Game, opp, u: float, spec=None, node=None) -> str:
        seat = node.side if node is not None else "row"
        play = spec.seen_play if spec is not None else FIRST_ROUND
        seen = play.seen(seat)
        c, d = game.default_for(seat), game.defect_action
        shown = tuple((r["me"] == c, r["opponent"] == c) for r in seen)  # True: C
        horizon = play.rounds
        # the match's length as this player knows it: the rounds it is shown and the rounds left
        length = float("inf") if horizon is None else len(seen) + horizon - play.round
        base = (player_seed(spec.seed if spec is not None else 0, seat, self.name), length, play.rules.noise,
                payoffs_rpst(game, seat, c, d))
        return c if self._answer(base, shown) else d

    def _answer(self, base: tuple, shown: tuple) -> bool:
        """Whether the player cooperates after the rounds `shown` ((mine, theirs) pairs, True: C)."""
        players = self._players
        key = (base, shown)
        kept = players.get(key)
        if kept is not None:
            players.move_to_end(key)
            return kept[2]
        before = (base, shown[:-1]) if shown else None
        if before is not None and before in players:
            me, them, _ = players.pop(before)
            self._update(me, them, shown[-1])
        else:
            me, them = self._fresh(base)
            for played in shown:
                self._strategy(me, them)
                self._update(me, them, played)
        answer = self._strategy(me, them)
        players[key] = (me, them, answer)
        if len(players) > KEEP:
            players.popitem(last=False)
        return answer

    def _fresh(self, base: tuple):
        axl = axelrod()
        seed, length, noise, (r, p, s, t) = base
        game = axl.Game(r=r, s=s, t=t, p=p)
        me = strategy_class(self.name)()
        me.set_match_attributes(length=length, game=game, noise=noise)
        me.set_seed(seed)
        them = axl.Player()  # the opponent as Axelrod's strategies see it: a history
        them.set_match_attributes(length=length, game=game, noise=noise)
        return me, them

    @staticmethod
    def _update(me, them, played: tuple[bool, bool]) -> None:
        axl = axelrod()
        mine, theirs = (axl.Action.C if x else axl.Action.D for x in played)
        me.update_history(mine, theirs)
        them.update_history(theirs, mine)

    def _strategy(self, me, them) -> bool:
        try:
            action = me.strategy(them)
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
            raise ProgramFailed(f"Axelrod's {self.name} failed: {type(exc).__name__}: {exc}") from None
        return action == axelrod().Action.C
