"""Every place Arena reaches into Textual's internals: its private names, and the public ones whose use
depends on how Textual calls them.

Each hook says what it fixes and why Textual's public API cannot do it; tests/tui/test_textual_patches.py
checks, for the installed Textual, that the internal each one relies on is still there and still behaves
as the hook expects, so that an upgrade which changes one fails there (by name) instead of silently
making the app slower or letting a bug end it. What each hook saves is measured in docs/performance.md.

Private names used: `MessagePump._on_message`, `Tree._updates`, `DataTable._update_dimensions`. Public
names whose calling order is relied on: `App.switch_mode` calling `App.delay_update`,
`ScreenResume.refresh_styles` read by Screen's own resume handler after the screen's `on_screen_resume`,
`Footer.bindings_changed` as the footer's one rebuild trigger.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Tree


# --- a handler's exception, contained ---------------------------------------------------------------
class MessageFailures:
    """Mixin for a MessagePump (a Screen): an exception from any of its message handlers goes to
    `self.message_failed(message, exc)` instead of ending the app.

    Textual ends the app on any handler's exception. It dispatches every message of a pump's own queue,
    events included (through `on_event`), to the handlers through `MessagePump._on_message`: wrapping it
    is the one place that sees all of them. There is no public hook for a handler's exception (`on_event`
    sees events only, not widgets' messages such as Button.Pressed)."""

    async def _on_message(self, message: Message) -> None:
        try:
            await super()._on_message(message)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001: any bug in a screen's handler is contained here
            self.message_failed(message, exc)

    def message_failed(self, message: Message, exc: Exception) -> None:
        raise NotImplementedError


# --- a tree restyled without a layout ---------------------------------------------------------------
def restyle_tree(tree: Tree) -> None:
    """What Tree.notify_style_update does, without its layout of the whole screen and without rebuilding
    the tree's lines.

    Textual's Tree answers every style update with `_invalidate()`: its lines dropped (rebuilt at the next
    paint by a walk of every node that also measures every label: dear for a simulation tree of thousands
    of nodes, docs/performance.md), fresh line caches and `refresh(layout=True)`, a layout of the whole
    screen. Giving the tree the focus is two style updates (its own :focus, then its panel's :focus-within), so under a
    running tournament each focus change waited for two layouts and two rebuilds. A style update changes
    colours, not the tree's lines or their widths (a style that changes the border's or the padding's size
    asks for its own layout through Textual's style properties): the visible lines drawn again are enough.
    Every cached line is keyed by `Tree._updates`, so raising it draws each line afresh; Tree has no public
    way to do that. Widget.notify_style_update (skipping Tree's) clears the widget's style caches."""
    Widget.notify_style_update(tree)
    tree._updates += 1
    tree.refresh()


# --- a mode switch painted at once --------------------------------------------------------------------
class ImmediateModeSwitch:
    """Mixin for an App: a switch to a mode whose screen is already built is painted at once.

    Textual's `switch_mode` holds the paint back 50 ms (`delay_update()`) on every switch, to mask a new
    screen's first mount; between built screens it makes every switch take at least 50 ms. The delay is
    kept for a mode's first visit. Textual has no option for it: the hook relies on `switch_mode`
    calling `delay_update` (public) before it changes the mode."""

    _undelayed = False

    def switch_mode(self, mode: str):
        try:
            self.get_screen_stack(mode)  # type: ignore[attr-defined]
        except KeyError:  # not built yet
            built = False
        else:
            built = True
        self._undelayed = built
        try:
            return super().switch_mode(mode)  # type: ignore[misc]
        finally:
            self._undelayed = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._undelayed:
            super().delay_update(delay)  # type: ignore[misc]


# --- a screen shown again without a restyle ----------------------------------------------------------
class KeepsStyles(Screen):
    """A screen shown again without Textual's restyle of all its widgets, unless the app changed.

    Textual re-applies the whole stylesheet to every widget of a screen each time it is shown again
    (`ScreenResume.refresh_styles`, read by Screen's own resume handler, which runs after this class's
    `on_screen_resume`), in case what styles depend on changed while it was hidden: that restyle is
    most of a screen switch. A widget's own class or pseudo-class changes restyle it even while its
    screen is hidden; what does not is the app's state: its theme and colour settings, its classes and
    pseudo-classes (focus, dark, ansi, ...). Restyle when those changed since the screen was hidden, as
    Textual would; else show it as it was. (A stylesheet changed by other means is Textual's own
    `switch_mode` check, which restyles the screen whatever the event says.)"""

    _styled_for: tuple | None = None

    def _style_state(self) -> tuple:
        app = self.app
        return (app.theme, app.ansi_color, id(app.ansi_theme), frozenset(app.classes),
                frozenset(app.get_pseudo_classes()))

    def on_screen_suspend(self) -> None:
        self._styled_for = self._style_state()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if event.refresh_styles and self._styled_for == self._style_state():
            event.refresh_styles = False


# --- a footer rebuilt only when its keys change ------------------------------------------------------
class SteadyFooter(Footer):
    """Textual's Footer, rebuilt only when the keys it shows change.

    Textual rebuilds the footer (a dozen widgets mounted and styled) on every focus change, e.g. each time
    the simulation tree takes the focus, which under a busy tournament delays the key itself. The hook
    relies on `bindings_changed` (public) being what schedules the rebuild."""

    _shown: tuple | None = None  # the keys of the last build (what the footer shows); None: nothing built

    def bindings_changed(self, screen) -> None:
        if self._shown is not None and self._signature(screen) == self._shown:
            return
        super().bindings_changed(screen)

    def compose(self):
        # what is built, taken when it is built: a rebuild scheduled for one focus may run under the next
        signature = self._signature(self.screen)
        built = False
        for widget in super().compose():
            built = True
            yield widget
        self._shown = signature if built else None

    @staticmethod
    def _signature(screen) -> tuple:
        return tuple((b.key, b.description, b.action, enabled, tooltip)
                     for _, b, enabled, tooltip in screen.active_bindings.values() if b.show)


# --- a table's header redrawn when its columns widen -------------------------------------------------
class SteadyTable(DataTable):
    """Textual's DataTable, whose cells drawn before a column's width changed are drawn again.

    A DataTable measures the cells of rows just added only when it next idles
    (`DataTable._update_dimensions`), and keeps each cell and line it draws in caches keyed by its update
    count, which measuring leaves as it is. A frame drawn between adding rows and that idle (a loaded
    machine) therefore left the header cut to its labels' widths for good, while the rows, first drawn
    after, had their measured widths (a table of a fixed size gets no Resize, the other thing that clears
    those caches). Once a measurement changes a column's width, this table drops what it drew
    (`notify_style_update`, public: DataTable's own clears its caches and repaints). The hook relies on
    `_update_dimensions` being where the idle measurement sets the widths."""

    _drawn_widths: tuple = ()  # (column key, width) as of the last measurement

    def _update_dimensions(self, new_rows) -> None:
        super()._update_dimensions(new_rows)
        widths = tuple((key, column.get_render_width(self)) for key, column in self.columns.items())
        if widths != self._drawn_widths:
            self._drawn_widths = widths
            self.notify_style_update()
