"""Disclosure where users meet it: Setup's Disclosure field and preset, Results' Disclosure tab."""

from __future__ import annotations

from tui_helpers import copy_programs, pick_programs, setup_summary, wait_for, wait_for_setup


async def test_disclosure_from_setup_to_the_results_tab(make_app, tmp_path):
    programs = copy_programs(tmp_path / "programs", "defectbot.yaml", "code/clique-code.yaml", "code/fair-code.yaml")
    app = make_app(programs_path=programs, db=tmp_path / "arena.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_setup(pilot)
        setup = app.screen
        pick_programs(setup, "clique-code", "fair-code")
        setup.query_one("#epsilons").value = "0.2"
        setup.query_one("#depths").value = "10"
        setup.query_one("#trials").value = "10"
        setup.query_one("#disclosures").value = "full none obfuscated"
        await wait_for(pilot, lambda: "120 trials" in setup_summary(app) and "3 disclosure levels" in setup_summary(app))
        setup.query_one("#disclosures").value = "full secret"
        await wait_for(pilot, lambda: "disclosure" in setup_summary(app) and "✗" in setup_summary(app))
        setup.query_one("#disclosures").value = "full none obfuscated"
        await wait_for(pilot, lambda: "120 trials" in setup_summary(app))
        config = setup.build_config()
        assert (config.disclosures, config.obfuscate_prompts) == (["full", "none", "obfuscated"], "shuffle")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session is not None and app.session.ended, 60)
        assert app.session.status == "finished" and app.session.done == 120
        app.open_results(app.session.tournament_id)
        await pilot.pause()
        await app.workers.wait_for_complete()
        app.screen.query_one("#results-tabs").active = "tab-disclosure"
        await wait_for(pilot, lambda: app.screen._disclosure is not None)
        await pilot.pause()
        table = app.screen.query_one("#disclosure")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert table.row_count == 4 * 3
        clique = [r for r in rows if r[:2] == ["clique-code", "clique-code"]]
        assert [(r[2], r[4], r[6], r[7]) for r in clique] == [
            ("full", "100.0%", "–", "–"), ("none", "0.0%", "-100.0 pp", "[-100.0, -100.0] pp"),
            ("obfuscated", "0.0%", "-100.0 pp", "[-100.0, -100.0] pp")]
        assert "Value of disclosure" in str(app.screen.query_one("#disclosure-caption").render())


async def test_the_disclosure_preset_fills_the_form(make_app, tmp_path):
    app = make_app(db=tmp_path / "arena.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "setup" and "loading" not in setup_summary(app))
        setup = app.screen
        setup.query_one("#preset").value = "disclosure"
        await wait_for(pilot, lambda: setup.query_one("#disclosures").value == "full prompt model none obfuscated")
        config = setup.build_config()
        assert config.preset == "disclosure" and config.disclosures == ["full", "prompt", "model", "none", "obfuscated"]
        assert config.total_trials == 36 * 5 * 100
