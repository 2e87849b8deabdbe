"""The smoke test of code programs before a tournament (the PIBR papers' "unit tests"): `decide` is
called in every game the program may meet, from both seats, grounded and responding to each action, and
must answer with an action or valid probabilities. A refusal names the file line of the source line
that failed."""

from __future__ import annotations

from arena.engine.code import build_ctx, interpret
from arena.engine.sandbox import Sandbox
from arena.errors import Problem
from arena.library.games import Game
from arena.library.programs import CodeProgram, ProgramEntry


def smoke_problems(entries: list[ProgramEntry], games: list[Game], sandbox: Sandbox | None = None) -> list[Problem]:
    """Problems of the code programs among `entries` when they play `games` (empty: all fine)."""
    code = [e for e in entries if isinstance(e.program, CodeProgram)]
    if not code or not games:
        return []
    own = sandbox is None
    sb = sandbox or Sandbox([e.program for e in code])
    problems: list[Problem] = []
    try:
        for e in code:
            problem = _smoke_one(e, games, sb)
            if problem is not None:
                problems.append(problem)
    finally:
        if own:
            sb.close()
    return problems


def _smoke_one(entry: ProgramEntry, games: list[Game], sb: Sandbox) -> Problem | None:
    prog: CodeProgram = entry.program
    if prog.games is not None:  # written for these games only
        games = [g for g in games if g.id in prog.games]
    cases = []
    for g in games:
        for seat in ("row", "col"):
            answers = [None] + (list(g.actions) if prog.simulates else [])
            base = build_ctx(g, seat, prog, prog, None, 0, 0.0, 0.0)
            first = None
            # the second round of a repeated game, after a round of (first action, last action)
            later = {"round": 1, "rounds": 2, "continuation": None, "state": None,
                     "history": [(g.actions[0], g.actions[-1], 0.0, 0.0)]}
            if g.markov:  # a Markov game's first two states, the first step played as (first, last action)
                from arena.engine.lbf import Environment

                env = Environment(g, 0)
                s0 = env.reset()
                s1 = env.step(g.actions[0], g.actions[-1])[0]
                i = 0 if seat == "row" else 1
                first = {"round": 0, "rounds": g.horizon, "continuation": None, "state": s0[i], "history": []}
                later = {"round": 1, "rounds": g.horizon, "continuation": None, "state": s1[i],
                         "history": [(g.actions[0], g.actions[-1], 0.0, 0.0, s0[i])]}
            for a in answers:
                cases.append((g, seat, a, (base, a, 0 if a is None else 1, 0.1, 0.5, first)))
            cases.append((g, seat, "round 1", (base, None, 0, 0.1, 0.5, later)))
    outcomes = sb.run_many(prog, [c[3] for c in cases])
    for (g, seat, a, _ctx), out in zip(cases, outcomes):
        why = out.error
        if why is None:
            action, why = interpret(out.value, g.actions, 0.5)
        if why is not None:
            line = entry.line
            if entry.source_line is not None:  # the line that raised, else the source's first line
                line = entry.source_line + (out.line or 1) - 1
            case = (f"game '{g.id}' as {seat}, the second round of a repeated game" if a == "round 1" else
                    f"game '{g.id}' as {seat}, opponent_action={a!r}")
            return Problem(str(entry.file), line, "source", f"smoke test failed ({case}): {why}")
    return None
