"""Formatting of numbers, durations and conditions for display (no computation of results here)."""

from __future__ import annotations

from pathlib import Path

import math


def pct(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def interval(low: float | None, high: float | None) -> str:
    """A share's interval in percent: '44.1–85.9'."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    return f"{100 * low:.1f}–{100 * high:.1f}"


def num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def count(n: float) -> str:
    """1,234 / 12.3k / 4.5M: short counts for headers."""
    if n < 10_000:
        return f"{n:,.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def rate(x: float) -> str:
    """Three significant digits: 0.412 / 12.3 / 10,500."""
    if x <= 0:
        return "0"
    if x < 1:
        return f"{x:.3f}"
    if x < 100:
        return f"{x:.3g}" if x >= 10 else f"{x:.2f}"
    digits = len(str(int(x)))
    return f"{round(x, 3 - digits):,.0f}"


def duration(s: float | None) -> str:
    """0:42 / 12:03 / 3:04:05; '–' when unknown."""
    if s is None or math.isnan(s) or math.isinf(s):
        return "–"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.0f} ms" if x < 1000 else f"{x / 1000:.1f} s"


def temp(t: float | None) -> str:
    return "own" if t is None else f"{t:g}"


def condition(game: str, eps: float, depth: int, temperature: float | None, *, short: bool = False) -> str:
    t = "" if temperature is None else f" · T {temperature:g}"
    if short:
        return f"{game} ε{eps:g} d{depth}{t}"
    return f"{game} · ε {eps:g} · cap {depth}{t}"


def floats(text: str) -> list[float]:
    """'0.1, 0.2 0.5' -> [0.1, 0.2, 0.5] (ValueError on anything else)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return [float(p) for p in parts]


def ints(text: str) -> list[int]:
    parts = [p for p in text.replace(",", " ").split() if p]
    return [int(p) for p in parts]


def ellipsize(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def display_path(path: Path) -> str:
    """A library file as shown: relative to the current folder when it is inside it (programs/fair-llm.yaml),
    else its absolute path, so that the path shown can be opened from where the app was started."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
