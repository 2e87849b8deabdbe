"""Screenshots of the iterate run's view (a best-response run, a meta-rounds run) and of its start form at
80x24 (pytest-textual-snapshot; update with `--snapshot-update` and look at the SVGs under
tests/tui/__snapshots__/)."""

from __future__ import annotations

import pytest

from tests.support.cli import arena
from tests.support.fake_llm import FakeLLMServer, Script
from tests.test_iterate_process import CLI_ARGS, REPLIES
from test_snapshots import _settle
from tui_helpers import wait_for


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def stored_run(tmp_path):
    db = tmp_path / "it.db"
    with FakeLLMServer(Script(REPLIES)) as srv:
        res = arena("iterate", *CLI_ARGS, "--db", str(db), env={"LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "k"})
    assert res.returncode == 0, res.stderr
    return db


def _run_view_at(row: int):
    """run_before for a snapshot: stored run 1 opened in its view, the cursor on `row` of its table."""
    from textual.widgets import DataTable

    from arena.tui.screens.iterate_run import IterateRunScreen

    async def run(pilot):
        pilot.app.watch_iterate(1)
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, IterateRunScreen)
                       and pilot.app.screen.state is not None, 30)
        pilot.app.screen.query_one("#itr-steps", DataTable).move_cursor(row=row)
        await _settle(pilot)

    return run


def test_iterate_run_view(snap_compare, make_app, stored_run):
    # the cursor on the row's kept candidate
    assert snap_compare(make_app(stored_run, start_mode="history"), terminal_size=(80, 24),
                        run_before=_run_view_at(3))


def test_iterate_start_form(snap_compare, make_app, tmp_path):
    from arena.tui.screens.iterate_start import IterateStartScreen

    async def run(pilot):
        pilot.app.push_screen(IterateStartScreen())
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, IterateStartScreen), 10)
        await _settle(pilot)

    assert snap_compare(make_app(tmp_path / "empty.db", start_mode="history"), terminal_size=(80, 24),
                        run_before=run)


@pytest.fixture
def stored_meta_run(tmp_path):
    from tests.test_metarounds import MUST_SHOW, Writers, arena, writer_env

    db = tmp_path / "meta.db"
    with FakeLLMServer(Writers()) as srv:
        res = arena(*MUST_SHOW, "--db", str(db), "--quiet", env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    return db


def test_meta_rounds_run_view(snap_compare, make_app, stored_meta_run):
    # the cursor on meta-round 3's row: a retry
    assert snap_compare(make_app(stored_meta_run, start_mode="history"), terminal_size=(80, 24),
                        run_before=_run_view_at(4))
