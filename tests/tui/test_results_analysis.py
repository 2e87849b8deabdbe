"""The Results screen's Programs and Plots tabs, and its export dialog with every format (Pilot)."""

from __future__ import annotations

import csv
import json

from arena.analysis import tables as analysis
from arena.analysis.metagame import equilibrium_mark, meta_matrices
from tui_helpers import wait_for


async def _open(app, pilot, tid, tab):
    app.open_results(tid)
    await pilot.pause()
    await app.workers.wait_for_complete()  # the analysis loads in a worker
    app.screen.query_one("#results-tabs").active = tab
    data = {"tab-programs": "_programs", "tab-eq": "_equilibria", "tab-plots": "_plots"}.get(tab)
    # ... and the tab's data, computed in a worker of its own once the tab is shown
    await wait_for(pilot, lambda: data is None or getattr(app.screen, data) is not None)
    await pilot.pause()


async def test_programs_tab_shows_the_ranking(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, ids["bots"], "tab-programs")
        table = app.screen.query_one("#ranking")
        expected = [r for r in analysis.tables(app.store, ids["bots"], ["programs"])["programs"]]
        assert table.row_count == 4
        shown = [(str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1]), str(table.get_row_at(i)[2]))
                 for i in range(4)]
        assert shown == [(str(r.rank), r.program, f"{r.mean_payoff:.2f}") for r in expected]
        assert str(table.get_row_at(0)[1]) == "defectbot"  # DefectBot wins this small PD tournament


async def test_the_shown_tab_takes_the_focus_from_the_hidden_one(seeded_app):
    """Switching Results' tab moves the focus from the hidden tab's table to the shown one's, once its data is
    in (a loading table cannot take the focus: the snapshots drew it focused or not by timing); a user on a
    tab bar keeps the focus there."""
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(ids["bots"])
        await wait_for(pilot, lambda: getattr(app.screen, "MODE", None) == "results" and getattr(app.screen, "tid", None))
        await wait_for(pilot, lambda: app.screen.focused is not None)
        assert app.screen.focused.id == "pairs"
        tabs = app.screen.query_one("#results-tabs")
        for tab, table in (("tab-programs", "ranking"), ("tab-payoff", "payoff-matrix"), ("tab-eq", "equilibria")):
            tabs.active = tab
            await wait_for(pilot, lambda: app.screen.focused is not None and app.screen.focused.id == table)
            # as a user's next key comes after the app is idle: the focus's own message (Textual shows the tab
            # of a focused widget) is handled before the next switch, which it would otherwise undo
            await pilot.pause()
            assert tabs.active == tab
        tabs.active = "tab-plots"  # the shown plot has no table: its tab bar takes the focus
        await wait_for(pilot, lambda: app.screen.focused is not None and app.screen.focused.parent.id == "plot-tabs")
        await pilot.press("right")  # the heat map: the user stays on the bar
        await pilot.pause()
        assert app.screen.query_one("#plot-tabs").active == "plot-heat"
        assert app.screen.focused.parent.id == "plot-tabs"


async def test_plots_tab_draws_the_three_plots(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, ids["bots"], "tab-plots")
        screen = app.screen
        coop = str(screen.query_one("#plot-coop-bars").render())
        for pair in ("cooperatebot/cooperatebot", "defectbot/fairbot", "fairbot/fairbot"):
            assert pair in coop  # the legend: unordered pairs in the tournament's program order
        assert "cooperation at ε 0.2" in coop  # one ε in this tournament: a bar per pair
        # the heat map: the meta-game matrix with its program equilibria marked by the bootstrap's verdicts
        # (* equilibrium, ? uncertain), as the export's matrix table marks them
        screen.query_one("#plot-tabs").active = "plot-heat"
        await pilot.pause(0.2)
        heat = screen.query_one("#heat-matrix")
        rows = {(r.program, r.opponent): r for r in analysis.tables(app.store, ids["bots"], ["matrix"])["matrix"]}
        programs = ["cooperatebot", "defectbot", "fairbot", "randombot"]
        for i, a in enumerate(programs):
            for j, b in enumerate(programs):
                r = rows[(a, b)]
                assert str(heat.get_cell_at((i, j + 1))) == f"{r.payoff:.2f}" + equilibrium_mark(r)
        # FairBot against FairBot: a weak equilibrium of the point estimate (margin 0), but with 10 trials a cell
        # some resamples give RandomBot's or DefectBot's deviation more than 3 (margin interval [-0.10, 0]): uncertain
        assert str(heat.get_cell_at((2, 3))) == "3.00?" and rows[("fairbot", "fairbot")].margin == 0.0
        assert str(heat.get_cell_at((1, 2))) == "1.00*"  # DefectBot against DefectBot: margin [0.1, 0.5]
        assert "? uncertain" in str(screen.query_one("#plot-heat-caption").render())
        out = analysis.load_outcomes(app.store, ids["bots"])
        screen.query_one("#plot-tabs").active = "plot-depth"
        # a plot is drawn at its size, which it has on the layout pass after its tab is shown: waited for
        await wait_for(pilot, lambda: "share of decisions" in screen.query_one("#plot-depth-chart").render().plain)
        depth = screen.query_one("#plot-depth-chart").render().plain
        assert "ε 0.2" in depth and "share of decisions" in depth
        # dynamics: the replicator trajectory and the Moran fixation probabilities of the meta-game
        screen.query_one("#plot-tabs").active = "plot-dynamics"
        await wait_for(pilot, lambda: "population share" in screen.query_one("#plot-replicator-chart").render().plain)
        from arena.analysis.dynamics import moran_rows, replicator

        chart = screen.query_one("#plot-replicator-chart").render().plain
        assert all(p in chart for p in programs) and "population share" in chart
        (m,) = meta_matrices(out.programs, analysis.pairs(out), nash=False).values()
        rest = replicator(m.U).shares[-1]
        caption = str(screen.query_one("#plot-dynamics-caption").render())
        assert ", ".join(f"{p} {x:.2f}" for p, x in zip(m.programs, rest)) in caption
        moran = screen.query_one("#moran-matrix")
        rho = {(r.invader, r.resident): r.fixation for r in moran_rows(m.condition, m.programs, m.U, 10)}
        for i, a in enumerate(m.programs):
            for j, b in enumerate(m.programs):
                assert str(moran.get_cell_at((i, j + 1))) == ("–" if a == b else f"{rho[(a, b)]:.3g}")


async def test_export_dialog_offers_every_format(seeded_app, tmp_path, monkeypatch):
    from arena.analysis.export import FORMATS

    make, ids = seeded_app
    monkeypatch.chdir(tmp_path)
    app = make(start_mode="results")
    written = {}
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(ids["bots"])
        await pilot.pause()
        await app.workers.wait_for_complete()  # the analysis loads in a worker
        for fmt in FORMATS:
            await pilot.press("x")
            await pilot.pause()
            dialog = app.screen
            options = [str(v) for _, v in dialog.query_one("#export-format")._options]
            assert options == list(FORMATS)
            dialog.query_one("#export-format").value = fmt
            await pilot.pause()
            what = dialog.query_one("#export-what")
            values = [str(v) for _, v in what._options]
            if fmt in ("png", "svg"):
                assert values == ["all", "coop-vs-eps", "payoff-heatmap", "depth-hist", "replicator"]
                what.value = "payoff-heatmap"
            elif fmt == "csv":
                assert values == ["pairs", "summary", "programs", "matrix", "equilibria", "supports", "depths",
                                  "replicator", "moran", "calls"]
            else:
                assert values[0] == "all" and "calls" in values
            await pilot.pause()
            path = dialog.query_one("#export-path").value
            written[fmt] = tmp_path / path
            await pilot.click("#export")
            await wait_for(pilot, lambda: getattr(app.screen, "MODE", None) == "results")
    assert {f: p.name for f, p in written.items()} == {
        "csv": "arena-tournament-1.csv", "json": "arena-tournament-1.json", "markdown": "arena-tournament-1.md",
        "latex": "arena-tournament-1.tex", "png": "arena-tournament-1-payoff-heatmap.png",
        "svg": "arena-tournament-1-payoff-heatmap.svg"}
    assert len(list(csv.DictReader(written["csv"].open()))) == 16
    assert set(json.loads(written["json"].read_text())["tables"]) == set(analysis.TABLES)
    assert written["markdown"].read_text().startswith("# Arena tournament 1: bots")
    assert written["latex"].read_text().count("\\begin{tabular}") == 11  # ten tables and the matrix's margins
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["svg"].read_text().lstrip().startswith("<?xml")


async def test_export_dialog_all_plots_into_a_folder(seeded_app, tmp_path, monkeypatch):
    make, ids = seeded_app
    monkeypatch.chdir(tmp_path)
    app = make(start_mode="results")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(ids["bots"])
        await pilot.pause()
        await app.workers.wait_for_complete()  # the analysis loads in a worker
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#export-path").value = "exports/mine.csv"
        dialog.query_one("#export-format").value = "svg"
        await pilot.pause()
        assert str(dialog.query_one("#export-what").value) == "all"
        assert dialog.query_one("#export-path").value == "exports"  # the folder chosen so far
        assert str(dialog.query_one("#export-path-label").render()) == "Folder"
        await pilot.click("#export")
        await wait_for(pilot, lambda: getattr(app.screen, "MODE", None) == "results")
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [
        "arena-tournament-1-coop-vs-eps.svg", "arena-tournament-1-depth-hist.svg", "arena-tournament-1-payoff-heatmap.svg",
        "arena-tournament-1-replicator.svg"]


async def test_results_show_a_loading_state_and_answer_keys_while_loading(seeded_app, monkeypatch):
    """The analysis loads in a worker: the screen says so at once, keys switch screens meanwhile, and the
    rows appear when the worker is done. (The worker's connection is held back until the test lets it go.)"""
    import threading

    from arena.tui import loading

    gate = threading.Event()
    opened = loading._reader

    def held(app):
        assert gate.wait(30)
        return opened(app)

    monkeypatch.setattr(loading, "_reader", held)
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_results(ids["bots"])
        await pilot.pause()
        screen = app.screen
        assert str(screen.query_one("#results-head").render()) == "Loading tournament 1…"
        assert screen.query_one("#pairs").loading and screen.query_one("#pairs").row_count == 0
        await pilot.press("5")  # the UI answers while the analysis is loading
        assert app.current_mode == "history"
        await pilot.press("4")
        assert app.current_mode == "results"
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not screen.query_one("#pairs").loading and screen.query_one("#pairs").row_count == 16
        assert str(screen.query_one("#results-head").render()).startswith("finished · 160 / 160 trials")


async def test_equilibria_tab_lists_the_meta_games_nash_equilibria(seeded_app):
    from arena.analysis.metagame import equilibrium_rows

    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, ids["bots"], "tab-eq")
        table = app.screen.query_one("#equilibria")
        out = analysis.load_outcomes(app.store, ids["bots"])
        expected = equilibrium_rows(meta_matrices(out.programs, analysis.pairs(out)))
        # what the user sees: the table filled (the tab's data lands from a worker, then is drawn)
        await wait_for(pilot, lambda: not table.loading and table.row_count > 0)
        assert expected and table.row_count == len(expected)
        first = expected[0]
        row = [str(x) for x in table.get_row_at(0)]
        assert row[0] == "1" and row[1].startswith("pure" if first.pure else "mixed")
        assert row[4:6] == [f"{first.row_payoff:.2f}", f"{first.col_payoff:.2f}"]
        assert all(p in row[2] for p, x in first.row_strategy.items() if x > 1e-9)
        assert "found" in str(app.screen.query_one("#eq-caption").render())


async def test_pairs_follow_the_condition_selector(make_app, tmp_path):
    """Two ε values: the Pairs tab lists the chosen condition's cells only."""
    import asyncio as _asyncio

    from textual.widgets import Select

    from arena.engine.grid import TournamentConfig
    from arena.library.catalog import load_lenient
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store
    from conftest import ROOT

    db = tmp_path / "two.db"
    lib, _ = load_lenient(ROOT / "programs", ROOT / "games")
    config = TournamentConfig(programs=["cooperatebot", "defectbot"], games=["prisoners_dilemma"],
                              epsilons=[0.1, 0.5], max_depths=[5], trials=2)
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, lib.programs, lib.games)
        await _asyncio.to_thread(_asyncio.run, runner.run())
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, runner.tournament_id, "tab-pairs")
        table = app.screen.query_one("#pairs")
        assert table.row_count == 4  # 2 × 2 ordered pairs at ε 0.1, not 8
        select = app.screen.query_one("#results-condition", Select)
        select.value = f"{runner.tournament_id}:1"
        await pilot.pause()
        assert table.row_count == 4 and app.screen._condition[1] == 0.5
        assert {r.epsilon for r in app.screen._shown_rows} == {0.5}


async def test_captions_wrap_at_80_columns(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, ids["bots"], "tab-pairs")
        caption = app.screen.query_one("#tab-pairs .tab-caption")
        assert caption.size.height >= 2  # the whole sentence, wrapped, not cut at the edge
        assert "coop = share of trials ending in a cooperative outcome" in str(caption.render())


async def test_a_cells_trials_load_a_page_at_a_time(seeded_app, monkeypatch):
    from arena.tui.screens.trials import TrialsScreen

    monkeypatch.setattr(TrialsScreen, "PAGE", 4)
    pages, page = [], TrialsScreen._page

    def spy(self, value):
        pages.append(len(value[0]))
        page(self, value)

    monkeypatch.setattr(TrialsScreen, "_page", spy)
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, ids["bots"], "tab-pairs")
        app.screen.query_one("#pairs").focus()
        await pilot.press("enter")  # the first cell: 10 trials
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrialsScreen)
        table = screen.query_one("#trial-list")
        # the cursor on the first row is already within 20 rows of the end: pages follow until all are in
        await wait_for(pilot, lambda: table.row_count == 10 and not screen._fetching)
        assert [str(table.get_row_at(i)[0]) for i in range(10)] == [str(t["trial_index"] + 1) for t in screen.trials]
        assert len({t["id"] for t in screen.trials}) == 10
        assert table.border_subtitle.startswith("10 trials")
        assert pages == [4, 4, 2]


async def test_trial_list_shows_every_column_at_80x24(seeded_app):
    make, ids = seeded_app
    app = make(start_mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, ids["llm"], "tab-pairs")
        app.screen.query_one("#pairs").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#trial-list") and app.screen.query_one("#trial-list").row_count == 2)
        table = app.screen.query_one("#trial-list")
        assert table.virtual_size.width <= table.scrollable_content_region.width  # the calls column too
        assert [str(c) for c in table.get_row_at(0)] == ["1", "defect", "defect", "1.0,1.0", "1/0", "2"]


async def test_cooperation_vs_epsilon_keeps_its_legend_off_the_lines(make_app, tmp_path):
    """Several ε: no legend drawn inside the chart (it hid the lines); every pair is listed in the caption,
    in its line's colour. One ε: bars whose labels carry their values."""
    import asyncio as _asyncio

    from arena.engine.grid import TournamentConfig
    from arena.library.catalog import load_lenient
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store
    from arena.tui.screens.results import LINE_COLOURS
    from conftest import ROOT

    db = tmp_path / "eps.db"
    lib, _ = load_lenient(ROOT / "programs", ROOT / "games")
    with Store(db) as store:
        for eps in ([0.1, 0.5], [0.2]):
            config = TournamentConfig(programs=["cooperatebot", "defectbot", "fairbot"], games=["prisoners_dilemma"],
                                      epsilons=eps, max_depths=[5], trials=4)
            runner = TournamentRunner.create(store, config, lib.programs, lib.games)
            await _asyncio.to_thread(_asyncio.run, runner.run())
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, 1, "tab-plots")
        caption = app.screen.query_one("#plot-coop-caption").render()
        chart = app.screen.query_one("#plot-coop-chart").plt.build()  # the chart as plotext draws it
        assert "/" not in chart and "fairbot" not in chart  # no legend inside: no pair's name over the lines
        text = str(caption)
        pairs = [line for line in text.split("\n")[1].split("   ") if line.strip()]
        assert len(pairs) == 6 and all(p.startswith("● ") for p in pairs)  # 3 programs: 6 unordered pairs
        colours = {str(span.style) for span in caption.spans if "●" in text[span.start:span.end]}
        assert colours == {c for _, c in LINE_COLOURS[:6]}
        await _open(app, pilot, 2, "tab-plots")
        chart = str(app.screen.query_one("#plot-coop-bars").render())
        assert "cooperatebot" in chart and "100%" in chart  # a bar's label names its pair and its value
        assert str(app.screen.query_one("#plot-coop-caption").render()).count("●") == 0


def test_a_finished_tournament_reaches_a_results_screen_not_yet_mounted():
    """The app tells every mode screen when a tournament ends; a Results screen made but not yet mounted
    (a key switched to it in the same moment) loads on mount instead of failing (make bench's tui_load)."""
    from arena.tui.screens.results import ResultsScreen

    ResultsScreen().tournament_changed(1)
