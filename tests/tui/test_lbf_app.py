"""A grid world on every screen at 80x24: Setup picks foraging_pibr, the run goes live, Results lists its
cells, a trial's view draws the field at each step ([ and ], the list's arrow keys), and a stored code node's
ctx shows the state it was decided on."""

from __future__ import annotations

import json

from tui_helpers import transcript_shows, transcript_text, wait_for

from arena.store.database import Store


def _summary(app) -> str:
    return str(app.screen.query_one("#summary").render())


async def test_a_grid_world_from_setup_to_a_code_nodes_state_at_80x24(make_app, tmp_path):
    from arena.tui.widgets import Transcript

    db = tmp_path / "arena.db"
    app = make_app(db=db)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "setup" and app.screen._filled
                       and "loading" not in _summary(app))
        await pilot.pause()
        setup = app.screen
        picks = setup.query_one("#pick-programs")
        picks.deselect_all()
        for pid in ("lbf-h1", "pibr-lbf-shared-food"):
            picks.select(pid)
        games = setup.query_one("#pick-games")
        games.deselect_all()
        games.select("foraging_pibr")
        setup.query_one("#epsilons").value = "0.5"
        setup.query_one("#depths").value = "1"
        setup.query_one("#trials").value = "2"
        await wait_for(pilot, lambda: "8 trials" in _summary(app))
        assert "≈ 800 simulation nodes" in _summary(app)  # 4 cells x 2 episodes x 50 steps x 2 decisions, at most
        config = setup.build_config()
        assert (config.games, sorted(config.programs), config.trials) == (["foraging_pibr"],
                                                                           ["lbf-h1", "pibr-lbf-shared-food"], 2)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended, 120)
        assert app.session.status == "finished" and app.session.done == 8
        live = app.screen  # the episode shown: its steps' joint actions (N north, L load, W west)
        await wait_for(pilot, lambda: live.shown is not None and live.query_one("#live-rounds").display)
        assert str(live.query_one("#live-rounds").render()).startswith("round 3/3 1 N/N 2 L/W 3 L/L")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.current_mode == "results" and getattr(app.screen, "tid", None))
        await app.workers.wait_for_complete()
        pairs = app.screen.query_one("#pairs")
        await wait_for(pilot, lambda: pairs.row_count == 4)
        rows = [[str(c) for c in pairs.get_row_at(i)] for i in range(4)]
        assert rows[3] == ["pibr-lbf-shar…", "pibr-lbf-shar…", "2", "33.3%", "4.5–84.1", "0.16", "0.16"]
        pairs.move_cursor(row=3)  # the shared-food policy against itself
        pairs.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#trial-grid") and app.screen.query_one("#trial-grid").display)
        trials = app.screen
        grid = trials.query_one("#trial-grid")
        assert str(trials.query_one("#trial-rounds").render()).startswith("round 3/3 1 S/S 2 L/S 3 L/L")
        assert grid.border_title == "Step 3 · R row, C column (level) · food level"
        assert str(grid.render()).splitlines()[2] == "  · C1  2 R1  ·"  # both next to the level-2 food
        assert trials.query_one("#trial-rounds").border_title == "Steps · ← → or [ ]: step"
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: grid.border_title == "Step 2 · R row, C column (level) · food level")
        await pilot.press("left", "left")  # the arrow keys step too, with the trial list focused (and stop at 1)
        await wait_for(pilot, lambda: grid.border_title == "Step 1 · R row, C column (level) · food level")
        assert str(trials.query_one("#trial-rounds").render()).startswith("round 1/3")
        await pilot.press("right")
        await wait_for(pilot, lambda: grid.border_title == "Step 2 · R row, C column (level) · food level")
        await pilot.press("t")  # the tree: the row's code node of step 2 (round 1), its ctx with the state
        tree = app.screen.query_one("#trial-tree")
        # the node's pane follows the tree's cursor on a later message: waited for, not slept on
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None
                       and transcript_shows(app.screen.query_one(Transcript), tree.cursor_node.data))
        lines = transcript_text(app.screen.query_one(Transcript)).splitlines()
        with Store(db) as st:
            (trial,) = [t for t in st.trial_rows(app.screen.tid) if t["row_program"] == t["col_program"] ==
                        "pibr-lbf-shared-food" and [r["row_action"] for r in st.rounds(t["id"])] == ["south", "load", "load"]]
            steps = [json.loads(r["state"]) for r in st.rounds(trial["id"])]
        assert lines[0] == "pibr-lbf-shared-food (row seat, depth 0) ○ acts directly  → load"
        assert lines[lines.index("round: 1"):lines.index("round: 1") + 5] == [
            "round: 1", "rounds: 50", "continuation: null",
            "history: " + json.dumps([{"me": "south", "opponent": "south", "my_payoff": 0.0, "opponent_payoff": 0.0,
                                       "state": steps[0][0]}]),
            "state: " + json.dumps(steps[1][0])]
        assert steps[1][0]["step"] == 1 and lines[-1] == "returned [0.0, 0.0, 0.0, 0.0, 0.0, 1.0] → sampled with u: load"
        trials.query_one("#trial-list").focus()
        await pilot.press("down")  # the cell's other episode: its last step drawn
        await wait_for(pilot, lambda: str(trials.query_one("#trial-rounds").render()).startswith(
            "round 3/3 1 N/N 2 L/W 3 L/L"))
        assert grid.border_title == "Step 3 · R row, C column (level) · food level"
        assert str(grid.render()).splitlines()[2] == "  · R2  4 C2  ·"


async def test_the_registered_env_game_from_setup_to_results(make_app, tmp_path):
    """foraging_5x5_2p_2f_coop (a registered env id, no parameters): run from Setup, its stored game read back
    by Results (it once failed there: the stored game held the unused parameters' defaults beside its id)."""
    app = make_app(db=tmp_path / "arena.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "setup" and app.screen._filled
                       and "loading" not in _summary(app))
        setup = app.screen
        picks = setup.query_one("#pick-programs")
        picks.deselect_all()
        for pid in ("lbf-h1", "lbf-random"):
            picks.select(pid)
        games = setup.query_one("#pick-games")
        games.deselect_all()
        games.select("foraging_5x5_2p_2f_coop")
        setup.query_one("#trials").value = "1"
        await wait_for(pilot, lambda: "4 trials" in _summary(app))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended, 120)
        assert (app.session.status, app.session.done) == ("finished", 4)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.current_mode == "results" and getattr(app.screen, "tid", None))
        pairs = app.screen.query_one("#pairs")
        await wait_for(pilot, lambda: pairs.row_count == 4)
        assert sorted((str(pairs.get_row_at(i)[0]), str(pairs.get_row_at(i)[1])) for i in range(4)) == [
            ("lbf-h1", "lbf-h1"), ("lbf-h1", "lbf-random"), ("lbf-random", "lbf-h1"), ("lbf-random", "lbf-random")]
        assert not app.screen.query_one("#failure").display  # no failure banner
