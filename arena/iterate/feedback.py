"""Feedback for the writer: unit tests (validation and smoke calls) and utility (the trials played)."""

from __future__ import annotations

from pathlib import Path

from arena.engine.records import TrialResult
from arena.engine.sandbox import Sandbox
from arena.engine.smoke import smoke_problems
from arena.errors import ConfigError
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


def utilities(results: list[TrialResult]) -> tuple[float, float]:
    """Mean payoffs (row, col); a trial without payoffs counts 0."""
    n = max(len(results), 1)
    return (sum(r.row_payoff or 0.0 for r in results) / n, sum(r.col_payoff or 0.0 for r in results) / n)


def invalid_text(errors: list[str]) -> str:
    return ("Your program failed its unit tests, so it earns nothing:\n" + "\n".join(f"- {e}" for e in errors)
            + "\nFix it and reply with the whole program.")


def utility_text(results: list[TrialResult], seat: str, best: float | None) -> str:
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
    u = utilities(results)
    lines.append(f"Mean utility: you {u[me]:.3g}, opponent {u[them]:.3g}, both together (social welfare) "
                 f"{u[0] + u[1]:.3g}.")
    if best is not None:
        lines.append(f"Your best mean utility so far: {best:.3g}.")
    lines.append("Improve your program to raise your mean utility; reply with the whole program.")
    return "\n".join(lines)
