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
    """What the transcript pane shows: the widgets it is removing (Transcript.show replaces its children,
    and Textual prunes the old ones on a later message) are left out."""
    from textual.widgets import Static

    parts = []
    for w in transcript.query(Static):
        if w._pruning:
            continue
        if w.border_title:
            parts.append(str(w.border_title))
        parts.append(str(w.render()))
    return "\n".join(parts)


def transcript_shows(transcript, node) -> bool:
    """The transcript pane shows `node`: its head line names the node's program, seat and depth (a node's
    transcript follows the tree's cursor on a later message, and mounts its widgets then)."""
    return transcript_text(transcript).startswith(f"{node.program} ({node.side} seat, depth {node.depth})")


def live_drawn(app) -> bool:
    """Live has drawn its session's end: its stats line says the final status. The Live screen redraws on
    a 0.1 s tick; the progress, the log, the matrix and the tree of one tick are drawn together, so what
    that tick draws from the ended run (the counts, the final matrix, the tree shown) is there too."""
    s = app.session
    return s is not None and s.ended and s.status in live_stats(app)


def live_stats(app) -> str:
    """The text of Live's stats line ("" while Live is not the screen shown, or is still composing)."""
    if app.current_mode != "live" or getattr(app.screen, "MODE", None) != "live":
        return ""
    stats = app.screen.query("#live-stats")
    return str(stats.first().render()) if stats else ""


def setup_summary(app) -> str:
    """The Setup screen's summary line (what the tournament would be, or what is wrong with the form)."""
    return str(app.screen.query_one("#summary").render())


async def wait_for_setup(pilot) -> None:
    """Until Setup is shown with its library loaded."""
    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "setup" and "loading" not in setup_summary(app))


def copy_programs(folder, *files: str):
    """A programs folder made of copies of the shipped `programs/` files named (subfolders flattened)."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "programs"
    folder.mkdir()
    for f in files:
        shutil.copy(root / f, folder / Path(f).name)
    return folder


def pick_programs(setup, *ids: str) -> None:
    """Setup's program list: exactly these programs chosen."""
    picks = setup.query_one("#pick-programs")
    picks.deselect_all()
    for pid in ids:
        picks.select(pid)
