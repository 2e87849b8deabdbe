"""The simulation tree widget with chains too deep to show: the middle of a chain becomes one line."""

from __future__ import annotations

from textual.app import App, ComposeResult

from arena.engine.records import GROUNDED, SIMULATED, Node
from arena.tui.widgets import Elided, SimTree, elide
from tui_helpers import tree_labels


def chains(row_levels: int, col_levels: int) -> list[Node]:
    """A trial's nodes: the row decision's chain, then the column decision's; every leaf grounded to C."""
    nodes: list[Node] = []
    for seat, levels in (("row", row_levels), ("col", col_levels)):
        parent = None
        for depth in range(levels):
            side = seat if depth % 2 == 0 else ("col" if seat == "row" else "row")
            n = Node(len(nodes), parent, side, depth, "fairbot", 0.5, GROUNDED if depth == levels - 1 else SIMULATED,
                     "cooperate")
            nodes.append(n)
            parent = n.index
    return nodes


def test_elide_hides_the_middle_of_deep_chains_only():
    nodes = chains(100, 3)
    hidden = elide(nodes, head=40, tail=3)
    assert sorted(hidden) == list(range(40, 97))  # row depths 40..96; the 3-level column chain is whole
    group = hidden[40]
    assert all(hidden[i] is group for i in hidden) and [n.depth for n in group.nodes] == list(range(40, 97))
    assert group.summary(pending=False) == "⋮ 57 levels not shown (d40–d96)"
    assert elide(chains(44, 44), head=40, tail=3) == {}  # 40 + 1 + 3 levels: nothing to gain


class TreeApp(App):
    def compose(self) -> ComposeResult:
        yield SimTree()


async def test_a_two_thousand_level_chain_shows_head_one_line_and_tail():
    app = TreeApp()
    async with app.run_test(size=(120, 60)) as pilot:
        tree = app.query_one(SimTree)
        rebuilt = tree.show("t1", chains(2000, 2), finished=True, coop_action="cooperate", defect_action="defect")
        await pilot.pause()
        labels = tree_labels(tree)
        assert rebuilt and len(labels) == 40 + 1 + 3 + 2
        assert labels[0].startswith("ROW d0 ◇ fairbot  simulates  → cooperate")
        assert labels[39].startswith("d39 ◇ fairbot")
        assert labels[40] == "⋮ 1,957 levels not shown (d40–d1996)"
        assert labels[41].startswith("d1997 ") and labels[43].startswith("d1999 ● fairbot  grounded  → cooperate")
        assert labels[44].startswith("COL d0 ◇") and labels[45].startswith("d1 ● fairbot  grounded")
        assert isinstance(tree._shown_nodes[40].data, Elided)
        # the elided line nests the tail below it; the cursor walks over it
        assert tree._shown_nodes[41].parent is tree._shown_nodes[40]
        tree.focus()
        tree.cursor_line = 39
        await pilot.press("down", "down")
        assert tree.cursor_node is tree._shown_nodes[41]
        # the same trial again with as many nodes: no rebuild
        assert tree.show("t1", chains(2000, 2), finished=True) is False


async def test_focus_repaints_the_tree_without_laying_the_screen_out():
    """Focus changes the tree's colours, not its lines: Textual's Tree would lay the whole screen out again
    on each of the two style updates a focus change makes (benchmarks/tui_load.py's `t`)."""
    app = TreeApp()
    async with app.run_test(size=(80, 20)) as pilot:
        tree = app.query_one(SimTree)
        tree.show("t1", chains(30, 2), finished=True, coop_action="cooperate", defect_action="defect")
        await pilot.pause()
        before = tree_labels(tree)
        refreshes: list[bool] = []
        refresh = tree.refresh

        def spy(*regions, **kw):
            refreshes.append(kw.get("layout", False))
            return refresh(*regions, **kw)

        tree.refresh = spy
        tree.focus()
        await pilot.pause()
        assert tree.has_focus and refreshes and not any(refreshes)  # repainted, never laid out
        assert tree_labels(tree) == before and len(before) == 32
        app.theme = "textual-light"  # a theme's colours: a repaint too
        await pilot.pause()
        assert not any(refreshes) and tree_labels(tree) == before
