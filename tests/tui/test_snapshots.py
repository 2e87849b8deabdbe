"""Screenshots of every screen at 120x40 and 80x24 (pytest-textual-snapshot; update with
`pytest tests/tui --snapshot-update` and look at the SVGs under tests/tui/__snapshots__/)."""

from __future__ import annotations

import pytest

from arena.engine.events import NodeResolved, TournamentStarted, TrialPlanned
from arena.engine.grid import TournamentConfig
from tui_helpers import wait_for

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run from the test's folder: the library (tmp_path/programs) is shown as programs/... as a user who
    started the app there sees it."""
    monkeypatch.chdir(tmp_path)


def _settled(app) -> bool:
    """Nothing the screen shows is still on its way: no summary still loading (Setup fills its form after
    the first frame, then a timer writes the summary), no table with rows whose column widths are not yet
    measured (DataTable does that when it next idles), no focus still on a widget that is hidden (a switched
    tab's table, until the screen moves the focus to the shown one)."""
    from textual.widgets import DataTable

    screen = app.screen
    if any("loading" in str(w.render()) for w in screen.query("#summary")):
        return False
    focused = screen.focused
    if focused is not None and not all(n.display for n in focused.ancestors_with_self if n is not screen):
        return False
    if not _footer_current(screen):
        return False
    return not any(t._require_update_dimensions or t.border_subtitle == "loading…" for t in screen.query(DataTable))


def _footer_current(screen) -> bool:
    """The footer shows the keys of the focus as it is now (it is rebuilt after a refresh once the focus
    moved: a focus change just before the snapshot left the previous widget's keys in it)."""
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    want = {b.action for _, b, _, _ in screen.active_bindings.values() if b.show}
    # (the command palette's key is the footer's own)
    return all({k.action for k in footer.query(FooterKey)} - {"command_palette"} == want
               for footer in screen.query(Footer))


async def _settle(pilot, delay: float = 0.4):
    await pilot.app.workers.wait_for_complete()  # analyses load in workers
    await wait_for(pilot, lambda: _settled(pilot.app), 30)  # (a fixed pause alone fell short under load)
    await pilot.pause(delay)
    await pilot.app.workers.wait_for_complete()
    await wait_for(pilot, lambda: _settled(pilot.app), 30)
    pilot.app.clear_notifications()
    await pilot.pause()


async def _open_results(app, pilot, tid: int) -> None:
    """Results of tournament `tid`, its analysis loaded (in a worker)."""
    app.open_results(tid)
    await pilot.pause()
    await app.workers.wait_for_complete()


@pytest.mark.parametrize("size", SIZES)
def test_setup(snap_compare, seeded_app, size):
    make, _ = seeded_app
    assert snap_compare(make(start_mode="setup"), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_setup_light(snap_compare, seeded_app, size):
    make, _ = seeded_app

    async def run(pilot):
        pilot.app.theme = "textual-light"
        await _settle(pilot)

    assert snap_compare(make(start_mode="setup"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_live_finished_builtin_light(snap_compare, seeded_app, size):
    make, _ = seeded_app

    async def run(pilot):
        pilot.app.theme = "textual-light"
        await pilot.press("ctrl+r")  # the smoke preset
        await wait_for(pilot, lambda: pilot.app.session is not None and pilot.app.session.ended)
        await _settle(pilot, 0.5)

    assert snap_compare(make(start_mode="setup"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_library_program(snap_compare, seeded_app, size):
    make, _ = seeded_app

    async def run(pilot):
        await pilot.press("down", "down", "down")  # fair-llm: an LLM program with its prompt
        await _settle(pilot)

    assert snap_compare(make(start_mode="library"), terminal_size=size, run_before=run)


def test_library_game(snap_compare, seeded_app):
    make, _ = seeded_app

    async def run(pilot):
        await pilot.press("tab", "down")  # the games list: chicken
        await _settle(pilot)

    assert snap_compare(make(start_mode="library"), terminal_size=(120, 40), run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_live_finished_builtin(snap_compare, seeded_app, size):
    make, _ = seeded_app

    async def run(pilot):
        await pilot.press("ctrl+r")  # the smoke preset
        await wait_for(pilot, lambda: pilot.app.session is not None and pilot.app.session.ended)
        await _settle(pilot, 0.5)

    assert snap_compare(make(start_mode="setup"), terminal_size=size, run_before=run)


def test_live_llm_trial_in_progress(snap_compare, seeded_app):
    """A tree half resolved, fed with the events an LLM trial emits (no thread, fixed content)."""
    from arena.runner.tournament import TournamentRunner
    from arena.tui.session import LiveSession
    from conftest import llm_trial

    make, _ = seeded_app
    app = make(start_mode="live")

    async def run(pilot):
        lib = app.library
        config = TournamentConfig(programs=["fair-llm", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.5],
                                  max_depths=[3], trials=2, seed=9, name="snapshot")
        session = LiveSession(app.store, clock=app.clock)
        runner = TournamentRunner.create(app.store, config, lib.programs, lib.games, backend=_Unused(),
                                         sink=session.on_event, new=True)
        session.runner, session.tournament_id, session.total = runner, runner.tournament_id, config.total_trials
        session.started_at = app.clock()
        session.on_event(TournamentStarted(runner.tournament_id, config.total_trials, 0, {}))
        spec = next(s for s in config.iter_specs() if s.row == "fair-llm" and s.col == "defectbot")
        done = llm_trial(spec)
        nodes = done.nodes
        pending = [type(n)(n.index, n.parent, n.side, n.depth, n.program, n.u, n.mode) for n in nodes]
        session.on_event(TrialPlanned(runner.tournament_id, spec, pending))
        for i in (1, 2):  # the simulated defectbot and the column's defectbot resolve; fair-llm is being asked
            pending[i].action = nodes[i].action
            session.on_event(NodeResolved(runner.tournament_id, spec, pending[i]))
        app.session = session
        app.mode_screens["live"].session_started(session)
        await pilot.pause()
        await pilot.press("t", "down")  # the simulated defectbot's node
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run)


def _results_snapshot(snap_compare, seeded_app, then, tournament: str = "bots", size=(120, 40)) -> bool:
    """The snapshot of Results of a seeded tournament once `then(app, pilot)` has run and the screen settled."""
    make, ids = seeded_app
    app = make(start_mode="history")

    async def run(pilot):
        await _open_results(app, pilot, ids[tournament])
        await then(app, pilot)
        await _settle(pilot)

    return snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare, seeded_app, size):
    async def sort(app, pilot):
        await pilot.press("right", "right", "right", "s")  # sort by cooperation, highest first

    assert _results_snapshot(snap_compare, seeded_app, sort, size=size)


def test_results_payoff_matrix(snap_compare, seeded_app):
    async def payoff_tab(app, pilot):
        app.screen.query_one("#results-tabs").active = "tab-payoff"

    assert _results_snapshot(snap_compare, seeded_app, payoff_tab)


@pytest.mark.parametrize("tab,sub", [("tab-programs", None), ("tab-eq", None), ("tab-plots", "plot-coop"), ("tab-plots", "plot-heat"),
                                     ("tab-plots", "plot-depth"), ("tab-plots", "plot-dynamics")])
def test_results_analysis_tabs(snap_compare, seeded_app, tab, sub):
    async def open_tab(app, pilot):
        app.screen.query_one("#results-tabs").active = tab
        if sub:
            await wait_for(pilot, lambda: _settled(app))  # the focus on the plot tabs' bar before it moves on
            app.screen.query_one("#plot-tabs").active = sub

    assert _results_snapshot(snap_compare, seeded_app, open_tab)


def test_export_dialog(snap_compare, seeded_app):
    async def export(app, pilot):
        await pilot.press("x")

    assert _results_snapshot(snap_compare, seeded_app, export, size=(80, 24))


@pytest.mark.parametrize("size", SIZES)
def test_trial_transcript(snap_compare, seeded_app, size):
    async def transcript(app, pilot):
        app.screen.query_one("#pairs").focus()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("t")

    assert _results_snapshot(snap_compare, seeded_app, transcript, "llm", size)


@pytest.mark.parametrize("size", SIZES)
def test_history(snap_compare, seeded_app, size):
    make, _ = seeded_app
    assert snap_compare(make(start_mode="history"), terminal_size=size, run_before=_settle)


class _Unused:
    """An LLM backend that is never run (the snapshot feeds the session by hand)."""

    def check(self, programs, config) -> None:
        pass


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", ["library", "results", "trials", "history"])
def test_light_theme(snap_compare, seeded_app, screen, size):
    """The other screens in the light theme (Setup and Live have their own light snapshots above)."""
    make, ids = seeded_app
    app = make(start_mode="library" if screen == "library" else "history")

    async def run(pilot):
        app.theme = "textual-light"
        if screen == "library":
            await pilot.press("down", "down", "down")  # fair-llm: an LLM program with its prompt
        elif screen in ("results", "trials"):
            app.open_results(ids["llm" if screen == "trials" else "bots"])
            await pilot.pause()
            await app.workers.wait_for_complete()  # the analysis loads in a worker
            if screen == "trials":
                app.screen.query_one("#pairs").focus()
                await pilot.press("enter")
                await pilot.pause()
                await pilot.press("t")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@pytest.mark.parametrize("screen", ["editor", "help"])
def test_modal_screens_in_both_themes(snap_compare, seeded_app, screen, theme, size):
    """The program editor (with a problem listed) and Help, at both sizes, in both themes."""
    make, _ = seeded_app

    async def run(pilot):
        pilot.app.theme = theme
        if screen == "editor":
            await pilot.press("n", "l")
            await pilot.pause()
            editor = pilot.app.screen.query_one("#yaml")
            editor.cursor_blink = False  # a blinking cursor makes the screenshot depend on timing
            editor.load_text("id: tit-llm\nkind: llm\nmodel: custom/fake-8b\ntemperature: 9\nsystem_prompt: |\n  Mirror.\n")
            await wait_for(pilot, lambda: bool(pilot.app.screen.problems))
        else:
            await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(make(start_mode="library" if screen == "editor" else "setup"), terminal_size=size,
                        run_before=run)


@pytest.fixture
def code_app(seeded_app, library_dir):
    """The seeded app with a code/ group in its library: two of the shipped code programs."""
    import shutil

    from conftest import ROOT

    (library_dir / "code").mkdir()
    for f in ("fair-code.yaml", "defect-code.yaml"):
        shutil.copy(ROOT / "programs" / "code" / f, library_dir / "code" / f)
    return seeded_app[0]


@pytest.mark.parametrize("size", SIZES)
def test_library_with_code_programs(snap_compare, code_app, size):
    async def run(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query("#programs"))
        lst = pilot.app.screen.query_one("#programs")
        lst.highlighted = lst.get_option_index("p:fair-code")  # the code group, after the top folder's programs
        await _settle(pilot)

    assert snap_compare(code_app(start_mode="library"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_setup_with_code_programs(snap_compare, code_app, size):
    async def run(pilot):
        await _settle(pilot)
        picks = pilot.app.screen.query_one("#pick-programs")
        picks.select("fair-code")
        picks.select("defect-code")
        await _settle(pilot)

    assert snap_compare(code_app(start_mode="setup"), terminal_size=size, run_before=run)
