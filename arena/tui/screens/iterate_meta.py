"""What the iterate run's view (iterate_run.py) shows of a meta-rounds run, from its state
(iterate_session.MetaState): the header, a row per seat and meta-round (the program it played, whether its
writer failed, its attempts, its payoff per round), the selected program's attempts (the writer's message,
the code highlighted, the checks' errors and the feedback sent back), the conversation of its last attempt
and the payoff of each seat per meta-round for the plot. Plain functions of the state, returning rich text.
"""

from __future__ import annotations

import re

from rich.text import Text

from ..codeview import highlighted


def without_code(reply: str) -> str:
    """A writer's reply with its fenced code blocks left out (the code is shown highlighted below)."""
    text = re.sub(r"```[^\n]*\n.*?(```|\Z)", "[code below]", reply, flags=re.S)
    return text.strip()


COLUMNS = (("mr", "mr"), ("seat", "seat"), ("ok", "ok"), ("try", "try"), ("pay", "pay"))


def _persona(c: dict, seat: str) -> str:
    p = c.get(f"persona_{seat}")
    return p["name"] if p else "pm"


def head(state, run_id: int, mode: str, status: Text) -> tuple[Text, Text]:
    """The header's two lines: the run, its status, game, personas, the match (rounds or continuation) ×
    matches per meta-round; then the current meta-round of K and what is happening in it (or how the
    run ended), and the writers."""
    c = state.config
    horizon = f"p {c['continuation']:g}" if c.get("continuation") is not None else f"{c['rounds']} rounds"
    writers = c["model"] + (f" / {c['model_col']}" if c.get("model_col") else "")
    first = Text.assemble(f"run {run_id} ", status, mode,
                          f" · {c['game']} · {_persona(c, 'row')} vs {_persona(c, 'col')} · {horizon} × "
                          f"{c['episodes']}",
                          no_wrap=True, overflow="ellipsis")
    now = state.current()
    seeds = state.seeds
    where = "" if now is None else (f"seed {now[0]} · " if len(seeds) > 1 else "") + \
        f"meta-round {now[1]} of {c['meta_rounds']}: "
    if state.ended:
        w = state.run.get("welfare")
        best = state.run.get("best_welfare")
        what = ((f"{c['meta_rounds']} meta-rounds: final welfare {w:.3g}"
                 + ("" if best is None else f" (best meta-round {best:.3g})")) if w is not None
                else (state.error or state.status))
        where = ""
    elif state.writing:
        asked = sorted((w for k, w in state.writing.items() if now is not None and k[:2] == now),
                       key=lambda w: (w.seat != "row", w.attempt))  # the row's first
        what = "writing " + ", ".join(f"{w.seat} (attempt {w.attempt})" for w in asked)
    elif now is None:
        what = "starting"
    elif now in state.rounds:
        what = "played"
    else:
        what = "playing the matches"
    return first, Text(f"{where}{what} · writer {writers}", no_wrap=True, overflow="ellipsis")


def table_rows(state) -> tuple[list[dict], list[tuple]]:
    """The rows (one per seat and meta-round begun) and their cells: the meta-round ('s5·2' with several
    seeds), the seat, ✓ (its writer's program played) / ✗ (its writer gave no valid program: the previous
    one played) / … (being written) / ? (written, the matches not played yet), the attempts, the payoff."""
    rows = state.programs()
    several = len(state.seeds) > 1
    cells = []
    for r in rows:
        played = r["round"]
        if r["writing"] is not None:
            ok = "…"
        elif played is not None:
            ok = "✗" if played[r["seat"] + "_failed"] else "✓"
        else:
            ok = "?"
        mine = None if played is None else played.get(r["seat"] + "_payoff")
        pay = "" if mine is None else f"{mine:.3g}"
        mr = f"s{r['seed']}·{r['meta_round']}" if several else str(r["meta_round"])
        tries = len(r["attempts"]) + (1 if r["writing"] is not None else 0)
        cells.append((mr, r["seat"], ok, str(tries), pay))
    return rows, cells


def detail(row: dict) -> tuple[str, list, tuple]:
    """(title, parts, key) of a seat's meta-round: the program it played and the meta-round's payoffs, then
    each attempt: its id, checks and metrics, the writer's message, the code, the errors and feedback."""
    seat, k = row["seat"], row["meta_round"]
    played = row["round"]
    parts: list = []
    if played is not None:
        other = "col" if seat == "row" else "row"
        failed = played[seat + "_failed"]
        parts.append(Text(f"played {played[seat + '_program']}" + (" (its writer gave no valid program: the "
                          "previous one played)" if failed else ""), style="bold"))
        f = lambda x: "?" if x is None else f"{x:.3g}"
        parts.append(Text(f"payoff per round: {seat} {f(played[seat + '_payoff'])}, {other} "
                          f"{f(played[other + '_payoff'])} · match totals {f(played[seat + '_total'])}, "
                          f"{f(played[other + '_total'])} · {played['episodes']} matches"))
        if played.get("errors"):
            parts.append(Text(played["errors"]))
    elif row["writing"] is None:
        parts.append(Text("written: the matches are being played", style="italic"))
    for a in row["attempts"]:
        flags = "valid" if a.get("valid") else "invalid"
        m = (f" · SLOC {a['sloc']}, complexity {a['complexity']}, opponent use {a['opponent_use']}"
             if a.get("sloc") is not None else "")
        label = f" · judged: {a['label']}" if a.get("label") else ""
        parts += [Text(""), Text(f"attempt {a['attempt']}: {a['program_id']}  ({flags}){m}{label}", style="bold")]
        if a.get("reply"):
            parts += [Text("writer:", style="bold"), Text(without_code(a["reply"]))]
        if a.get("source"):
            parts += [Text("code:", style="bold"), highlighted(a["source"])]
        if a.get("validation"):
            parts += [Text("errors:", style="bold"), Text(a["validation"])]
        if a.get("feedback"):
            parts += [Text("feedback sent:", style="bold"), Text(a["feedback"].rstrip())]
    w = row["writing"]
    if w is not None:
        parts += [Text(""), Text(f"the {seat} writer is writing {w.program_id} (attempt {w.attempt}): its answer "
                                 "is shown when it has come and been checked", style="italic")]
    key = ("meta", row["seed"], k, seat, tuple((a["attempt"], a.get("valid"), a.get("label"))
                                                for a in row["attempts"]), played is not None, w is not None)
    return f"seed {row['seed']} · meta-round {k} · {seat}", parts, key


def conversation_program(row: dict) -> dict | None:
    """The attempt whose writer call holds the seat's conversation of the meta-round (its last: the retries'
    messages are in it), or None before any."""
    return row["attempts"][-1] if row["attempts"] else None


def plot_turns(state, row: dict | None) -> list[tuple[str, float | None]]:
    """Each seat's payoff per round in each played meta-round of the selected row's seed (else the newest)."""
    if row is not None:
        seed = row["seed"]
    else:
        now = state.current()
        seed = now[0] if now is not None else state.seeds[0]
    return state.payoffs(seed)
