"""The Iterate screen (History: i): runs, steps, the candidate's code and the feedback it got."""

from __future__ import annotations

import os
import subprocess
import sys

from textual.widgets import DataTable

from conftest import ROOT
from tui_helpers import wait_for
from tests.support.fake_llm import FakeLLMServer, Script

BROKEN = "```python\ndef decide(ctx)\n    return 'c'\n```"
PLAYS_C = "```python\ndef decide(ctx):\n    return 'c'\n```"


def test_welfare_bar_marks_invalid_steps_as_gaps():
    from arena.tui.screens.iterate import welfare_bar

    assert welfare_bar([0.0, None, 6.0, 3.0]) == "▁·█▄"
    assert welfare_bar([None]) == ""


async def test_iterate_screen_shows_steps_code_and_feedback(make_app, tmp_path):
    db = tmp_path / "it.db"
    with FakeLLMServer(Script([BROKEN, PLAYS_C, PLAYS_C, PLAYS_C])) as srv:
        res = subprocess.run([sys.executable, "-m", "arena.cli.main", "iterate", "--game", "vanilla_coordination",
                              "--model", "custom/w", "--rounds", "1", "--steps", "2", "--episodes", "3", "--db", str(db),
                              "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "k"})
    assert res.returncode == 0, res.stderr
    app = make_app(db, start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("i")
        await wait_for(pilot, lambda: app.screen.query("#iterate-steps") and
                       app.screen.query_one("#iterate-steps", DataTable).row_count == 9)
        runs = app.screen.query_one("#iterate-runs", DataTable)
        assert runs.row_count == 1 and [str(c) for c in runs.get_row_at(0)] == [
            "1", "vanilla_coordination", "custom/w", "finished", "2"]  # the row's random start beat c on 3 episodes
        steps = app.screen.query_one("#iterate-steps", DataTable)
        # step 0: the row's current program; 1 and 2 the writer's; 3 the kept one on fresh episodes
        assert [str(c) for c in steps.get_row_at(1)][:4] == ["1", "row", "0", "yes"]
        assert [str(c) for c in steps.get_row_at(2)] == ["1", "row", "1", "no", "", "", ""]
        assert "welfare per step: " in str(app.screen.query_one("#iterate-welfare").render())
        steps.focus()
        steps.move_cursor(row=2)
        await pilot.pause()
        detail = str(app.screen.query_one("#iterate-detail").render())
        assert "it1-r1-row-s1  (invalid)" in detail and "def decide(ctx)\n" in detail
        assert "candidate.py:1: syntax error" in detail
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "history"
