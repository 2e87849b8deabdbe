"""A match's rounds as one line: each round's played actions (first letters), noise flips marked, the
selected round in reverse. Shown above the simulation tree (Live, a trial of Results); display only."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def round_cells(rounds: list) -> list[tuple[str, bool, bool]]:
    """(label, cooperative, flipped) per round (stored rows or the engine's RoundRecords): 'C/D' from the
    played actions' first letters."""
    out = []
    for r in rounds:
        get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k)
        a, b = get("row_action"), get("col_action")
        flipped = get("row_intended") != a or get("col_intended") != b
        out.append((f"{a[:1].upper()}/{b[:1].upper()}", bool(get("cooperative")), flipped))
    return out


def timeline_text(rounds: list[dict], selected: int | None, width: int, heat_style) -> Text:
    """The rounds that fit `width`, a window around the selected one; '*' marks a round with a flipped action."""
    cells = round_cells(rounds)
    if not cells:
        return Text("no round played yet", style="dim")
    sel = len(cells) - 1 if selected is None else min(selected, len(cells) - 1)
    size = 7  # "12 C/D " and a flip mark
    fit = max(1, (width - 14) // size)
    lo = max(0, min(sel - fit // 2, len(cells) - fit))
    text = Text(f"round {sel + 1}/{len(cells)} ", style="bold")
    if lo:
        text.append("… ", style="dim")
    for i in range(lo, min(len(cells), lo + fit)):
        label, coop, flipped = cells[i]
        style = heat_style(1.0 if coop else 0.0) + (" reverse" if i == sel else "")
        text.append(f"{i + 1} ", style="dim")
        text.append(label + ("*" if flipped else ""), style=style)
        text.append(" ")
    if lo + fit < len(cells):
        text.append("…", style="dim")
    return text


class Timeline(Static):
    """The rounds of the match shown; `show` redraws it."""

    DEFAULT_CSS = "Timeline { height: 3; }"

    def show(self, rounds: list[dict], selected: int | None, heat_style) -> None:
        self._last = (rounds, selected, heat_style)
        self.update(timeline_text(rounds, selected, max(20, self.size.width - 2), heat_style))

    def on_resize(self) -> None:
        last = getattr(self, "_last", None)
        if last is not None:
            self.show(*last)


def grid_text(state: dict) -> Text:
    """A grid world's step as the row seat saw it (a stored round's parsed state): R and C the row and column
    agents with their levels, food as its level, '·' an empty cell."""
    h, w = state["field_size"]
    cells = [["·"] * w for _ in range(h)]
    for f in state.get("foods", []):
        r, c = f["pos"]
        cells[r][c] = str(f["level"])
    for a in state.get("agents", []):
        r, c = a["pos"]
        cells[r][c] = ("R" if a["me"] else "C") + str(a["level"])
    text = Text()
    for i, row in enumerate(cells):
        for x in row:
            style = "bold" if x[0] in "RC" else ("yellow" if x != "·" else "dim")
            text.append(f"{x:>3}", style=style)
        if i < h - 1:
            text.append("\n")
    return text
