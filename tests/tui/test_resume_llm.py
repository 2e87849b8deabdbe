"""History resumes an interrupted LLM tournament (the LLM layer is built for it before it starts)."""

from __future__ import annotations

from tests.support.fake_llm import FakeLLMServer, action_responder
from tui_helpers import wait_for


async def test_history_resumes_an_interrupted_llm_tournament(seeded_app, monkeypatch):
    make, ids = seeded_app
    with FakeLLMServer(action_responder("defect")) as srv:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)
        monkeypatch.setenv("LLM_API_KEY", "test-key")
        app = make(start_mode="history")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#tournaments")
            assert str(table.get_row_at(1)[2]) == "interrupted"
            await pilot.press("down", "r")  # tournament 2: fair-llm vs defectbot, 2 of 8 trials stored
            await wait_for(pilot, lambda: app.session is not None and app.session.ended, timeout=30)
            await pilot.pause(0.3)  # the screens take in the finished tournament
            s = app.session
            assert (s.tournament_id, s.status, s.done_at_start, s.done) == (ids["llm"], "finished", 2, 8)
            assert app.store.tournament(ids["llm"]).status == "finished"
            assert srv.count > 0 and s.llm_calls == srv.count
