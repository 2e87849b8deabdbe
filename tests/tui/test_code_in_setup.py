"""Code programs where users meet them: the shipped ones in Library and Setup (programs/code/ as a group), a
code program written in the editor, picked in Setup with built-ins, run, and shown in Live and Results; and a
bug in the app contained at the screen that raised it (Setup's summary, a Results worker)."""

from __future__ import annotations

from tui_helpers import (copy_programs, pick_programs, setup_summary, transcript_shows, transcript_text, wait_for,
                          wait_for_setup)

MIRROR = """\
id: mirror
kind: code
description: FairBot written as code.
source: |
  def decide(ctx):
      if ctx["opponent_action"] is None:
          return ctx["game"]["default_action"]
      return ctx["opponent_action"]
"""


async def test_library_and_setup_list_the_shipped_code_programs(make_app):
    app = make_app(start_mode="library")  # the shipped library, programs/ and its code/ folder
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        lst = app.screen.query_one("#programs")
        labels = {lst.get_option_at_index(i).id: lst.get_option_at_index(i).prompt.plain for i in range(lst.option_count)}
        for pid in ("fair-code", "defect-code", "cooperate-code", "clique-code", "simulator-club", "seat-coordinator"):
            assert labels[f"p:{pid}"] == f"{pid} code/"
        assert labels["p:fairbot"].strip() == "fairbot" and labels["p:defectbot"] == "defectbot defect"
        app.screen._show_program("fair-code")
        await pilot.pause()
        title = str(app.screen.query_one("#detail-title").render())
        assert "programs/code/fair-code.yaml:1" in title
        await pilot.press("2")
        await wait_for_setup(pilot)
        picks = app.screen.query_one("#pick-programs")
        shown = {str(picks.get_option_at_index(i).value): picks.get_option_at_index(i).prompt.plain
                 for i in range(picks.option_count)}
        assert shown["fair-code"] == "fair-code code/"


async def test_a_code_program_written_in_the_editor_runs_from_setup(make_app, tmp_path):
    d = copy_programs(tmp_path / "programs", "defectbot.yaml", "cooperatebot.yaml")
    app = make_app(programs_path=d, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n", "l")
        await wait_for(pilot, lambda: app.screen.query("#yaml"))
        app.screen.query_one("#yaml").load_text(MIRROR)
        await pilot.pause(0.3)
        await pilot.press("ctrl+s")  # saved after its smoke test
        await wait_for(pilot, lambda: (d / "mirror.yaml").exists() and "mirror" in app.library.entries)
        await pilot.press("2")
        await wait_for_setup(pilot)
        setup = app.screen
        pick_programs(setup, "defectbot", "cooperatebot", "mirror")  # the grid's last cell: mirror against itself
        setup.query_one("#epsilons").value = "0.5"
        setup.query_one("#depths").value = "3"
        setup.query_one("#trials").value = "4"
        await wait_for(pilot, lambda: "36 trials" in setup_summary(app))
        assert "No LLM calls" in setup_summary(app)  # the estimate knows a code program is not an LLM one
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended, 60)
        assert app.session.status == "finished" and app.session.done == 36
        # Live: a trial of mirror, its node's ctx and return value
        live = app.screen
        assert (live.shown.spec.row, live.shown.spec.col) == ("mirror", "mirror")  # the last trial shown
        tree = live.query_one("#live-tree")
        top = next(n for n in tree._shown_nodes if n.data is not None and n.data.program == "mirror")
        tree.move_cursor(top)
        # the node's pane follows the cursor on a later message: waited for, not slept on
        await wait_for(pilot, lambda: transcript_shows(live.query_one("#live-transcript"), top.data))
        text = transcript_text(live.query_one("#live-transcript"))
        lines = text.splitlines()
        assert lines[:2] == ["mirror (row seat, depth 0) ● grounded  → cooperate", "ctx"]
        assert lines[8:14] == ['seat: "row"', 'me: "def decide(ctx):" … (4 lines)', 'opponent: "def decide(ctx):" … (4 lines)',
                               'opponent_id: "mirror"', 'opponent_kind: "code"', "opponent_action: null"]
        assert lines[-1] == "returned 'cooperate'"
        await pilot.press("r")
        await wait_for(pilot, lambda: app.current_mode == "results" and getattr(app.screen, "tid", None))
        await app.workers.wait_for_complete()
        pairs = app.screen.query_one("#pairs")
        assert pairs.row_count == 9
        rows = {(str(pairs.get_row_at(i)[0]), str(pairs.get_row_at(i)[1])): str(pairs.get_row_at(i)[3])
                for i in range(9)}
        assert rows[("mirror", "mirror")] == "100.0%" and rows[("mirror", "cooperatebot")] == "100.0%"
        assert rows[("mirror", "defectbot")] == "0.0%"


async def test_a_bug_in_setups_summary_is_shown_there_and_logged(make_app, tmp_path, monkeypatch):
    import arena.engine.estimate

    def broken(config, programs, games=None):
        raise RuntimeError("injected into the summary")

    monkeypatch.setattr(arena.engine.estimate, "estimate", broken)
    app = make_app(db=tmp_path / "arena.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#failure") and app.screen.query_one("#failure").display)
        banner = str(app.screen.query_one("#failure").render())
        assert "Setup" in banner and "RuntimeError: injected into the summary" in banner
        assert str(tmp_path / "arena.log") in banner
        assert app.is_running and app.return_code is None
        await pilot.press("5")  # the app goes on
        await wait_for(pilot, lambda: app.current_mode == "history")
        await pilot.press("2", "escape")
        await pilot.pause()
        assert not app.screen.query_one("#failure").display  # Esc hides it
    log = (tmp_path / "arena.log").read_text()
    assert "Traceback" in log and "RuntimeError: injected into the summary" in log and "in broken" in log


async def test_a_bug_in_a_results_worker_is_shown_there_and_logged(seeded_app, monkeypatch):
    import arena.analysis.tables

    make, ids = seeded_app
    app = make(start_mode="history")

    def broken(store, tid):
        raise KeyError("injected into the worker")

    monkeypatch.setattr(arena.analysis.tables, "load_outcomes", broken)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(ids["bots"])
        await wait_for(pilot, lambda: app.current_mode == "results" and app.screen.query("#failure")
                       and app.screen.query_one("#failure").display)
        banner = str(app.screen.query_one("#failure").render())
        assert "Results: load tournament 1" in banner and "KeyError" in banner
        assert app.is_running
        log = (app.db_path.with_suffix(".log")).read_text()
        assert "injected into the worker" in log and "in broken" in log
