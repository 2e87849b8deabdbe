"""Driving the app with Textual's Pilot: each screen, a tournament of built-in bots end to end."""

from __future__ import annotations

from tui_helpers import wait_for


async def test_smoke_tournament_from_setup(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.current_mode == "setup"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended)
        await pilot.pause(0.3)
        assert app.current_mode == "live"
        s = app.session
        assert s.status == "finished" and s.done == 500
        from arena.tui.widgets import SimTree

        tree = app.screen.query_one(SimTree)
        assert len(tree._shown_nodes) >= 2
