"""Each hook of arena/tui/textual_patches.py against the installed Textual: the internal it relies on is
there, with the signature and the behaviour the hook expects, and the hook does what it says. A Textual
upgrade that changes one fails here, by name."""

from __future__ import annotations

import inspect

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Input, Tree

from arena.tui import textual_patches as tp
from tui_helpers import wait_for


# --- MessageFailures: MessagePump._on_message ---------------------------------------------------------
def test_textual_dispatches_every_message_through_on_message():
    assert inspect.iscoroutinefunction(MessagePump._on_message)
    assert list(inspect.signature(MessagePump._on_message).parameters) == ["self", "message"]
    # events reach it through on_event; other messages directly from the queue
    assert "self._on_message(event)" in inspect.getsource(MessagePump.on_event)
    assert "await self._on_message(message)" in inspect.getsource(MessagePump._dispatch_message)


class Boom(Message):
    pass


class FailingScreen(tp.MessageFailures, Screen):
    def __init__(self):
        super().__init__()
        self.failed: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Button("go", id="go")

    def on_boom(self, message: Boom) -> None:
        raise ValueError("in a message handler")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        raise KeyError("in a widget's message")

    def on_key(self, event) -> None:
        raise RuntimeError("in an event handler")

    def message_failed(self, message: Message, exc: Exception) -> None:
        self.failed.append((type(message).__name__, f"{type(exc).__name__}: {exc}"))


async def test_message_failures_contains_messages_widget_messages_and_events():
    app = App()
    async with app.run_test(size=(40, 10)) as pilot:
        screen = FailingScreen()
        await app.push_screen(screen)
        screen.post_message(Boom())
        await pilot.pause()
        screen.query_one("#go", Button).press()
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert screen.failed == [("Boom", "ValueError: in a message handler"),
                                 ("Pressed", "KeyError: \"in a widget's message\""),
                                 ("Key", "RuntimeError: in an event handler")]
        assert app.is_running and app.screen is screen


# --- restyle_tree: Tree's line caches ----------------------------------------------------------------
class TreeApp(App):
    def compose(self) -> ComposeResult:
        tree: Tree = Tree("root")
        for i in range(20):
            tree.root.add_leaf(f"leaf {i}")
        tree.root.expand()
        yield tree


def test_tree_keeps_the_internals_restyle_tree_uses():
    source = inspect.getsource(Tree._render_line)
    assert "self._updates," in source and "cache_key in self._line_cache" in source  # each line keyed by it
    assert "self._updates += 1" in inspect.getsource(Tree._invalidate)
    assert "self._invalidate()" in inspect.getsource(Tree.notify_style_update)


async def test_restyle_tree_repaints_its_lines_without_a_layout_or_a_rebuild():
    app = TreeApp()
    async with app.run_test(size=(40, 24)) as pilot:
        tree = app.query_one(Tree)
        await pilot.pause()
        assert isinstance(tree._updates, int) and tree._tree_lines_cached is not None and len(tree._line_cache)
        drawn = tree.render_line(1)
        assert tree.render_line(1) is drawn  # (from the line cache)
        refreshes: list[bool] = []
        real = tree.refresh

        def spy(*regions, **kw):
            refreshes.append(kw.get("layout", False))
            return real(*regions, **kw)

        tree.refresh = spy
        tree.notify_style_update()  # Textual's: a layout and the lines rebuilt (what the hook avoids)
        assert refreshes == [True] and tree._tree_lines_cached is None
        await pilot.pause()
        lines, drawn = tree._tree_lines_cached, tree.render_line(1)
        refreshes.clear()
        updates = tree._updates
        tp.restyle_tree(tree)
        assert refreshes == [False] and tree._updates == updates + 1
        assert tree._tree_lines_cached is lines  # the same lines, not rebuilt
        again = tree.render_line(1)
        assert again is not drawn  # drawn afresh
        assert again.text == drawn.text == "├── leaf 0".ljust(len(drawn.text))
        await pilot.pause()
        assert str(tree.render_line(1).text).strip() == "├── leaf 0"


# --- ImmediateModeSwitch: switch_mode calls delay_update ----------------------------------------------
class PlainModes(App):
    MODES = {"a": Screen, "b": Screen}


class Modes(tp.ImmediateModeSwitch, PlainModes):
    def on_mount(self) -> None:
        self.switch_mode("a")


async def test_switch_mode_calls_delay_update_and_the_hook_skips_it_for_a_built_mode(monkeypatch):
    calls: list[float] = []
    real = App.delay_update
    monkeypatch.setattr(App, "delay_update", lambda self, delay=0.05: (calls.append(delay), real(self, delay))[1])
    app = Modes()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert calls == [0.05]  # the first visit of "a": Textual's delay kept
        with pytest.raises(KeyError):
            app.get_screen_stack("b")  # how the hook tells a mode not built yet
        app.switch_mode("b")
        assert calls == [0.05, 0.05] and app.current_mode == "b"
        app.switch_mode("a")
        app.switch_mode("b")
        assert calls == [0.05, 0.05]  # built: no delay
    plain = PlainModes()
    async with plain.run_test(size=(40, 10)) as pilot:
        calls.clear()
        plain.switch_mode("a")
        assert calls == [0.05]  # Textual's switch_mode asks for the delay (what the hook relies on)


async def test_switching_to_a_built_screen_paints_at_once(make_app):
    """Textual holds a mode switch's paint back 50 ms (`delay_update`) to mask a new screen's mount; the
    app keeps that for a first visit only, so a switch between built screens is not held back."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.switch_mode("history")  # first visit: History is mounted behind Textual's delay
        assert app.current_mode == "history" and app._batch_count == 1
        await wait_for(pilot, lambda: app._batch_count == 0)
        app.switch_mode("setup")  # built at start: painted without the delay
        assert app.current_mode == "setup" and app._batch_count == 0
        app.switch_mode("history")
        assert app.current_mode == "history" and app._batch_count == 0


# --- KeepsStyles: ScreenResume.refresh_styles, read after the screen's own handler ----------------------
def test_screen_resume_reads_refresh_styles_in_screens_own_handler():
    from textual import events

    assert events.ScreenResume().refresh_styles is True and events.ScreenResume(refresh_styles=False).refresh_styles is False
    assert "if event.refresh_styles:" in inspect.getsource(Screen._on_screen_resume)
    # a subclass's on_screen_resume runs before Screen's own _on_screen_resume (the MRO, subclass first)
    assert "cls.__dict__.get(f\"_{method_name}\") or cls.__dict__.get(" in inspect.getsource(MessagePump._get_dispatch_methods)


async def test_a_screen_shown_again_is_restyled_only_when_the_app_changed(make_app):
    """Textual re-applies the stylesheet to every widget of a screen each time it is shown again; the app
    does it only when what styles depend on changed while the screen was hidden (here: the theme)."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.switch_mode("history")
        await wait_for(pilot, lambda: app._batch_count == 0)
        history = app.screen
        restyled = []
        real = history.update_node_styles
        history.update_node_styles = lambda animate=True: (restyled.append(animate), real(animate=animate))[1]
        for _ in range(2):
            app.switch_mode("setup")
            await pilot.pause()
            app.switch_mode("history")
            await pilot.pause()
        assert restyled == []
        app.switch_mode("setup")
        await pilot.pause()
        setup, before = app.screen, history.styles.background
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")  # the theme changes while History is hidden
        await wait_for(pilot, lambda: app.current_theme.dark != dark)
        app.switch_mode("history")
        await pilot.pause()
        assert restyled == [False]  # (Textual's own restyle on ScreenResume, not animated)
        assert history.styles.background != before and history.styles.background == setup.styles.background


# --- SteadyFooter: bindings_changed schedules the footer's rebuild --------------------------------------
class Keyed(Widget, can_focus=True):
    BINDINGS = [Binding("f3", "app.bell", "Three")]


class FooterApp(App):
    BINDINGS = [Binding("f2", "noop", "Two")]

    def compose(self) -> ComposeResult:
        yield Input(id="one")
        yield Input(id="two")
        yield Keyed(id="keyed")
        yield tp.SteadyFooter()


def test_footer_rebuilds_through_bindings_changed():
    assert list(inspect.signature(Footer.bindings_changed).parameters) == ["self", "screen"]
    assert "self.recompose" in inspect.getsource(Footer.bindings_changed)
    assert "bindings_updated_signal.subscribe(self, self.bindings_changed)" in inspect.getsource(Footer.on_mount)


async def test_the_footer_is_rebuilt_only_when_its_keys_change(monkeypatch):
    builds: list[tuple] = []
    real = Footer.compose
    monkeypatch.setattr(Footer, "compose", lambda self: (builds.append(self._signature(self.screen)), (yield from real(self)))[1])
    app = FooterApp()
    async with app.run_test(size=(60, 10)) as pilot:
        footer = app.query_one(tp.SteadyFooter)
        await wait_for(pilot, lambda: footer._shown is not None)
        app.query_one("#one").focus()
        await pilot.pause()
        n = len(builds)
        shown = footer._shown
        app.query_one("#two").focus()  # the same keys: no rebuild
        await pilot.pause()
        await pilot.pause()
        assert len(builds) == n and footer._shown == shown
        app.query_one("#keyed").focus()  # a key more: rebuilt
        await wait_for(pilot, lambda: len(builds) > n)
        await pilot.pause()
        assert footer._shown != shown and [k.key for k in footer.query("FooterKey")] == ["f3", "f2", "ctrl+p"]


# --- SteadyTable: DataTable._update_dimensions ---------------------------------------------------------
def test_datatable_measures_new_rows_in_update_dimensions_without_a_new_update_count():
    assert list(inspect.signature(DataTable._update_dimensions).parameters) == ["self", "new_rows"]
    assert "self._update_dimensions(new_rows)" in inspect.getsource(DataTable._on_idle)
    assert "content_width" in inspect.getsource(DataTable._update_dimensions)
    assert "self._cell_render_cache.clear()" in inspect.getsource(DataTable.notify_style_update)


class TableApp(App):
    CSS = "DataTable { height: 8; width: 50; }"  # a fixed size: adding rows sends the table no Resize

    def __init__(self, table: type[DataTable]) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table()


@pytest.mark.parametrize("table, stale", [(DataTable, True), (tp.SteadyTable, False)])
async def test_a_header_drawn_before_the_rows_are_measured_is_drawn_again(table, stale):
    """Rows added, a frame drawn before the table idles (a loaded machine), then the idle's measurement:
    Textual's DataTable keeps the header at its labels' widths above measured rows; SteadyTable redraws it.
    (DataTable's case shows the fault is still Textual's: when it no longer is, the hook can go.)"""
    app = TableApp(table)
    async with app.run_test(size=(60, 10)) as pilot:
        t = app.query_one(DataTable)
        t.add_column("turn", key="turn")
        t.add_column("step", key="step")
        await pilot.pause()
        for i in range(3):
            t.add_row(f"{i} start", str(i))
        assert t.render_line(0).text.rstrip() == " turn  step"  # drawn before the measurement
        await pilot.pause()
        assert t.render_line(1).text.rstrip() == " 0 start  0"
        assert t.render_line(0).text.rstrip() == (" turn  step" if stale else " turn     step")


# --- loading.is_live: the public state a worker's result is checked against ----------------------------
class Dialog(ModalScreen):
    def compose(self) -> ComposeResult:
        yield Button("ok")


async def test_a_result_goes_only_to_a_screen_still_shown_or_kept(make_app):
    from arena.tui.loading import is_live

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        setup = app.screen
        app.switch_mode("history")
        await pilot.pause()
        assert is_live(app.screen) and is_live(setup)  # a mode screen in another mode's stack
        dialog = Dialog()
        await app.push_screen(dialog)
        assert is_live(dialog)
        app.pop_screen()
        assert not is_live(dialog)  # dismissed: removed from the stack at once, pruned after
        await pilot.pause()
        assert not is_live(dialog)
    assert not is_live(setup)  # the app has quit
