"""Feedback for the writer: unit tests (validation and smoke calls) and utility (the trials played)."""

from __future__ import annotations

import re
from pathlib import Path

from arena.engine.records import TrialResult
from arena.engine.sandbox import Sandbox
from arena.engine.smoke import smoke_problems
from arena.iterate import gridworld
from arena.iterate.meanlines import mean_lines
from arena.library.codecheck import check_source
from arena.library.games import Game
from arena.library.programs import CodeProgram, LLMProgram, ProgramEntry

CANDIDATE_FILE = "candidate.py"  # what an error's file:line names (lines are the candidate's own lines)


def code_candidate(pid: str, source: str, game: Game, sandbox: Sandbox) -> tuple[CodeProgram | None, list[str]]:
    """The candidate program, or None with its unit-test errors (each naming its source line)."""
    findings = check_source(source)
    if findings:
        return None, [f"{CANDIDATE_FILE}:{f.line}: {f.message}" for f in findings]
    try:
        prog = CodeProgram(id=pid, kind="code", source=source)
    except ValueError as exc:  # pydantic's ValidationError: too long, empty
        return None, [f"{CANDIDATE_FILE}: {exc}"]
    entry = ProgramEntry(prog, Path(CANDIDATE_FILE), None, 1, source_line=1)
    problems = smoke_problems([entry], [game], sandbox)
    if problems:
        return None, [f"{p.file}:{p.line}: {p.message}" for p in problems]
    return prog, []


def prompt_candidate(pid: str, text: str, model: str) -> tuple[LLMProgram | None, list[str]]:
    try:
        return LLMProgram(id=pid, kind="llm", model=model, system_prompt=text.strip(), temperature=0.7), []
    except ValueError as exc:
        msg = "; ".join(e["msg"] for e in exc.errors(include_url=False)) if hasattr(exc, "errors") else str(exc)
        return None, [f"the system prompt is not usable: {msg}"]


def trial_errors(results: list[TrialResult]) -> list[str]:
    """Distinct errors of the trials (a candidate that fails while playing earns nothing)."""
    seen: list[str] = []
    for r in results:
        if r.error and r.error not in seen:
            seen.append(r.error)
    return seen


def worst_payoffs(game: Game) -> tuple[float, float]:
    """Each seat's lowest payoff in the game: what an episode that ended in an error scores (a grid world:
    the lowest return, iterate/gridworld.py)."""
    if game.markov:
        return gridworld.worst_returns(game)
    table = game.payoff_table.values()
    return min(p[0] for p in table), min(p[1] for p in table)


def utilities(results: list[TrialResult], game: Game) -> tuple[float, float]:
    """Mean payoffs (row, col) over all the episodes; one that ended in an error (no payoffs: a program
    failed, an LLM gave no action) scores each seat's worst payoff in the game. Never 0: in a game whose
    payoffs go below 0 that would make an opponent's failure pay, and a failure provoked in the
    opponent would beat playing. A grid world's utility is an episode's return (iterate/gridworld.py)."""
    if game.markov:
        return gridworld.utilities(results, game)
    n = max(len(results), 1)
    worst = worst_payoffs(game)
    row = sum(worst[0] if r.row_payoff is None else r.row_payoff for r in results)
    col = sum(worst[1] if r.col_payoff is None else r.col_payoff for r in results)
    return row / n, col / n


def error_note(results: list[TrialResult], game: Game) -> str | None:
    """How many episodes ended in an error and what they score, with the errors; None when none did."""
    failed = [r for r in results if r.row_payoff is None or r.col_payoff is None]
    if not failed:
        return None
    w = worst_payoffs(game)
    return (f"{len(failed)} of {len(results)} episodes ended in an error (scored the game's worst payoffs, "
            f"{w[0]:g} and {w[1]:g}): " + "; ".join(trial_errors(failed)))


_AT_LINE = re.compile(rf"^{re.escape(CANDIDATE_FILE)}:(\d+): ")


def invalid_text(errors: list[str], source: str | None = None, game: Game | None = None) -> str:
    """The unit tests' errors for the writer. Given the candidate's source and the game (writer version 2),
    each error is followed by the line it names and the feedback ends with what the contract expects."""
    if source is None or game is None:
        return ("Your program failed its unit tests, so it earns nothing:\n" + "\n".join(f"- {e}" for e in errors)
                + "\nFix it and reply with the whole program.")
    lines = source.splitlines()
    out = ["Your program failed its unit tests, so it earns nothing:"]
    for e in errors:
        out.append(f"- {e}")
        m = _AT_LINE.match(e)
        if m and 1 <= int(m.group(1)) <= len(lines) and lines[int(m.group(1)) - 1].strip():
            out.append(f"  line {m.group(1)} is: {lines[int(m.group(1)) - 1].strip()}")
    choices = ", ".join(f'"{a}"' for a in game.actions)
    out.append(f"Expected: only `def decide(ctx):` and its indented body, returning one of {choices} (a string); "
               "no code after the function. Write the whole function again.")
    return "\n".join(out)


def utility_text(results: list[TrialResult], game: Game, seat: str, best: float | None) -> str:
    if game.markov:  # the episodes' trajectories
        return gridworld.utility_text(results, game, seat, best)
    me, them = (0, 1) if seat == "row" else (1, 0)
    lines = [f"Your program passed its unit tests. It played {len(results)} episodes against the opponent's "
             "current program (through the epsilon-grounded simulator):"]
    for k, r in enumerate(results, 1):
        acts = (r.row_action, r.col_action)
        pays = (r.row_payoff, r.col_payoff)
        if acts[0] is None or acts[1] is None:
            lines.append(f"  episode {k}: error: {r.error}")
        else:
            lines.append(f"  episode {k}: you {acts[me]}, opponent {acts[them]}: payoffs you {pays[me]:g}, "
                         f"opponent {pays[them]:g}")
    errors = any(r.row_payoff is None or r.col_payoff is None for r in results)
    lines += mean_lines(utilities(results, game), worst_payoffs(game) if errors else None, me, best,
                        measure="utility", other="opponent", worst_name="the game's worst payoff")
    return "\n".join(lines)
