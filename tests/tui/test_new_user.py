"""The app as a new user meets it (issue 33): an empty folder, the editor, Results' tabs and plots, Live
right after attaching, quitting with Detach."""

from __future__ import annotations


import pytest

from arena.tui.screens.editor import ProgramEditor

from conftest import ROOT
from tui_helpers import live_drawn, live_stats, wait_for



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
        await pilot.press("n", "b")
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
        # (problems start empty: the editor's check of its text is waited for, so that [] is its verdict)
        await wait_for(pilot, lambda: getattr(app.screen, "checked", False))
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


NONE_ON_ONE_BRANCH = """\
id: forgetful
kind: code
source: |
  def decide(ctx):
      if ctx["opponent_action"] is None:
          return ctx["game"]["default_action"]
      if ctx["opponent_action"] == ctx["game"]["defect_action"]:
          pass
      else:
          return ctx["opponent_action"]
"""


async def test_editor_status_runs_the_smoke_test_as_save_does(make_app, library_dir):
    """A code program whose decide returns None on one branch is never shown as valid: "checking…" while
    the smoke test runs in a worker, then its problem (the one save would refuse it for)."""
    app = make_app(programs_path=library_dir, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n", "c")  # the code template
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ProgramEditor)
        assert "def decide(ctx):" in editor.query_one("#yaml").text
        await wait_for(pilot, lambda: editor.checked)
        assert "smoke test passed" in str(editor.query_one("#editor-status").render())  # the template is valid
        editor.query_one("#yaml").load_text(NONE_ON_ONE_BRANCH)
        editor._validate()  # (what the edit's timer runs): the static checks pass, the smoke test is under way
        status = str(editor.query_one("#editor-status").render())
        assert not editor.checked and "checking…" in status and "valid" not in status
        await wait_for(pilot, lambda: editor.checked)
        status = str(editor.query_one("#editor-status").render())
        assert "✗ 1 problem" in status
        assert "forgetful.yaml" in str(editor.problems[0]) and "smoke test failed" in str(editor.problems[0])
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ProgramEditor) and not (library_dir / "forgetful.yaml").exists()
        # select-all is a key the footer shows
        keys = {b.key: b.description for _, b, _, _ in editor.active_bindings.values() if b.show}
        assert keys.get("ctrl+a") == "Select all"
        await pilot.press("ctrl+a")
        area = editor.query_one("#yaml")
        assert area.selected_text == area.text


async def test_new_offers_a_template_for_every_kind(make_app, library_dir):
    app = make_app(programs_path=library_dir, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key, kind in (("l", "llm"), ("b", "builtin"), ("c", "code")):
            await pilot.press("n", key)
            await pilot.pause()
            editor = app.screen
            assert isinstance(editor, ProgramEditor)
            await wait_for(pilot, lambda: editor.checked)
            assert editor.problems == [] and [p.kind for p in editor.programs] == [kind]
            if kind == "builtin":
                assert editor.programs[0].strategy == "titfortat"
            await pilot.press("escape")
            await pilot.pause()


async def test_results_tabs_by_keys_shown_in_the_footer_and_help(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        footer = {b.key: b.description for _, b, _, _ in app.screen.active_bindings.values() if b.show}
        assert footer.get("i") == "Iterate runs"  # History's i, in its footer
        app.open_results(ids["bots"])
        await pilot.pause()
        await app.workers.wait_for_complete()
        screen = app.screen
        tabs = screen.query_one("#results-tabs")
        footer = {b.key: b.description for _, b, _, _ in screen.active_bindings.values() if b.show}
        assert footer.get("right_square_bracket") == "Next tab" and footer.get("left_square_bracket") == "Prev tab"
        assert "right_curly_bracket" not in footer  # the plots' keys on the Plots tab only
        seen = [tabs.active]
        for _ in range(7):
            await pilot.press("right_square_bracket")
            await pilot.pause()
            seen.append(tabs.active)
        assert seen == ["tab-pairs", "tab-coop", "tab-payoff", "tab-programs", "tab-eq", "tab-disclosure", "tab-plots",
                        "tab-pairs"]
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert tabs.active == "tab-plots"
        footer = {b.key for _, b, _, _ in screen.active_bindings.values() if b.show}
        assert "right_curly_bracket" in footer
        plot_tabs = screen.query_one("#plot-tabs")
        await pilot.press("right_curly_bracket")
        await pilot.pause()
        assert plot_tabs.active == "plot-heat"
        await pilot.press("question_mark")
        await pilot.pause()
        from arena.tui.screens.help import HELP

        for words in ("`[` / `]`", "Equilibria", "By round", "`i` iterate runs", "Cooperation matrix", "Programs"):
            assert words in HELP


async def test_iterate_feedback_scrolls_into_view_at_80x24(make_app, tmp_path):
    """History → i: a step's long feedback is shown first and its pane scrolls (keys) at 80×24."""
    from arena.store import iterate as db
    from arena.store.database import Store

    path = tmp_path / "it.db"
    feedback = "\n".join(f"episode {i}: your program played c, the opponent d; utility 0" for i in range(60))
    source = "\n".join(["def decide(ctx):"] + [f"    x{i} = {i}" for i in range(40)] + ["    return 'c'"])
    with Store(path) as store:
        config = {"game": "prisoners_dilemma", "model": "custom/w", "epsilon": 0.1, "max_depth": 3, "episodes": 3,
                  "seed": 1}
        run_id, tid = db.create_run(store, config, "r", 1, "test")
        db.write_step(store, run_id, tid, {"round": 1, "player": "row", "step": 1, "program_id": "it1-r1-row-s1",
                                           "program_hash": "h", "source": source, "valid": 1, "feedback": feedback,
                                           "kept": 0}, [])
    app = make_app(path, start_mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("i")
        await wait_for(pilot, lambda: app.screen.query("#iterate-steps") and
                       app.screen.query_one("#iterate-steps").row_count == 1)
        await pilot.pause()
        screen = app.screen
        box = screen.query_one("#iterate-detail-box")
        text = str(screen.query_one("#iterate-detail").render())
        assert text.index("feedback sent:") < text.index("code:")  # the feedback first
        assert box.size.height >= 6 and box.max_scroll_y > 0
        await pilot.press("d")
        assert screen.focused is box
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y > 0  # the end of the code is reachable
        footer = {b.key for _, b, _, _ in screen.active_bindings.values() if b.show}
        assert "d" in footer


async def test_live_right_after_attach_shows_the_runners_counts(make_app, tmp_path, monkeypatch):
    """Attached to a run under way: its own counts at once (never 'starting · 0 / N · 0 trials/s' while the
    matrix's counts load), elapsed from the tournament's start, and the log's lines wrapped whole."""
    import asyncio
    import threading
    import time

    from arena.analysis.tally import LiveTally
    from arena.engine.events import TrialsFinished
    from arena.runner.process import RemoteRunner
    from arena.runner.stream import BatchStored
    from arena.store.database import Store
    from test_attach import TOTAL, _start_paused

    db = tmp_path / "arena.db"
    started = _start_paused(db)
    with Store(db) as store:  # another client lets it run until a first batch is stored, then leaves it running
        watcher = RemoteRunner(store, 1, started.socket)
        batch = threading.Event()
        watcher.sink = lambda e: batch.set() if isinstance(e, (BatchStored, TrialsFinished)) else None
        thread = threading.Thread(target=lambda: asyncio.run(watcher.run()), daemon=True)
        thread.start()
        watcher.unpause()
        assert batch.wait(120)
        watcher.pause()  # (held while the app attaches, so that 'under way' is still true when it looks)
        watcher.detach()
        thread.join(30)
        begun = store.tournament(1).started_at
    seeded, loaded = threading.Event(), threading.Event()
    slow = LiveTally.seed

    def seed(self, *a, **kw):  # the matrix's counts from the store: seconds for a large run (held here until
        loaded.wait(60)        # the test has looked at the screen while they load)
        out = slow(self, *a, **kw)
        seeded.set()
        return out

    monkeypatch.setattr(LiveTally, "seed", seed)
    app = make_app(db=db, runner_process=True, attach=True, wall=lambda: time.time() + 3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and app.session.runner._attached, 30)
        # the runner's Hello sets the status just after `_attached`; Live draws it on its next tick
        await wait_for(pilot, lambda: app.session.status == "paused" and "paused" in live_stats(app))
        s = app.session
        assert not seeded.is_set()  # still loading the matrix's counts
        stats = str(app.screen.query_one("#live-stats").render())
        counts = str(app.screen.query_one("#live-counts").render())
        assert s.status == "paused" and "starting" not in stats
        assert 0 < s.done < TOTAL and f"{s.done:,} / {TOTAL:,}" in counts
        assert s.progress().elapsed_s >= 3600 + (time.time() - begun) - 5  # from the tournament's start
        loaded.set()  # the counts loaded
        await pilot.press("space")  # resumed: until it has a rate of its own, none is shown (not '0 trials/s')
        await wait_for(pilot, lambda: s.status == "running", 30)
        await wait_for(pilot, lambda: "running" in live_stats(app))  # Live has drawn the running run ...
        await pilot.pause(0.3)  # ... and redrawn it for a while: never a rate of 0
        stats = str(app.screen.query_one("#live-stats").render())
        assert " 0 trials/s" not in stats
        await wait_for(pilot, seeded.is_set, 30)
        s.cancel()
        await wait_for(pilot, lambda: s.ended, 60)
        await wait_for(pilot, lambda: live_drawn(app))  # (the log of Live's tick that drew the end, too)
        log = app.screen.query_one("#live-log")
        width = log.scrollable_content_region.width
        assert log.lines and all(len(line.text.rstrip()) <= width for line in log.lines)
        text = "\n".join(line.text for line in log.lines)
        assert f"in runner process {started.pid}" in " ".join(text.split())


def test_arena_help_says_a_bare_arena_opens_the_app():
    from typer.testing import CliRunner

    from arena.cli.main import app

    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "`arena` alone opens the app" in " ".join(out.split())


async def _results_tab(app, pilot, tid, tab):
    app.open_results(tid)
    await pilot.pause()
    await app.workers.wait_for_complete()
    app.screen.query_one("#results-tabs").active = tab
    data = {"tab-programs": "_programs", "tab-eq": "_equilibria"}.get(tab)
    await wait_for(pilot, lambda: data is None or getattr(app.screen, data) is not None)


@pytest.mark.parametrize("size,tab,table", [((120, 40), "tab-programs", "#ranking"), ((80, 24), "tab-programs", "#ranking"),
                                            ((80, 24), "tab-pairs", "#pairs"), ((80, 24), "tab-eq", "#equilibria")])
async def test_wide_tables_fit_without_sideways_scrolling(seeded_app, size, tab, table):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=size) as pilot:
        await _results_tab(app, pilot, ids["bots"], tab)
        t = app.screen.query_one(table)
        # a DataTable takes its columns' widths when idle, and its region (none while its tab was hidden) on the
        # layout pass after the tab is shown: both waited for, not slept on
        await wait_for(pilot, lambda: t.row_count > 0 and not t._require_update_dimensions
                       and t.virtual_size.width > 0 and t.scrollable_content_region.width > 0)
        assert t.row_count > 0
        assert t.virtual_size.width <= t.scrollable_content_region.width, (t.virtual_size, t.scrollable_content_region)
        if table == "#ranking" and size[0] == 120:
            assert [str(c.label) for c in t.columns.values()][-4:] == ["CC", "CD", "DC", "DD"]
