"""The app as a new user meets it (issue 33): an empty folder, the editor, Results' tabs and plots, Live
right after attaching, quitting with Detach."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.tui.screens.editor import ProgramEditor

from conftest import ROOT
from tui_helpers import wait_for



async def test_new_programs_go_to_the_users_folder_never_the_shipped_one(make_app, tmp_path, monkeypatch):
    """Started from a folder with no programs/: the shipped examples are listed (read-only), and a new
    program, or an edited example, is written to ./programs/ (created, with a notice), not to Arena's own."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("ARENA_PROGRAMS", raising=False)
    shipped = {f: f.read_text() for f in (ROOT / "programs").rglob("*.yaml")}
    app = make_app(programs_path=None, games_path=None, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        lib = app.library
        assert lib.programs_path == work / "programs"
        assert lib.entries["fairbot"].group == "examples" and lib.entries["fair-code"].group == "examples/code"
        await pilot.press("n")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ProgramEditor)
        editor.query_one("#yaml").load_text("id: mine\nkind: builtin\nstrategy: titfortat\n")
        await pilot.pause(0.4)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProgramEditor))
        assert (work / "programs" / "mine.yaml").exists()
        assert "mine" in app.library.entries and app.library.entries["mine"].group == ""
        assert any("Created programs/" in n.message for n in app._notifications)
        # an example edited in the app is saved as a copy among the user's programs
        lst = app.screen.query_one("#programs")
        lst.highlighted = lst.get_option_index("p:fairbot")
        await pilot.pause()
        assert "read-only" in str(app.screen.query_one("#detail-foot").render())
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ProgramEditor) and app.screen.path is None
        await pilot.pause(0.4)
        assert app.screen.problems == []
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProgramEditor))
        assert (work / "programs" / "fairbot.yaml").exists()
        assert app.library.entries["fairbot"].file == work / "programs" / "fairbot.yaml"
    assert {f: f.read_text() for f in (ROOT / "programs").rglob("*.yaml")} == shipped  # Arena's own untouched


async def test_cooperation_bars_of_21_pairs_match_their_labels(make_app, tmp_path):
    """One ε, six programs: 21 pairs, each line its pair's label, its value and a bar of that length."""
    import asyncio

    from arena.analysis import plots
    from arena.engine.grid import TournamentConfig
    from arena.library.catalog import load_lenient
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store
    from arena.tui.widgets import BarChart

    db = tmp_path / "six.db"
    lib, _ = load_lenient(ROOT / "programs", ROOT / "games")
    six = ["cooperatebot", "defectbot", "fairbot", "randombot", "cliquebot", "titfortat"]
    with Store(db) as store:
        config = TournamentConfig(programs=six, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[5], trials=6)
        runner = TournamentRunner.create(store, config, lib.programs, lib.games)
        await asyncio.to_thread(asyncio.run, runner.run())
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(1)
        await pilot.pause()
        await app.workers.wait_for_complete()
        app.screen.query_one("#results-tabs").active = "tab-plots"
        await wait_for(pilot, lambda: app.screen._plots is not None)
        await pilot.pause()
        screen = app.screen
        assert not screen.query_one("#plot-coop-chart").display
        chart = screen.query_one("#plot-coop-bars", BarChart)
        series = plots.coop_series(screen._plots.coop)
        expected = {pair: pts[0].cooperation for s in series.values() for pair, pts in s.items()}
        assert len(expected) == 21
        text = str(chart.render()).split("\n")
        width = chart.content_region.width
        assert width > 40
        lines = chart.lines(width)
        assert len(lines) == 21
        bar_w = width - len(lines[0][0]) - 7
        for (label, n, value), line in zip(lines, text):
            pair = label.strip()
            x = expected[pair]
            assert n == round(x * bar_w) and value == f"{x:.0%}"
            # as drawn: the label, then exactly n full blocks, then the value at the end of the same line
            assert line.startswith(label + " ") and line.count("█") == n and line.rstrip().endswith(value)
        zero = next(line for line in text if line.startswith("cooperatebot/defectbot"))
        assert zero.count("█") == 0 and zero.rstrip().endswith("0%")
