"""Helpers for the TUI tests."""

from __future__ import annotations


async def wait_for(pilot, predicate, timeout: float = 10.0, step: float = 0.05):
    import time

    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(step)


def tree_labels(tree) -> list[str]:
    """The plain text of every node label of a SimTree, in order."""
    from rich.style import Style

    return [tree.render_label(tn, Style(), Style()).plain for tn in tree._shown_nodes]


def transcript_text(transcript) -> str:
    from textual.widgets import Static

    parts = []
    for w in transcript.query(Static):
        if w.border_title:
            parts.append(str(w.border_title))
        parts.append(str(w.render()))
    return "\n".join(parts)
