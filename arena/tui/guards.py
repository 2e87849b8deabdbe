"""When a run is big enough to ask first (Setup's ctrl+r): pure, so the thresholds are tested alone."""

from __future__ import annotations

MAX_TRIALS_UNASKED = 1_000_000  # a run over this many trials asks first
MAX_CALLS_UNASKED = 1_000  # ... or over this many LLM calls (first attempts)
GROWTH_UNASKED = 10  # ... or at least this many times the trials of the last tournament
SMALL_RUN = 10_000  # runs up to this many trials never ask (built-in bots finish them in seconds)


def large_run(trials: int, llm_calls: float, last_trials: int | None) -> str | None:
    """Why a run of `trials` trials and ~`llm_calls` LLM calls needs a confirmation, or None.

    `last_trials` is the size of the most recent stored tournament (None: there is none yet)."""
    reasons = []
    if trials > MAX_TRIALS_UNASKED:
        reasons.append(f"{trials:,} trials (over {MAX_TRIALS_UNASKED:,})")
    elif last_trials and trials > SMALL_RUN and trials >= GROWTH_UNASKED * last_trials:
        reasons.append(f"{trials:,} trials, {trials / last_trials:,.0f}× the last tournament's {last_trials:,}")
    if llm_calls > MAX_CALLS_UNASKED:
        reasons.append(f"≈ {llm_calls:,.0f} LLM calls (over {MAX_CALLS_UNASKED:,})")
    return "; ".join(reasons) or None
