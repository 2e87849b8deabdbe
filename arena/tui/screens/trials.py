"""The stored trials of one cell: each trial's simulation tree and its nodes' LLM transcripts."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Tree

from .. import format as fmt
from ..widgets import AppHeader, ArenaFooter, Heat, SimTree, StoredNode, Transcript


class TrialsScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("t", "focus_tree", "Tree"),
        Binding("l", "focus_list", "Trials", show=False),
    ]

    def __init__(self, tid: int, cell):
        super().__init__()
        self.tid = tid
        self.cell = cell

    def compose(self) -> ComposeResult:
        yield AppHeader("results")
        with Horizontal(id="trials"):
            yield DataTable(id="trial-list", cursor_type="row", zebra_stripes=True, classes="panel")
            with Vertical(id="trial-right"):
                yield SimTree(id="trial-tree", classes="panel")
                yield Transcript(id="trial-transcript", classes="panel")
        yield ArenaFooter()

    def on_mount(self) -> None:
        c = self.cell
        store = self.app.store
        where = ("game=? AND row_program=? AND col_program=? AND epsilon=? AND max_depth=? "
                 "AND coalesce(temperature, -1.0) = coalesce(?, -1.0)")
        self.trials = store.trial_rows(self.tid, where, (c.game, c.row_program, c.col_program, c.epsilon, c.max_depth,
                                                         c.temperature))
        progs, games = store.snapshot(self.tid)
        game = games.get(c.game, {})
        self._code = _code_context(progs, game)  # (programs, Game) when a code program plays, else None
        self.coop_action, self.defect_action = game.get("default_action"), game.get("defect_action")
        table = self.query_one("#trial-list", DataTable)
        table.border_title = (f"{c.row_program} vs {c.col_program} · "
                              f"{fmt.condition(c.game, c.epsilon, c.max_depth, c.temperature, short=True)}")
        table.border_subtitle = f"{len(self.trials)} trials · depth row/col · enter: tree"
        heat = Heat(self.app)
        for col in ("#", "row", "col", "pay", "status", "depth", "calls"):
            table.add_column(col, key=col)
        for t in self.trials:
            coop = bool(t["cooperative"])
            act_style = heat.style(1.0 if coop else 0.0) if t["status"] == "ok" else ""
            table.add_row(
                Text(str(t["trial_index"] + 1), justify="right"),
                Text(t["row_action"] or "–", style=act_style), Text(t["col_action"] or "–", style=act_style),
                Text(f"{fmt.num(t['row_payoff'], 1)},{fmt.num(t['col_payoff'], 1)}" if t["status"] == "ok" else "–",
                     justify="right"),
                Text(t["status"], style="" if t["status"] == "ok" else heat.style(0.0)),
                Text(f"{t['row_depth']}/{t['col_depth']}", justify="right"),
                Text(str(t["n_calls"]), justify="right"),
                key=str(t["id"]))
        self.query_one("#trial-tree").border_title = "Simulation tree"
        self.query_one("#trial-transcript").border_title = "LLM transcript"
        table.focus()
        if self.trials:
            self._show(self.trials[0])

    @on(DataTable.RowHighlighted, "#trial-list")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        tid = int(event.row_key.value)
        trial = next((t for t in self.trials if t["id"] == tid), None)
        if trial is not None:
            self._show(trial)

    @on(DataTable.RowSelected, "#trial-list")
    def _enter(self) -> None:
        self.action_focus_tree()

    def _show(self, trial: dict) -> None:
        store = self.app.store
        nodes = StoredNode.from_rows(store.nodes(trial["id"]), store.calls(trial_id=trial["id"]) if trial["n_calls"] else [])
        tree = self.query_one(SimTree)
        tree.show(("stored", trial["id"]), nodes, finished=True, coop_action=self.coop_action,
                  defect_action=self.defect_action)
        outcome = (f"{trial['row_action']} / {trial['col_action']}" if trial["status"] == "ok"
                   else f"{trial['status']}: {fmt.ellipsize(trial['error'] or '', 60)}")
        tree.border_title = f"Trial {trial['trial_index'] + 1} · seed {trial['seed']}"
        tree.border_subtitle = outcome
        self._trial, self._trial_nodes = trial, nodes
        self.query_one(Transcript).show(None)

    @on(Tree.NodeHighlighted, "#trial-tree")
    def _node(self, event: Tree.NodeHighlighted) -> None:
        n = event.node.data
        if n is not None:
            ctx = None
            if self._code is not None and isinstance(n, StoredNode):
                from arena.engine.code import stored_ctx

                t = self._trial
                ctx = stored_ctx(self._trial_nodes, n.index, t["seed"], t["epsilon"], t["row_program"], t["col_program"],
                                 *self._code)
            self.query_one(Transcript).show(n, self.app.store.calls(node_id=n.node_id) if n.calls else [], ctx=ctx)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_tree(self) -> None:
        tree = self.query_one(SimTree)
        tree.focus()
        if tree.cursor_line < 0 and tree.last_line >= 0:
            tree.cursor_line = 0

    def action_focus_list(self) -> None:
        self.query_one("#trial-list").focus()


def _code_context(progs: dict, game: dict):
    """The tournament's programs and the game, when a code program plays (to rebuild a node's ctx)."""
    if not any(p.get("kind") == "code" for p in progs.values()) or not game:
        return None
    from arena.library.games import Game
    from arena.library.programs import program_from_json

    return {k: program_from_json(v) for k, v in progs.items()}, Game.model_validate(game)
