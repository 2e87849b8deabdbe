"""Code programs in the app: highlighted source in the Library, the editor's smoke test on save (with
line numbers), and a code node's ctx, return value, output and error in a stored trial."""

from __future__ import annotations

import io
import shutil

from arena.tui.screens.editor import ProgramEditor
from arena.tui.widgets import SimTree, Transcript
from conftest import ROOT
from tui_helpers import transcript_shows, transcript_text, wait_for

BAD_ON_DEFECT = """\
id: touchy
kind: code
source: |
  def decide(ctx):
      if ctx["opponent_action"] == "defect":
          return ctx["no such key"]
      return ctx["game"]["default_action"]
"""


def code_library(tmp_path):
    d = tmp_path / "programs"
    shutil.copytree(ROOT / "programs" / "code", d)
    shutil.copy(ROOT / "programs" / "defectbot.yaml", d / "defectbot.yaml")
    return d


async def test_library_shows_code_highlighted_and_editor_smoke_tests_on_save(make_app, tmp_path):
    lib = code_library(tmp_path)
    app = make_app(programs_path=lib, start_mode="library")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.screen._show_program("fair-code")
        await pilot.pause()
        meta = str(app.screen.query_one("#detail-meta").render())
        assert "kind code" in meta and "simulates yes" in meta and "200 ms, 64 MB" in meta
        text = app.screen.query_one("#detail-text")
        assert text.display and text.border_title == "source (what opponents are shown)"
        from rich.console import Console
        from rich.syntax import Syntax

        syntax = text.content
        assert isinstance(syntax, Syntax) and syntax.lexer.name == "Python" and syntax.line_numbers
        console = Console(width=80, record=True, color_system="truecolor", file=io.StringIO())
        console.print(syntax)
        assert "1 def decide(ctx):" in console.export_text(clear=False)
        assert "\x1b[94;49mdef" in console.export_text(styles=True)  # the keyword highlighted
        assert not app.screen.query_one("#detail-source").display
        await pilot.press("n", "c")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ProgramEditor)
        editor.query_one("#yaml").load_text(BAD_ON_DEFECT)
        await pilot.pause(0.4)
        # it parses; the status says so only once the smoke test (in a worker, as on save) is done
        await wait_for(pilot, lambda: editor.checked)
        status = str(editor.query_one("#editor-status").render())
        assert "✗ 1 problem" in status and "valid" not in status
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(editor.problems))
        assert [str(p) for p in editor.problems] == [
            "touchy.yaml:6: field 'source': smoke test failed (game 'prisoners_dilemma' as row, "
            "opponent_action='defect'): KeyError: no such key (line 3: `return ctx[\"no such key\"]`)"]
        assert isinstance(app.screen, ProgramEditor) and not (lib / "touchy.yaml").exists()


async def test_stored_code_node_shows_ctx_value_output_and_error(make_app, tmp_path, games):
    from arena.engine.grid import TournamentConfig
    from arena.library.programs import load_programs, parse_program_text
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    talky = parse_program_text(
        "id: talky\nkind: code\nsource: |\n  def decide(ctx):\n      print('depth', ctx['depth'])\n"
        "      if ctx['opponent_action'] is None:\n          return [1, 0]\n      return ctx['opponent_action']\n")
    programs = {"talky": talky, **load_programs([ROOT / "programs" / "defectbot.yaml"])}
    db = tmp_path / "arena.db"
    config = TournamentConfig(programs=["talky", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.5],
                              max_depths=[3], trials=2, seed=2)
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, programs, games)
        assert (await runner.run()).status == "finished"
        tid = runner.tournament_id
    app = make_app(db=db, start_mode="history")
    async with app.run_test(size=(140, 50)) as pilot:
        await pilot.pause()
        from arena.analysis.tables import pair_rows
        from arena.tui.screens.trials import TrialsScreen

        with Store(db) as st:
            cell = next(r for r in pair_rows(st, tid) if (r.row_program, r.col_program) == ("talky", "defectbot"))
        app.push_screen(TrialsScreen(tid, cell))
        await pilot.pause()
        await pilot.press("t")
        tree = app.screen.query_one(SimTree)
        # the node's pane follows the tree's cursor on a later message: waited for, not slept on
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None
                       and transcript_shows(app.screen.query_one(Transcript), tree.cursor_node.data))
        text = transcript_text(app.screen.query_one(Transcript))
        assert text.splitlines()[:17] == [
            "talky (row seat, depth 0) ● grounded  → cooperate",
            "ctx",
            'game.id: "prisoners_dilemma"',
            'game.actions: ["cooperate", "defect"]',
            "game.payoffs: [[[3.0, 3.0], [0.0, 5.0]], [[5.0, 0.0], [1.0, 1.0]]]",
            'game.default_action: "cooperate"',
            'game.defect_action: "defect"',
            'game.cooperative: [["cooperate", "cooperate"]]',
            'seat: "row"',
            'me: "def decide(ctx):" … (5 lines)',
            'opponent: "kind: builtin" … (2 lines)',
            'opponent_id: "defectbot"',
            'opponent_kind: "builtin"',
            "opponent_action: null",
            "depth: 0",
            "epsilon: 0.5",
            "u: 0.9711497984393072",
        ]
        assert text.splitlines()[17:] == ["round: 0", "rounds: 1", "continuation: null", "history: []", "state: null",
                                          "returned [1, 0] → sampled with u: cooperate", "printed", "depth 0"]
