"""Driving the app with Textual's Pilot: every screen, tournaments end to end (built-in bots, and LLM
programs against the loopback fake server), transcripts, export, history, resume."""

from __future__ import annotations

import csv

import pytest

from arena.tui.screens.editor import ProgramEditor
from arena.tui.widgets import SimTree, Transcript
from tui_helpers import live_drawn, transcript_shows, transcript_text, tree_labels, wait_for


async def test_smoke_tournament_from_setup(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.current_mode == "setup"
        # the library loads after the first paint: wait for it (a fixed pause failed on a loaded machine)
        await wait_for(pilot, lambda: "loading" not in str(app.screen.query_one("#summary").render()))
        summary = str(app.screen.query_one("#summary").render())
        assert "500 trials" in summary and "No LLM calls" in summary
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        await wait_for(pilot, lambda: live_drawn(app))  # Live's next tick draws the ended run
        assert app.current_mode == "live"
        s = app.session
        assert s.status == "finished" and s.done == 500
        tree = app.screen.query_one(SimTree)
        assert tree.key is not None and len(tree._shown_nodes) >= 2  # the latest built-in trial's tree
        assert all("→" in label for label in tree_labels(tree))  # every node resolved
        matrix = app.screen.query_one("#live-matrix")
        assert matrix.row_count == 5
        cells = [str(matrix.get_cell_at((r, c))) for r in range(5) for c in range(1, 6)]
        assert "100%" in cells and "0%" in cells and "·" not in cells
        await pilot.press("r")  # results of this tournament
        await pilot.pause()
        await app.workers.wait_for_complete()  # the analysis loads in a worker
        assert app.current_mode == "results" and app.screen.tid == s.tournament_id
        assert app.screen.query_one("#pairs").row_count == 25


async def test_tree_grows_node_by_node_and_shows_transcripts(make_app, library_dir, monkeypatch):
    from arena.engine.grid import TournamentConfig
    from tests.support.fake_llm import FakeLLMServer, action_responder

    import threading

    answer = threading.Event()  # the server holds every answer until the test has seen a node being asked

    def policy(req) -> str:
        answer.wait(30)
        return "defect" if "chose: defect" in req.last_user_text else "cooperate"

    with FakeLLMServer(action_responder(policy), latency=0.05) as srv:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)
        monkeypatch.setenv("LLM_API_KEY", "test-key")
        app = make_app(programs_path=library_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            config = TournamentConfig(programs=["fair-llm", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.3],
                                      max_depths=[3], trials=2, seed=4, concurrency=2)
            app.start_tournament(config)
            await pilot.pause()
            tree = app.screen.query_one(SimTree)
            # an LLM trial's tree appears with pending nodes, one of them being asked
            await wait_for(pilot, lambda: any("asking" in x for x in tree_labels(tree)), timeout=20)
            seen_pending = [x for x in tree_labels(tree) if "→" not in x]
            assert seen_pending
            answer.set()
            # ... and its nodes resolve one by one
            await wait_for(pilot, lambda: app.session.ended, timeout=30)
            await pilot.pause(0.3)
            assert app.session.status == "finished" and app.session.done == 8
            assert app.session.llm_calls == srv.count > 0
            # open the transcript of an LLM node of the trial on screen
            await pilot.press("t")
            llm_line = next(i for i, n in enumerate(tree._shown_nodes) if n.data.calls)
            tree.cursor_line = tree._shown_nodes[llm_line].line
            # the transcript follows the cursor on a later message: waited for, not slept on
            await wait_for(pilot, lambda: transcript_shows(app.screen.query_one(Transcript),
                                                           tree._shown_nodes[llm_line].data))
            text = transcript_text(app.screen.query_one(Transcript))
            # custom is on structured: auto and the loopback server honours the schema: the raw answer is JSON
            assert "raw answer" in text and "\"action\": \"" in text and "parsed action" in text
            assert "You are fair" in text  # the system prompt
            assert "attempt 1" in text and "custom/fake-8b" in text


async def test_transcript_of_stored_trial_with_retry(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.open_results(ids["llm"])
        await pilot.pause()
        await app.workers.wait_for_complete()  # the analysis loads in a worker
        pairs = app.screen.query_one("#pairs")
        assert pairs.row_count == 1  # only fair-llm vs defectbot has stored trials
        pairs.focus()
        await pilot.press("enter")
        await pilot.pause()
        from arena.tui.screens.trials import TrialsScreen

        assert isinstance(app.screen, TrialsScreen)
        assert app.screen.query_one("#trial-list").row_count == 2
        await pilot.press("t")
        await pilot.pause()
        tree = app.screen.query_one(SimTree)
        assert tree.cursor_line == 0
        await wait_for(pilot, lambda: transcript_shows(app.screen.query_one(Transcript), tree.cursor_node.data))
        text = transcript_text(app.screen.query_one(Transcript))
        # the first attempt was unparseable; the corrective retry gave the action
        assert "I would rather think about cooperation" in text and "unparsed" in text
        assert "correction" in text and "parsed action: defect" in text
        assert "640 ms" in text and "tokens 312→41" in text
        await pilot.press("down")  # the simulated defectbot: a built-in, no LLM call
        await wait_for(pilot, lambda: tree.cursor_line == 1
                       and transcript_shows(app.screen.query_one(Transcript), tree.cursor_node.data))
        assert "No LLM call" in transcript_text(app.screen.query_one(Transcript))
        await pilot.press("escape")
        assert app.screen.MODE == "results"


async def test_export_from_results(seeded_app, tmp_path, monkeypatch):
    make, ids = seeded_app
    monkeypatch.chdir(tmp_path)
    app = make(start_mode="results")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.open_results(ids["bots"])
        await pilot.pause()
        await app.workers.wait_for_complete()  # the analysis loads in a worker
        await pilot.press("x")
        await pilot.pause()
        path = app.screen.query_one("#export-path")
        assert path.value.startswith(f"arena-tournament-{ids['bots']}.")
        path.value = str(tmp_path / "out.csv")
        await pilot.click("#export")
        await wait_for(pilot, lambda: getattr(app.screen, "MODE", None) == "results")  # written in a worker
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert len(rows) == 16 and {"row_program", "col_program", "cooperation"} <= set(rows[0])


async def test_history_reopens_results_and_resumes(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()  # the list loads in a worker
        await pilot.pause()
        table = app.screen.query_one("#tournaments")
        assert table.row_count == 3
        statuses = [str(table.get_row_at(i)[2]) for i in range(3)]
        assert statuses == ["cancelled", "interrupted", "finished"]
        await pilot.press("down", "down", "enter")  # tournament 1 (finished)
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert app.current_mode == "results" and app.screen.tid == ids["bots"]
        await pilot.press("5")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("up", "up", "r")  # resume tournament 3 (cancelled, 8/20)
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        assert app.session.tournament_id == ids["resume"]
        assert app.session.status == "finished" and app.session.done == 20 and app.session.done_at_start == 8
        assert app.store.tournament(ids["resume"]).status == "finished"


async def test_pause_and_cancel_keep_what_is_stored(make_app):
    from arena.engine.grid import TournamentConfig

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        config = TournamentConfig(programs=["fairbot", "defectbot", "randombot"], games=["prisoners_dilemma"],
                                  epsilons=[0.05], max_depths=[200], trials=100_000)
        app.start_tournament(config)
        await pilot.pause()
        await wait_for(pilot, lambda: app.session.done > 0)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.session.status == "paused")
        # the batch under way when the key was pressed is still written; then nothing moves
        seen = [app.session.done]
        while len(seen) < 10 and (len(seen) < 2 or seen[-1] != seen[-2]):
            await pilot.pause(0.3)
            seen.append(app.session.done)
        await pilot.pause(0.6)
        assert seen[-1] == seen[-2] == app.session.done, seen
        await pilot.press("space")
        await wait_for(pilot, lambda: app.session.status == "running")
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")  # confirm
        await wait_for(pilot, lambda: app.session.ended)
        assert app.session.status == "cancelled"
        tid = app.session.tournament_id
        assert 0 < app.session.done < config.total_trials
        assert app.store.count_trials(tid) == app.session.done
        assert app.store.tournament(tid).status == "cancelled"


async def test_library_new_program_validated_inline_and_saved(make_app, library_dir):
    app = make_app(programs_path=library_dir, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n", "l")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ProgramEditor)
        area = editor.query_one("#yaml")
        area.load_text("id: tit-llm\nkind: llm\nmodel: custom/fake-8b\ntemperature: 9\nsystem_prompt: hi\n")
        # validated on a timer after the change: waited for (the template's own check found no problem)
        await wait_for(pilot, lambda: any("temperature" in str(p) for p in editor.problems))
        problems = [str(p) for p in editor.problems]
        assert problems == ["tit-llm.yaml:4: field 'temperature': Input should be less than or equal to 2"]
        await pilot.press("ctrl+s")  # refused while invalid
        assert isinstance(app.screen, ProgramEditor) and not (library_dir / "tit-llm.yaml").exists()
        area.load_text("id: fairbot\nkind: builtin\nstrategy: fairbot\n")
        await wait_for(pilot, lambda: editor.problems and "temperature" not in str(editor.problems[0]))
        assert str(editor.problems[0]) == "new program:1: field 'id': program id 'fairbot' is already used in fairbot.yaml:1"
        area.load_text("id: tit-llm\nkind: llm\nmodel: custom/fake-8b\ntemperature: 0.2\nsystem_prompt: hi\n")
        await wait_for(pilot, lambda: editor.problems == [])
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen.MODE == "library"
        assert (library_dir / "tit-llm.yaml").exists() and "tit-llm" in app.library.entries
        # duplicate and edit are prefilled from the highlighted program
        await pilot.press("d")
        await pilot.pause()
        assert "id: tit-llm-copy" in app.screen.query_one("#yaml").text
        await pilot.press("escape")


async def test_setup_estimates_llm_calls(make_app, library_dir):
    app = make_app(programs_path=library_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        progs = screen.query_one("#pick-programs")
        progs.deselect_all()
        progs.select("fair-llm")
        progs.select("defectbot")
        screen.query_one("#epsilons").value = "0.5"
        screen.query_one("#depths").value = "1"
        screen.query_one("#trials").value = "3"
        # (fair, fair): 2 decisions x 1.5 LLM nodes; (fair, defect) and (defect, fair): 1.5 + 0.5; x 3 trials
        await wait_for(pilot, lambda: "12 trials" in str(screen.query_one("#summary").render()))
        assert screen.query_one("#preset").value == "custom"
        summary = str(screen.query_one("#summary").render())
        assert "15 LLM calls over 9 trials with an LLM program" in summary
        screen.query_one("#epsilons").value = "2"
        await wait_for(pilot, lambda: "ε values" in str(screen.query_one("#summary").render()))
        assert screen.query_one("#start").disabled


async def test_help_palette_and_theme(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        from arena.tui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        help_screen = app.screen
        help_screen.query_one("#help").scroll_end(animate=False)
        await pilot.pause()
        assert help_screen.query_one("#help").scroll_y > 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "history")
        await pilot.press("question_mark")  # built once (composing it took ~100 ms), opens at its top
        await wait_for(pilot, lambda: app.screen is help_screen)
        await wait_for(pilot, lambda: help_screen.query_one("#help").scroll_y == 0)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("2")
        await wait_for(pilot, lambda: app.current_mode == "setup")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Go to Library", "Go to History", "New program", "Start the bots tournament", "Export results", "Help"):
            assert t in titles
        for key, mode in (("1", "library"), ("3", "live"), ("4", "results"), ("5", "history"), ("2", "setup")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode


async def test_history_shows_why_a_tournament_failed_after_a_restart(make_app, tmp_path, programs, games):
    from arena.engine.grid import TournamentConfig, from_preset
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    db = tmp_path / "reason.db"
    with Store(db) as store:  # a run that failed in an earlier session
        tid = TournamentRunner.create(store, TournamentConfig(**from_preset("bots", trials=1)), dict(programs),
                                      games).tournament_id
        store.set_status(tid, "failed", "provider 'nvidia' refused model 'x': HTTP 404")
    app = make_app(db=db, start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: "refused model" in str(app.screen.query_one("#history-detail").render()))
        assert "failed: provider 'nvidia' refused model 'x': HTTP 404" in str(
            app.screen.query_one("#history-detail").render())


async def test_the_app_honours_arena_db_timeout(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_DB_TIMEOUT", "0.25")
    app = make_app(db=tmp_path / "t.db")
    assert app.store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    app.store.close()
async def test_esc_leaves_a_field_and_digits_switch_screens_again(make_app):
    """Digits type into a numeric field; Esc leaves it (the footer says so), then 1 and 2 switch screens."""
    from textual.widgets import Input

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        trials = app.screen.query_one("#trials", Input)
        assert trials.value == "20"  # the smoke preset
        trials.focus()
        await pilot.press("end", "1")
        assert trials.value == "201" and app.current_mode == "setup"  # a digit types
        assert "Leave field" in _footer_text(app)
        await pilot.press("escape", "1")
        await pilot.pause()
        assert app.current_mode == "library"
        await pilot.press("2")
        await pilot.pause()
        assert app.current_mode == "setup" and app.screen.query_one("#trials", Input).value == "201"


def _footer_text(app) -> str:
    from textual.widgets import Footer

    footer = app.screen.query_one(Footer)
    return " ".join(str(k.render()) for k in footer.children)


async def test_large_run_asks_first(make_app):
    """ctrl+r on a run over 1,000,000 trials asks; Back (the focused button) starts nothing."""
    from textual.widgets import Input

    from arena.tui.screens.dialogs import Confirm

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        await pilot.pause()  # the preset's own Changed message comes first
        app.screen.query_one("#trials", Input).value = "40001"  # 25 cells × 40,001 = 1,000,025 trials
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "1,000,025 trials (over 1,000,000)" in app.screen.question
        assert app.screen.focused.id == "no"
        await pilot.press("enter")
        await pilot.pause()
        assert app.session is None and app.current_mode == "setup"


def test_large_run_thresholds():
    from arena.tui.guards import large_run

    assert large_run(500, 0, None) is None
    assert large_run(1_000_000, 0, None) is None
    assert large_run(1_000_001, 0, None) == "1,000,001 trials (over 1,000,000)"
    assert large_run(5_000, 0, 500) is None  # small runs never ask
    assert large_run(19_999, 0, 2_000) is None
    assert large_run(20_000, 0, 2_000) == "20,000 trials, 10× the last tournament's 2,000"
    assert large_run(100, 1_000, None) is None
    assert large_run(100, 1_500.4, None) == "≈ 1,500 LLM calls (over 1,000)"


async def test_program_file_added_on_disk_reaches_setup_after_reload(make_app, library_dir):
    from textual.widgets import SelectionList

    app = make_app(programs_path=library_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        progs = app.screen.query_one("#pick-programs", SelectionList)
        assert "tft-copy" not in [progs.get_option_at_index(i).value for i in range(progs.option_count)]
        (library_dir / "tft-copy.yaml").write_text(
            "id: tft-copy\nkind: builtin\nstrategy: cooperate\ndescription: Added while the app runs.\n")
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        ids = [progs.get_option_at_index(i).value for i in range(progs.option_count)]
        assert "tft-copy" in ids and len(ids) == 7


async def test_live_at_80x24_shows_whole_numbers_and_the_log(make_app):
    """After the default tournament at 80×24 the whole matrix fits (names abbreviated, no cell cut at the
    edge), 100% shows, the log stays, and the (empty) transcript pane gives its room to the tree."""
    from textual.widgets import RichLog

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        await wait_for(pilot, lambda: live_drawn(app))
        matrix = app.screen.query_one("#live-matrix")
        # a DataTable takes its columns' widths when idle, and the matrix's box its width on a layout pass after
        # the tick that filled it: waited for, not slept on
        await wait_for(pilot, lambda: not matrix._require_update_dimensions
                       and 0 < matrix.virtual_size.width <= matrix.scrollable_content_region.width)
        cells = [str(matrix.get_cell_at((r, c))) for r in range(5) for c in range(1, 6)]
        assert cells.count("100%") == 5
        assert str(matrix.get_cell_at((1, 0))) == " 2 coop…"  # cooperatebot, abbreviated
        log = app.screen.query_one("#live-log", RichLog)
        assert log.display and log.size.height >= 3
        assert not app.screen.query_one(Transcript).display


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_setup_marks_choices_without_colour(make_app, theme):
    """Chosen rows read ✓ and the others ·, whatever the colours (NO_COLOR, light theme)."""
    from textual.widgets import Checkbox, SelectionList

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = theme
        await wait_for(pilot, lambda: app.screen._filled)
        await pilot.pause()
        games = app.screen.query_one("#pick-games", SelectionList)
        lines = [games.render_line(y).text for y in range(games.option_count)]
        assert [line[:3] for line in lines] == [" ✓ " if "prisoners_dilemma" in line else " · " for line in lines]
        assert sum(line.startswith(" ✓ ") for line in lines) == 1
        cache, new = app.screen.query(Checkbox)
        assert "✓" in cache.render().plain and "✓" not in new.render().plain


async def test_paused_time_stands_still_and_the_footer_says_resume(make_app):
    from arena.engine.grid import TournamentConfig
    from conftest import FakeClock

    clock = FakeClock()
    app = make_app(clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        config = TournamentConfig(programs=["fairbot", "defectbot", "randombot"], games=["prisoners_dilemma"],
                                  epsilons=[0.05], max_depths=[200], trials=100_000)
        app.start_tournament(config)
        await wait_for(pilot, lambda: app.session.done > 0)
        clock.advance(10)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.session.status == "paused")
        await pilot.pause(0.2)
        elapsed = app.session.progress().elapsed_s
        assert elapsed == pytest.approx(10)
        clock.advance(100)  # a long pause
        p = app.session.progress()
        assert p.elapsed_s == pytest.approx(10) and p.eta_s is None
        # the footer follows the status on the screen's next tick and a refresh: waited for, not slept on
        await wait_for(pilot, lambda: "Resume" in _footer_text(app) and "Pause" not in _footer_text(app))
        assert "ETA –" in str(app.screen.query_one("#live-stats").render())
        await pilot.press("space")
        await wait_for(pilot, lambda: app.session.status == "running")
        clock.advance(5)
        assert app.session.progress().elapsed_s == pytest.approx(15)
        await wait_for(pilot, lambda: "Pause" in _footer_text(app) and "Resume" not in _footer_text(app))
        app.session.cancel()
        await wait_for(pilot, lambda: app.session.ended)


async def test_the_tree_taking_the_focus_leaves_lives_footer_as_it_is(make_app):
    """t on Live: the tree's own keys are hidden and the screen's keep their order, so the footer is not
    rebuilt (its widgets are the same objects): the key's cost is the tree's, not a footer's."""
    from textual.widgets import Footer

    from arena.engine.grid import TournamentConfig

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        config = TournamentConfig(programs=["fairbot", "defectbot"], games=["prisoners_dilemma"],
                                  epsilons=[0.05], max_depths=[200], trials=100_000)
        app.start_tournament(config)
        await wait_for(pilot, lambda: app.session.done > 0 and "Pause" in _footer_text(app))
        keys = list(app.screen.query_one(Footer).query("FooterKey"))
        text = _footer_text(app)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.focused, SimTree))
        await pilot.pause()
        await pilot.pause()
        assert list(app.screen.query_one(Footer).query("FooterKey")) == keys and _footer_text(app) == text
        app.session.cancel()
        await wait_for(pilot, lambda: app.session.ended)


async def test_a_resumed_run_is_followed_after_a_pin(seeded_app):
    """Pin (f), then resume another run: its trials show (not 'waiting for the first trial…' all along)."""
    make, ids = seeded_app
    app = make(start_mode="live")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.screen.follow = False  # pinned in an earlier run
        app.resume_tournament(ids["resume"])
        await wait_for(pilot, lambda: app.session.ended)
        await wait_for(pilot, lambda: live_drawn(app))
        tree = app.screen.query_one(SimTree)
        assert app.screen.follow and tree.key is not None
        assert tree.border_subtitle != "waiting for the first trial…"


async def test_editor_esc_cancels_and_asks_before_discarding_edits(make_app, library_dir):
    from arena.tui.screens.dialogs import Confirm

    app = make_app(programs_path=library_dir, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n", "l")
        await pilot.pause()
        assert isinstance(app.screen, ProgramEditor)
        await pilot.press("escape")  # unchanged: one Esc leaves (the text area does not swallow it)
        await pilot.pause()
        assert getattr(app.screen, "MODE", None) == "library"
        await pilot.press("n", "l")
        await pilot.pause()
        editor = app.screen
        editor.query_one("#yaml").load_text("id: x\nkind: builtin\nstrategy: fairbot\ntemperature: 9\n")
        await wait_for(pilot, lambda: bool(editor.problems))
        box = editor.query_one("#editor-problems")
        assert box.highlighted == 0  # enter on the list jumps to the first problem without a Down first
        await pilot.press("escape")  # edited: asks
        await pilot.pause()
        assert isinstance(app.screen, Confirm) and app.screen.question == "Discard your changes?"
        await pilot.press("enter")  # the focused button keeps the edits
        await pilot.pause()
        assert app.screen is editor
        await pilot.press("escape", "y")
        await pilot.pause()
        assert getattr(app.screen, "MODE", None) == "library"


async def test_setup_lists_start_with_a_row_highlighted_and_the_palette_runs(make_app):
    from textual.widgets import SelectionList

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        assert [app.screen.query_one(f"#pick-{w}", SelectionList).highlighted for w in ("programs", "games")] == [0, 0]
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Run the tournament in Setup", "Export results", "Toggle light / dark"} <= set(titles)
        run = next(c for c in app.get_system_commands(app.screen) if c.title == "Run the tournament in Setup")
        run.callback()
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        assert app.session.status == "finished" and app.session.done == 500
        # Live, where the run took the app, has mounted (leaving while its Select mounts raised NoMatches in
        # Textual's own Select, a shutdown race of the test, one run in a few on a loaded machine)
        await wait_for(pilot, lambda: app.current_mode == "live" and app.screen.query("#live-condition")
                       and all(w.is_mounted for w in app.screen.query("#live-condition *")))
        await pilot.pause()


async def test_live_tree_holds_as_soon_as_it_is_focused(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        await wait_for(pilot, lambda: live_drawn(app))
        tree = app.screen.query_one(SimTree)
        assert tree.border_subtitle.endswith("following")
        await pilot.press("t")  # focus only: no cursor move
        # the subtitle says so on Live's next tick
        await wait_for(pilot, lambda: not tree.border_subtitle.endswith("following"))
        assert tree.border_subtitle.endswith("held while you browse the tree (f to follow)")


async def test_setup_estimates_time_from_the_latency_measured_on_the_provider(seeded_app):
    """Setup's LLM estimate gives a time from the stored calls' latency on the program's provider (custom,
    in the seeded database), and accepts 1,000 written with a comma."""
    import re

    from arena.engine.estimate import duration_s, estimate
    from arena.tui import format as fmt
    from textual.widgets import Input, SelectionList

    make, _ = seeded_app
    app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen._filled)
        await app.workers.wait_for_complete()
        progs = app.screen.query_one("#pick-programs", SelectionList)
        progs.deselect_all()
        progs.select("fair-llm")
        app.screen.query_one("#trials", Input).value = "1,000"
        await wait_for(pilot, lambda: "measured latency" in str(app.screen.query_one("#summary").render()))
        summary = str(app.screen.query_one("#summary").render())
        ms = app.store.call_latencies()["custom"][0]
        calls = estimate(app.screen.build_config(), app.library.programs).llm_calls
        expected = fmt.duration(duration_s(calls, {"custom": (ms, 8)}))  # the run's concurrency 8 ≤ custom's limit
        assert "1,000 trials" in summary
        assert re.search(rf"≈ {re.escape(expected)} \(measured latency: custom {ms / 1000:.1f} s\)", summary), summary


async def test_the_app_quiets_the_garbage_collector_after_its_first_paint(make_app, monkeypatch):
    """`arena` (quiet_gc=True) freezes what exists after start-up and collects less often (gcpauses.py);
    apps made by tests leave the collector alone."""
    import arena.tui.gcpauses as gcpauses

    calls = []
    monkeypatch.setattr(gcpauses, "quiet", lambda: calls.append(1))
    for quiet_gc, expected in ((False, []), (True, [1])):
        calls.clear()
        app = make_app(quiet_gc=quiet_gc)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app._store is not None)
            assert calls == expected
