"""History: the tournaments stored in the database; open their results, resume unfinished ones."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from .. import format as fmt
from ..textual_patches import SteadyTable
from .base import ArenaScreen

STATUS_STYLE = {"finished": "$success", "running": "$accent", "interrupted": "$warning", "cancelled": "$warning",
                "failed": "$error"}
RESUMABLE = ("interrupted", "cancelled", "failed")


class HistoryScreen(ArenaScreen):
    MODE = "history"
    BINDINGS = [
        Binding("enter", "open", "Open results"),
        Binding("r", "resume", "Resume"),
        Binding("l", "live", "Live", show=False),
        Binding("R", "refresh", "Refresh"),
        Binding("i", "iterate", "Iterate runs"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="history"):
            yield SteadyTable(id="tournaments", cursor_type="row", zebra_stripes=True, classes="panel")
            yield Static(id="history-detail", classes="panel")

    def on_mount(self) -> None:
        super().on_mount()
        self.rows = []
        self.query_one("#history-detail").border_title = "Tournament"
        self.refresh_rows()
        self.call_after_refresh(self.query_one("#tournaments").refresh, layout=True)
        self.query_one("#tournaments").focus()

    def on_screen_resume(self) -> None:
        if getattr(self, "_shown_once", False):  # the first resume follows on_mount, which just filled the table
            self.refresh_rows()
        self._shown_once = True

    def tournament_changed(self, tid: int) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """Query the list in a worker (counting a million trials takes a while); the old rows stay meanwhile."""
        from ..loading import run_query

        table = self.query_one("#tournaments", DataTable)
        if not self.rows:  # (a subtitle, not Textual's loading overlay: that would take the table's focus)
            table.border_subtitle = "loading…"
        run_query(self, "history", lambda store: store.tournaments(), self._show_rows)

    def _show_rows(self, rows) -> None:
        table = self.query_one("#tournaments", DataTable)
        keep = table.cursor_row
        self.rows = rows
        table.clear(columns=True)
        theme = self.app.theme_variables
        cells = []
        for r in self.rows:
            status = r.display_status
            colour = theme.get(STATUS_STYLE.get(status, "$text").lstrip("$"), "")
            share = r.done / r.total_trials if r.total_trials else 0
            cfg = r.config
            games = ", ".join(cfg["games"])
            cells.append((
                Text(str(r.id), justify="right"), Text(r.name or ""),
                Text(status, style=f"bold {colour}"),
                Text(f"{r.done:,}/{r.total_trials:,} {fmt.pct(share)}", justify="right"),
                Text(fmt.ellipsize(games, 24)),
                Text(f"{' '.join(f'{e:g}' for e in cfg['epsilons'])} · {' '.join(map(str, cfg['max_depths']))}"),
                Text(dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M"))))
        # widths measured here: a DataTable measures its rows only when it next idles, and a screen drawn
        # before that (a busy machine) showed every column cut to its label's width
        for i, (key, label) in enumerate((("id", "id"), ("name", "name"), ("status", "status"),
                                          ("trials", "trials"), ("games", "games"), ("grid", "ε · cap"),
                                          ("created", "created"))):
            table.add_column(label, key=key, width=max([len(label), *(row[i].cell_len for row in cells)]))
        for r, row in zip(self.rows, cells):
            table.add_row(*row, key=str(r.id))
        table.border_title = f"Tournaments in {self.app.db_path.name}"
        table.border_subtitle = f"{len(self.rows)} stored"
        if self.rows:
            table.move_cursor(row=min(max(keep, 0), len(self.rows) - 1))
        self._detail()

    def _current(self):
        table = self.query_one("#tournaments", DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowHighlighted, "#tournaments")
    def _highlight(self) -> None:
        self._detail()

    @on(DataTable.RowSelected, "#tournaments")
    def _selected(self) -> None:
        self.action_open()

    def _detail(self) -> None:
        box = self.query_one("#history-detail", Static)
        r = self._current()
        if r is None:
            box.update(Content.from_markup(
                "[b]No tournaments stored yet.[/] Start one in Setup ([b]2[/]); every trial is kept in the database."))
            return
        cfg = r.config
        status = r.display_status
        temps = [t for t in cfg.get("temperatures", [None]) if t is not None]
        colour = self.app.theme_variables.get(STATUS_STYLE.get(status, "$text").lstrip("$"), "")
        lines = [Content.assemble(Content.styled(f"#{r.id} ", "bold"), Content(f"{r.name} " if r.name else ""),
                                  Content.styled(status, f"bold {colour}"),
                                  Content(f"  {r.done:,} / {r.total_trials:,} trials"))]
        if r.reason and status in ("failed", "cancelled", "interrupted"):
            lines.append(Content.styled(f"{status}: {r.reason}", colour))  # stored: shown after a restart too
        lines.append(Content(f"programs ({len(cfg['programs'])}): {', '.join(cfg['programs'])}"))

        lines.append(Content(
            f"games: {', '.join(cfg['games'])} · ε {' '.join(f'{e:g}' for e in cfg['epsilons'])} · cap "
            f"{' '.join(map(str, cfg['max_depths']))}" + (f" · T {' '.join(f'{t:g}' for t in temps)}" if temps else "")
            + f" · {cfg['trials']} trials/cell · seed {cfg.get('seed', 0)} · simulation {cfg.get('simulation', 'run')}"))
        if r.fingerprint == "iterate":  # an iterate run's tournament (its candidates' trials)
            hint = "enter: the iterate run's view" + (" (live)" if status == "running" else "")
            if status in RESUMABLE:
                hint += " · r: resume it"
            lines.append(Content.styled(hint + " · i: all iterate runs", "dim"))
            box.update(Content("\n").join(lines))
            return
        hint = "enter: results"
        if status in RESUMABLE and r.done < r.total_trials:
            hint += f" · r: resume ({r.total_trials - r.done:,} trials missing)"
        if status == "running":
            hint += " · l: watch it live" if self._is_live(r.id) else " · running in another process"
        lines.append(Content.styled(hint, "dim"))
        box.update(Content("\n").join(lines))

    def _is_live(self, tid: int) -> bool:
        s = self.app.session
        return s is not None and s.tournament_id == tid and not s.ended

    def action_open(self) -> None:
        r = self._current()
        if r is None:
            return
        if r.fingerprint == "iterate":
            from arena.store import iterate as db

            self.app.watch_iterate(db.run_of_tournament(self.app.store, r.id))
            return
        self.app.open_results(r.id)

    def action_resume(self) -> None:
        from arena.errors import ArenaError

        r = self._current()
        if r is None:
            return
        status = r.display_status
        if self._is_live(r.id):
            self.app.switch_mode("live")
            return
        if r.fingerprint == "iterate":
            self._resume_iterate(r, status)
            return
        if status not in RESUMABLE or r.done >= r.total_trials:
            self.notify(f"Tournament {r.id} is {status} with {r.done:,}/{r.total_trials:,} trials: nothing to resume.",
                        severity="warning")
            return
        try:
            self.app.resume_tournament(r.id)
        except ArenaError as exc:
            self.notify(str(exc), severity="error", title="Cannot resume", timeout=10)

    def _resume_iterate(self, r, status: str) -> None:
        from arena.errors import ArenaError
        from arena.iterate.process import resume_detached
        from arena.store import iterate as db

        run_id = db.run_of_tournament(self.app.store, r.id)
        if status not in RESUMABLE:
            self.notify(f"Iterate run {run_id} is {status}: nothing to resume.", severity="warning")
            return
        try:
            if self.app.iterating:
                raise ArenaError(f"iterate run {self.app.iterate_session.run_id} is being followed here: "
                                 "detach (x) or cancel it first")
            resume_detached(self.app.store, run_id)
        except ArenaError as exc:
            self.notify(str(exc), severity="error", title="Cannot resume", timeout=10)
            return
        self.app.watch_iterate(run_id)

    def action_live(self) -> None:
        self.app.switch_mode("live")

    def action_refresh(self) -> None:
        self.refresh_rows()

    def action_iterate(self) -> None:
        from .iterate import IterateScreen

        self.app.push_screen(IterateScreen())
