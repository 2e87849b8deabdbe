"""Repeated games where users meet them: Setup's rounds and noise, Live's timeline of the match shown,
Results' pairs of a match condition, a trial's rounds and the tree of a chosen round, the by-round plot."""

from __future__ import annotations

from tui_helpers import copy_programs, pick_programs, setup_summary, wait_for, wait_for_setup


async def test_a_match_tournament_from_setup_to_a_rounds_tree(make_app, tmp_path):
    programs = copy_programs(tmp_path / "programs", "defectbot.yaml", "repeated/titfortat.yaml")
    app = make_app(programs_path=programs, db=tmp_path / "arena.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_setup(pilot)
        setup = app.screen
        pick_programs(setup, "titfortat", "defectbot")
        setup.query_one("#epsilons").value = "0.5"
        setup.query_one("#depths").value = "3"
        setup.query_one("#trials").value = "5"
        setup.query_one("#rounds").value = "10"
        await wait_for(pilot, lambda: "20 trials" in setup_summary(app))
        setup.query_one("#rounds").value = "10 20"
        await wait_for(pilot, lambda: "40 trials" in setup_summary(app) and "2 match rules" in setup_summary(app))
        setup.query_one("#rounds").value = "10"
        setup.query_one("#continuations").value = "0.9"
        await wait_for(pilot, lambda: "rounds and continuations are alternatives" in setup_summary(app))
        setup.query_one("#continuations").value = ""
        await wait_for(pilot, lambda: "20 trials" in setup_summary(app))
        config = setup.build_config()
        assert (config.rounds, config.continuations, config.noises) == ([10], [None], [0.0])
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended, 60)
        assert app.session.status == "finished" and app.session.done == 20
        live = app.screen
        await wait_for(pilot, lambda: live.shown is not None and live.query_one("#live-rounds").display)
        timeline = str(live.query_one("#live-rounds").render())
        assert timeline.startswith("round 10/10 ")
        tree = live.query_one("#live-tree")
        assert {n.data.round for n in tree._shown_nodes if n.data is not None} == {9}  # the last round's tree
        await pilot.press("r")
        await wait_for(pilot, lambda: app.current_mode == "results" and getattr(app.screen, "tid", None))
        await app.workers.wait_for_complete()
        pairs = app.screen.query_one("#pairs")
        await wait_for(pilot, lambda: pairs.row_count == 4)
        rows = [[str(c) for c in pairs.get_row_at(i)] for i in range(4)]
        tft_d = next(r for r in rows if r[:2] == ["titfortat", "defectbot"])
        assert tft_d[6:8] == ["0.90", "1.40"]  # mean payoffs per round: 9/10 and 14/10
        pairs.move_cursor(row=rows.index(tft_d))
        pairs.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#trial-rounds") and app.screen.query_one("#trial-list").row_count == 5)
        trials = app.screen
        listed = [str(c) for c in trials.query_one("#trial-list").get_row_at(0)]
        assert listed[1:4] == ["defect", "defect", "9.0,14.0"]  # last round's actions, the match's totals
        assert str(trials.query_one("#trial-rounds").render()).startswith("round 10/10 ")
        await pilot.press("left_square_bracket")
        for _ in range(9):
            await pilot.press("left_square_bracket")
        await pilot.pause()
        assert str(trials.query_one("#trial-rounds").render()).startswith("round 1/10 1 C/D ")
        assert trials.query_one("#trial-tree").border_subtitle == "round 1: cooperate / defect"


async def test_a_grid_world_episode_steps_through_its_grid(make_app, tmp_path, programs, games):
    """Level-Based Foraging in the app: the game's parameters in Library (no payoff matrix), and a stored
    episode's steps in a trial's view: the timeline, and the field at the selected step."""
    import asyncio as _asyncio

    from arena.engine.grid import TournamentConfig
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    db = tmp_path / "arena.db"
    with Store(db) as store:
        config = TournamentConfig(programs=["lbf-random"], games=["foraging_pibr"], epsilons=[0.5], max_depths=[1],
                                  trials=2)
        runner = TournamentRunner.create(store, config, programs, games)
        assert (await _asyncio.to_thread(lambda: _asyncio.run(runner.run()))).status == "finished"
        steps = store.rounds(store.trial_rows(runner.tournament_id)[0]["id"])
    app = make_app(db=db, start_mode="library")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.screen._show_game("foraging_pibr")
        await pilot.pause()
        assert "terminal penalty" in str(app.screen.query_one("#detail-meta").render())
        assert not app.screen.query_one("#game-matrix").display
        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_mode == "results" and getattr(app.screen, "tid", None))
        await app.workers.wait_for_complete()
        pairs = app.screen.query_one("#pairs")
        await wait_for(pilot, lambda: pairs.row_count == 1)
        pairs.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#trial-grid") and app.screen.query_one("#trial-grid").display)
        trials = app.screen
        n = len(steps)
        assert str(trials.query_one("#trial-rounds").render()).startswith(f"round {n}/{n} ")
        assert trials.query_one("#trial-grid").border_title == f"Step {n} · R row, C column (level) · food level"
        for _ in range(n):
            await pilot.press("left_square_bracket")
        await pilot.pause()
        grid = str(trials.query_one("#trial-grid").render()).splitlines()
        assert len(grid) == 5 and sum(line.count("R") for line in grid) == 1  # the 5x5 field, the row agent once
        assert trials.query_one("#trial-grid").border_title.startswith("Step 1 ·")
